using System.Diagnostics.Metrics;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Silo-wide counters of the subscriber pipeline, published as the <c>OrderFlow.Messaging</c> meter (watch them with
/// <c>dotnet-counters monitor --counters OrderFlow.Messaging</c>) and readable as totals by the bench.
/// Plain interlocked counters: one increment per delivery, no allocation, no lock.
/// </summary>
public sealed class SubscriberMetrics : IDisposable
{
    public const string MeterName = "OrderFlow.Messaging";

    private readonly Meter _meter;
    private long _deliveries;
    private long _applied;
    private long _duplicates;
    private long _writes;
    private long _publishFailures;

    public SubscriberMetrics()
    {
        _meter = new Meter(MeterName);
        _meter.CreateObservableCounter("orderflow.subscriber.deliveries", () => Deliveries, "{event}", "Events the stream delivered to subscriber grains");
        _meter.CreateObservableCounter("orderflow.subscriber.applied", () => Applied, "{event}", "Events subscribers applied, in order");
        _meter.CreateObservableCounter("orderflow.subscriber.duplicates", () => Duplicates, "{event}", "Deliveries dropped as duplicates");
        _meter.CreateObservableCounter("orderflow.subscriber.writes", () => Writes, "{write}", "Subscriber inbox state writes");
        _meter.CreateObservableCounter("orderflow.outbox.publish_failures", () => PublishFailures, "{attempt}",
            "Outbox publish attempts the transport refused (the event stays in the order's outbox and is retried)");
    }

    public long Deliveries => Volatile.Read(ref _deliveries);
    public long Applied => Volatile.Read(ref _applied);
    public long Duplicates => Volatile.Read(ref _duplicates);
    public long Writes => Volatile.Read(ref _writes);
    public long PublishFailures => Volatile.Read(ref _publishFailures);

    public void Delivered() => Interlocked.Increment(ref _deliveries);
    public void AppliedOne() => Interlocked.Increment(ref _applied);
    public void Duplicate() => Interlocked.Increment(ref _duplicates);
    public void Wrote() => Interlocked.Increment(ref _writes);
    public void PublishFailed() => Interlocked.Increment(ref _publishFailures);

    public void Dispose() => _meter.Dispose();
}
