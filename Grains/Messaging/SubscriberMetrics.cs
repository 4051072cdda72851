using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using HdrHistogram;
using OrderFlow.Contracts;
using OrderFlow.Grains.Telemetry;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Silo-wide counters of the order pipeline — the outbox and every subscriber — published as instruments of the
/// <c>OrderFlow</c> meter (<see cref="OrderFlowTelemetry.Name"/>; watch them with
/// <c>dotnet-counters monitor --counters OrderFlow</c>, scrape them at <c>/metrics</c>) and readable as totals by the bench.
/// <para>
/// Every instrument is observable: the hot path only increments a plain interlocked counter (no allocation, no lock, no
/// tag array); measurements are built when a listener collects. Tags are bounded: the subscriber's name (one per
/// subscriber class) and a retry's kind — never an order id.
/// </para>
/// <para>
/// <b>Lag per subscriber</b> (<c>orderflow.subscriber.lag</c>) is this silo's <c>published − done(subscriber)</c>: events
/// its order grains published to the stream, minus events its activations of that subscriber applied or an operator
/// skipped. Each event is published on the silo of its order grain and applied on the silo of its subscriber grain, so
/// one silo's value is a partial sum (it can be negative); the cluster's lag is the sum over every silo's scrape
/// (<c>sum by (subscriber) (orderflow_subscriber_lag)</c>), exact while the silos that counted are running. An event is
/// counted once as published per order activation (the outbox never publishes the same event twice in one activation)
/// and once as done per subscriber activation (a handler that runs again after a failed inbox write and re-read is not
/// counted again). What a silo counted leaves with it: after a silo stops, crashes, or a new activation publishes
/// again what a crashed one had published, the sum is off by those events until the cluster restarts; a backfill counts
/// events that were published before the silos started. The durable truth is <c>subscribers status</c> (the relay).
/// </para>
/// </summary>
public sealed class SubscriberMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, SubscriberTally> _subscribers = new(StringComparer.Ordinal);
    private long _published;
    private long _publishFailures;
    private long _outboxBacklog;

    /// <summary>Microseconds from an event's acceptance to its application, every subscriber, since the last <see cref="TakeApplyLatency"/>.</summary>
    private readonly Recorder _applyLatency = new(1, 3_600_000_000L, 2, (id, low, high, digits) => new LongConcurrentHistogram(id, low, high, digits));

    public SubscriberMetrics(SubscriberCatalog? catalog = null)
    {
        _meter = new Meter(OrderFlowTelemetry.Name);
        ApplyLatencyInstrument = _meter.CreateHistogram<double>("orderflow.subscriber.apply_latency", "s",
            "From an event's acceptance by its order grain to a subscriber's handler succeeding on it (first application only)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        foreach (var name in catalog?.Names ?? [])
        {
            For(name);
        }

        _meter.CreateObservableCounter("orderflow.events.published", () => Published, "{event}",
            "Events the order grains' outboxes put on the order stream");
        _meter.CreateObservableCounter("orderflow.outbox.publish_failures", () => PublishFailures, "{attempt}",
            "Outbox publish attempts the transport refused (the event stays in the order's outbox and is retried)");
        _meter.CreateObservableUpDownCounter("orderflow.outbox.backlog", () => OutboxBacklog, "{event}",
            "Events stored by this silo's live order activations and not published yet (the outbox)");
        _meter.CreateObservableCounter("orderflow.subscriber.deliveries", () => Each(static t => Volatile.Read(ref t.Delivered)), "{event}",
            "Events the stream delivered to subscriber grains, duplicates included");
        _meter.CreateObservableCounter("orderflow.subscriber.applied", () => Each(static t => Volatile.Read(ref t.Applied)), "{event}",
            "Events subscribers applied, in order (handler succeeded)");
        _meter.CreateObservableCounter("orderflow.subscriber.duplicates", () => Each(static t => Volatile.Read(ref t.Duplicates)), "{event}",
            "Deliveries dropped as duplicates (already applied or already held)");
        _meter.CreateObservableCounter("orderflow.subscriber.writes", () => Each(static t => Volatile.Read(ref t.Writes)), "{write}",
            "Subscriber inbox state writes");
        _meter.CreateObservableCounter("orderflow.subscriber.retries", Retries, "{attempt}",
            "Failed handler attempts that will be retried: kind=handler (counts toward parking) or transient (infrastructure down)");
        _meter.CreateObservableCounter("orderflow.subscriber.parked", () => Each(static t => Volatile.Read(ref t.Parked)), "{order}",
            "Orders parked (dead-lettered) after their last attempt");
        _meter.CreateObservableUpDownCounter("orderflow.subscriber.lag", () => Each(t => Published - Volatile.Read(ref t.Done)), "{event}",
            "Events published but not yet applied: this silo's published minus this silo's applied or skipped; sum over silos");
    }

    public long Published => Volatile.Read(ref _published);
    public long PublishFailures => Volatile.Read(ref _publishFailures);
    public long OutboxBacklog => Volatile.Read(ref _outboxBacklog);
    public long Deliveries => Sum(static t => Volatile.Read(ref t.Delivered));
    public long Applied => Sum(static t => Volatile.Read(ref t.Applied));

    /// <summary>(Subscriber, event) pairs done for the first time in this silo: applied, stepped over or left out with nothing to do, or skipped by an operator.</summary>
    public long Done => Sum(static t => Volatile.Read(ref t.Done));
    public long Duplicates => Sum(static t => Volatile.Read(ref t.Duplicates));
    public long Writes => Sum(static t => Volatile.Read(ref t.Writes));

    /// <summary>The meter: a test reads one silo's instruments by this instance (several silos can share a process).</summary>
    public Meter Meter => _meter;

    /// <summary>A subscriber's counters; a subscriber grain keeps the reference, so the hot path does no lookup.</summary>
    public SubscriberTally For(string subscriber) => _subscribers.GetOrAdd(subscriber, static (name, metrics) => new SubscriberTally(name, metrics), this);

    internal Histogram<double> ApplyLatencyInstrument { get; }

    internal void RecordApplyLatency(TimeSpan latency) =>
        _applyLatency.RecordValue(Math.Clamp((long)latency.TotalMicroseconds, 1, 3_600_000_000L));

    /// <summary>The publish-to-apply latency since the last call, and a new period from now (the bench's per-phase figure).</summary>
    public LatencyPercentiles TakeApplyLatency()
    {
        var h = _applyLatency.GetIntervalHistogram();
        return h.TotalCount == 0
            ? new LatencyPercentiles(0, 0, 0, 0, 0)
            : new LatencyPercentiles(h.TotalCount, h.GetValueAtPercentile(50) / 1000.0, h.GetValueAtPercentile(99) / 1000.0,
                h.GetValueAtPercentile(99.9) / 1000.0, h.GetMaxValue() / 1000.0);
    }

    public void PublishedOne() => Interlocked.Increment(ref _published);
    public void PublishFailed() => Interlocked.Increment(ref _publishFailures);
    public void OutboxChanged(long delta) => Interlocked.Add(ref _outboxBacklog, delta);

    public void Dispose() => _meter.Dispose();

    private long Sum(Func<SubscriberTally, long> read)
    {
        var sum = 0L;
        foreach (var tally in _subscribers.Values)
        {
            sum += read(tally);
        }

        return sum;
    }

    private IEnumerable<Measurement<long>> Each(Func<SubscriberTally, long> read)
    {
        foreach (var tally in _subscribers.Values)
        {
            yield return new Measurement<long>(read(tally), tally.Tag);
        }
    }

    private IEnumerable<Measurement<long>> Retries()
    {
        foreach (var tally in _subscribers.Values)
        {
            yield return new Measurement<long>(Volatile.Read(ref tally.HandlerRetries), tally.Tag, SubscriberTally.HandlerKind);
            yield return new Measurement<long>(Volatile.Read(ref tally.TransientRetries), tally.Tag, SubscriberTally.TransientKind);
        }
    }
}

/// <summary>One subscriber's counters on this silo (see <see cref="SubscriberMetrics"/>). Fields, so increments are interlocked in place.</summary>
public sealed class SubscriberTally(string name, SubscriberMetrics? metrics = null)
{
    internal static readonly KeyValuePair<string, object?> HandlerKind = new("kind", "handler");
    internal static readonly KeyValuePair<string, object?> TransientKind = new("kind", "transient");

    public string Name { get; } = name;

    /// <summary>The subscriber's span name (<c>process points</c>), built once per subscriber, not per event.</summary>
    public string SpanName { get; } = $"process {name}";

    internal KeyValuePair<string, object?> Tag { get; } = new("subscriber", name);

    internal long Delivered;
    internal long Applied;
    internal long Done;
    internal long Duplicates;
    internal long Writes;
    internal long HandlerRetries;
    internal long TransientRetries;
    internal long Parked;

    public void DeliveredOne() => Interlocked.Increment(ref Delivered);
    public void Duplicate() => Interlocked.Increment(ref Duplicates);
    public void Wrote() => Interlocked.Increment(ref Writes);
    public void ParkedOne() => Interlocked.Increment(ref Parked);
    public void RetryScheduled(bool transient)
    {
        if (transient)
        {
            Interlocked.Increment(ref TransientRetries);
        }
        else
        {
            Interlocked.Increment(ref HandlerRetries);
        }
    }

    /// <summary>
    /// The handler succeeded (<paramref name="firstTime"/>: not a re-run of an event this activation already counted),
    /// <paramref name="sinceAccepted"/> after the order grain accepted the event's command.
    /// </summary>
    public void AppliedOne(bool firstTime, TimeSpan sinceAccepted = default)
    {
        Interlocked.Increment(ref Applied);
        if (firstTime)
        {
            Interlocked.Increment(ref Done);
            if (metrics is not null)
            {
                metrics.RecordApplyLatency(sinceAccepted);
                // Clamped: the order's clock and this silo's may differ by a little in a cluster.
                metrics.ApplyLatencyInstrument.Record(Math.Max(0, sinceAccepted.TotalSeconds), Tag);
            }
        }
    }

    /// <summary>An operator skipped an event, or the subscriber has nothing to do for it and was not handed it: it no longer counts as lag.</summary>
    public void SkippedOne() => Interlocked.Increment(ref Done);
}
