using System.Diagnostics;
using System.Runtime;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Benchmarks;

/// <summary>
/// The bench's admin handle on the silo: counters, memory (optionally after a full collection) and subscriber
/// slow-down drills set at run time. Answers only when <see cref="BenchmarkOptions.Enabled"/> is set. It reads and
/// changes the silo it is activated on, which is the whole cluster in the embedded profile (one silo).
/// </summary>
[GrainType("bench-control")]
public sealed class BenchControlGrain(
    IOptions<BenchmarkOptions> options,
    BenchDeliveryCounter benchDeliveries,
    SubscriberMetrics metrics,
    DrillBoard drills,
    StorageOperationCounter storage) : Grain, IBenchControlGrain
{
    public Task<SiloSample> SampleAsync(bool fullGc)
    {
        EnsureEnabled();
        if (fullGc)
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        }

        using var process = Process.GetCurrentProcess();
        return Task.FromResult(new SiloSample(
            DateTimeOffset.UtcNow,
            process.TotalProcessorTime.TotalSeconds,
            GC.GetTotalAllocatedBytes(precise: false),
            GC.GetTotalMemory(forceFullCollection: false),
            Environment.WorkingSet,
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            benchDeliveries.Deliveries,
            metrics.Deliveries,
            metrics.Applied,
            metrics.Duplicates,
            metrics.Writes,
            GCSettings.IsServerGC,
            GCSettings.LatencyMode != GCLatencyMode.Batch,
            Environment.ProcessorCount));
    }

    public Task SlowSubscriberAsync(string subscriber, int extraDelayMs)
    {
        EnsureEnabled();
        ArgumentException.ThrowIfNullOrWhiteSpace(subscriber);
        ArgumentOutOfRangeException.ThrowIfNegative(extraDelayMs);
        drills.Set(subscriber, new SubscriberDrill { ExtraDelayMs = extraDelayMs });
        return Task.CompletedTask;
    }

    public Task ClearDrillsAsync(IReadOnlyList<string> subscribers)
    {
        EnsureEnabled();
        foreach (var subscriber in subscribers)
        {
            drills.Clear(subscriber);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<StorageOperationCount>> GetStorageOperationsAsync()
    {
        EnsureEnabled();
        return Task.FromResult(storage.Snapshot());
    }

    private void EnsureEnabled()
    {
        if (!options.Value.Enabled)
        {
            throw new InvalidOperationException(
                $"the bench control grain is off on this silo; start it with {BenchmarkOptions.SectionName}:Enabled=true (./bench.sh does)");
        }
    }
}
