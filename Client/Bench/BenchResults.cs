using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>What the silo spent during one phase: the difference of two <see cref="SiloSample"/>s.</summary>
public sealed record SiloCost(double CpuSeconds, double CpuPercent, long AllocatedBytes, int Gen0, int Gen1, int Gen2, long SubscriberWrites, long Duplicates,
    double GcPauseMs = 0)
{
    public static SiloCost Between(SiloSample before, SiloSample after, double seconds) => new(
        after.CpuSeconds - before.CpuSeconds,
        seconds > 0 ? 100 * (after.CpuSeconds - before.CpuSeconds) / seconds : 0,
        after.AllocatedBytes - before.AllocatedBytes,
        after.Gen0Collections - before.Gen0Collections,
        after.Gen1Collections - before.Gen1Collections,
        after.Gen2Collections - before.Gen2Collections,
        after.SubscriberWrites - before.SubscriberWrites,
        after.SubscriberDuplicates - before.SubscriberDuplicates,
        (after.GcPauseSeconds - before.GcPauseSeconds) * 1000);

    /// <summary>The silo's collections and their total pause over the phase, for reading beside its latency tail.</summary>
    public string DescribeGc(double seconds) =>
        $"GC {Gen0}/{Gen1}/{Gen2} (gen0/1/2), paused {GcPauseMs:0} ms ({(seconds > 0 ? GcPauseMs / 10 / seconds : 0):0.0} % of the time)";
}

/// <summary>One throughput phase: how much work, how long until the last delivery was applied, and what the silo spent.</summary>
public sealed record ThroughputResult(string Phase, int Orders, long Events, long Deliveries, double CommandSeconds, double Seconds,
    int Refused, SiloCost Silo)
{
    public double OrdersPerSecond => Orders / Seconds;
    public double DeliveriesPerSecond => Deliveries / Seconds;
    public double EventsPerSecond => Events / Seconds;
    public double CpuMicrosPerDelivery => Deliveries == 0 ? 0 : Silo.CpuSeconds * 1e6 / Deliveries;
    public double AllocatedBytesPerDelivery => Deliveries == 0 ? 0 : (double)Silo.AllocatedBytes / Deliveries;
    public double WritesPerDelivery => Deliveries == 0 ? 0 : (double)Silo.SubscriberWrites / Deliveries;
}

/// <summary>
/// Silo memory around the scale phase: the managed heap after a full GC plus the embedded store's records, which live in
/// native memory (<see cref="SiloSample.HeldBytes"/>).
/// </summary>
public sealed record MemoryResult(int Orders, long MemoryBeforeBytes, long MemoryHeldBytes, long MemoryAfterDeactivationBytes,
    int ActivationsHeld, int ActivationsAfterDeactivation, long WorkingSetHeldBytes, long WorkingSetAfterBytes,
    IReadOnlyList<StoredPerOrder> Stored)
{
    public double HeldBytesPerOrder => (double)(MemoryHeldBytes - MemoryBeforeBytes) / Orders;
    public double DeactivatedBytesPerOrder => (double)(MemoryAfterDeactivationBytes - MemoryBeforeBytes) / Orders;
}

/// <summary>
/// What the phase's orders added to the embedded store, per order, for one kind of record (store/state name/grain
/// type): records, and the bytes of their states and grain keys.
/// </summary>
public sealed record StoredPerOrder(string Kind, double Records, double StateBytes, double KeyBytes)
{
    public static IReadOnlyList<StoredPerOrder> Between(IReadOnlyList<StoredRecordGroup> before, IReadOnlyList<StoredRecordGroup> after, int orders)
    {
        static string Kind(StoredRecordGroup g) => $"{g.Store}/{g.StateName}/{g.GrainType}";
        var (earlier, later) = (before.ToDictionary(Kind), after.ToDictionary(Kind));
        // Every kind on either side: one emptied during the phase counts as a negative change, not as nothing.
        return earlier.Keys.Union(later.Keys)
            .Select(kind => (kind, was: earlier.GetValueOrDefault(kind), now: later.GetValueOrDefault(kind)))
            .Select(x => new StoredPerOrder(x.kind,
                (double)((x.now?.Records ?? 0) - (x.was?.Records ?? 0)) / orders,
                (double)((x.now?.StateBytes ?? 0) - (x.was?.StateBytes ?? 0)) / orders,
                (double)((x.now?.KeyBytes ?? 0) - (x.was?.KeyBytes ?? 0)) / orders))
            .Where(s => s.Records != 0 || s.StateBytes != 0)
            .OrderByDescending(s => s.StateBytes + s.KeyBytes)
            .ToArray();
    }
}

/// <summary>
/// Grain calls per order event of one target grain type over a phase: what the silo's call counter
/// (<see cref="IBenchControlGrain.GetGrainCallsAsync"/>) added between two snapshots, divided by the phase's events.
/// </summary>
public sealed record CallsPerEvent(string GrainType, double Calls)
{
    public static IReadOnlyList<CallsPerEvent> Between(IReadOnlyList<GrainCallCount> before, IReadOnlyList<GrainCallCount> after, long events)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(events, 1);
        var earlier = before.ToDictionary(c => c.GrainType, c => c.Calls, StringComparer.Ordinal);
        return after
            .Select(c => new CallsPerEvent(c.GrainType, (double)(c.Calls - earlier.GetValueOrDefault(c.GrainType)) / events))
            .Where(c => c.Calls > 0)
            .OrderByDescending(c => c.Calls).ThenBy(c => c.GrainType, StringComparer.Ordinal)
            .ToArray();
    }
}

/// <summary>One goal of issue 5: measured value against its target.</summary>
public sealed record GoalResult(string Goal, string Measured, string Target, bool Met);

/// <summary>Everything one bench run measured; written as JSON and printed as a table.</summary>
public sealed record BenchReport(
    string RunId, DateTimeOffset StartedAt, string Machine, string Settings, IReadOnlyList<string> Subscribers, SiloSample SiloAtStart,
    double BaselineCallsPerSecond, ThroughputResult StreamBaseline, ThroughputResult Pipeline, long LostEvents,
    PacedResult Latency, PacedResult LatencyWithSlowSubscribers, double AsyncP99Ratio,
    ThroughputResult? ScaleReference, ThroughputResult? Scale, MemoryResult? Memory, IReadOnlyList<GoalResult> Goals, double TotalSeconds)
{
    public string ResultLine()
    {
        var bytes = Memory is null ? "n/a" : F(Memory.DeactivatedBytesPerOrder, "0");
        var scaleRatio = Scale is null || ScaleReference is null ? "n/a" : F(Scale.OrdersPerSecond / ScaleReference.OrdersPerSecond, "0.00");
        return "RESULT " +
               $"baseline_calls_per_s={F(BaselineCallsPerSecond, "0")} baseline_deliveries_per_s={F(StreamBaseline.DeliveriesPerSecond, "0")} " +
               $"pipeline_orders_per_s={F(Pipeline.OrdersPerSecond, "0")} pipeline_deliveries_per_s={F(Pipeline.DeliveriesPerSecond, "0")} " +
               $"p99_ms={F(Latency.FromIntended.P99, "0.00")} async_p99_ratio={F(AsyncP99Ratio, "0.00")} bytes_per_order={bytes} " +
               $"p999_ms={F(Latency.FromIntended.P999, "0.00")} delivery_ratio={F(Pipeline.DeliveriesPerSecond / StreamBaseline.DeliveriesPerSecond, "0.00")} " +
               $"scale_throughput_ratio={scaleRatio} lost={LostEvents}";
    }

    public static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
