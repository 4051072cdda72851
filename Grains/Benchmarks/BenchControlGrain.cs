using System.Diagnostics;
using System.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Verification;
using Orleans.Storage;

namespace OrderFlow.Grains.Benchmarks;

/// <summary>
/// The bench's admin handle on the silo: counters, memory (optionally after a full collection) and subscriber
/// slow-down drills set at run time, the bench-only switches (<see cref="BenchSwitches"/>) and ledger head sizes read
/// from storage. Answers only when <see cref="BenchmarkOptions.Enabled"/> is set. It reads and
/// changes the silo it is activated on, which is the whole cluster in the embedded profile (one silo).
/// </summary>
[GrainType("bench-control")]
public sealed class BenchControlGrain(
    IOptions<BenchmarkOptions> options,
    BenchDeliveryCounter benchDeliveries,
    SubscriberMetrics metrics,
    DrillBoard drills,
    StorageOperationCounter storage,
    BenchCallCounter calls,
    BenchSwitches switches,
    Orleans.Serialization.Serializer serializer,
    IServiceProvider services) : Grain, IBenchControlGrain
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
            Environment.ProcessorCount,
            System.Runtime.JitInfo.GetCompiledMethodCount(),
            GC.GetTotalPauseDuration().TotalSeconds,
            metrics.Done,
            services.GetService<SiloLocalGrainStorage>()?.NativeBytes ?? 0));
    }

    public Task<LatencyPercentiles> TakeApplyLatencyAsync()
    {
        EnsureEnabled();
        return Task.FromResult(metrics.TakeApplyLatency());
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

    public Task<IReadOnlyList<GrainCallCount>> GetGrainCallsAsync()
    {
        EnsureEnabled();
        return Task.FromResult(calls.Snapshot());
    }

    public Task<IReadOnlyList<StoredRecordGroup>> GetStoredRecordsAsync()
    {
        EnsureEnabled();
        var groups = services.GetService<SiloLocalGrainStorage>() is { } local
            ? local.Summarize().Select(g => new StoredRecordGroup(g.Store, g.StateName, g.GrainType, g.Records, g.StateBytes, g.KeyBytes)).ToList()
            : [];
        return Task.FromResult<IReadOnlyList<StoredRecordGroup>>(groups);
    }

    public Task SetSkipReservationsAsync(bool skip)
    {
        EnsureEnabled();
        switches.SkipReservations = skip;
        return Task.CompletedTask;
    }

    public async Task<LedgerHeadSize> GetLedgerHeadAsync(LedgerKind kind, string key)
    {
        EnsureEnabled();
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        var (grainType, stateName) = StoredStateGrain.LedgerOf(kind);
        var storage = services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Ledgers);
        var id = GrainId.Create(grainType, key);
        if (kind is LedgerKind.Stock or LedgerKind.Coupon)
        {
            var record = new GrainState<ReservationHead>(new ReservationHead());
            await storage.ReadStateAsync(stateName, id, record);
            var head = record.State ?? new ReservationHead();
            var (bytes, journal) = (serializer.SerializeToArray(head).Length, head.Journal.Count);
            head.Journal = [];
            return new LedgerHeadSize(kind, key, record.RecordExists, bytes, head.Entries, journal, head.Pending.Count, head.Version,
                serializer.SerializeToArray(head).Length);
        }
        else
        {
            var record = new GrainState<BalanceHead>(new BalanceHead());
            await storage.ReadStateAsync(stateName, id, record);
            var head = record.State ?? new BalanceHead();
            var (bytes, journal) = (serializer.SerializeToArray(head).Length, head.Journal.Count);
            head.Journal = [];
            return new LedgerHeadSize(kind, key, record.RecordExists, bytes, head.Entries, journal, 0, head.Version,
                serializer.SerializeToArray(head).Length);
        }
    }

    public async Task<DirectReservations> ReserveDirectAsync(string sku, string orderPrefix, int count, int concurrency)
    {
        EnsureEnabled();
        ArgumentException.ThrowIfNullOrWhiteSpace(sku);
        ArgumentException.ThrowIfNullOrWhiteSpace(orderPrefix);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(concurrency);
        var ledger = GrainFactory.GetGrain<IStockReservationsGrain>(sku);
        var (next, granted, refused) = (-1, 0, 0);
        var clock = Stopwatch.StartNew();
        // Workers on this grain's scheduler (one request's continuations), each taking the next order id.
        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, count)).Select(async worker =>
        {
            int i;
            while ((i = ++next) < count)
            {
                var orderId = $"{orderPrefix}-{i}";
                if ((await ledger.ReserveAsync(orderId, 0, 1)).Succeeded)
                {
                    granted++;
                    _ = ledger.ConfirmAsync(orderId, 0);
                }
                else
                {
                    refused++;
                }
            }
        }));
        return new DirectReservations(granted, refused, clock.Elapsed.TotalSeconds);
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
