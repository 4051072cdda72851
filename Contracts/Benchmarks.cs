using Orleans.Runtime;

namespace OrderFlow.Contracts;

/// <summary>
/// The benchmark's own stream: same provider as the orders (so the same queues and pulling agents), its own
/// namespace, so the order subscribers never see it and the bench subscriber never sees an order event.
/// </summary>
public static class BenchStreams
{
    /// <summary>Stream namespace of the trivial bench events; the stream key is a bench stream id.</summary>
    public const string Namespace = "bench";

    public static StreamId For(string key) => StreamId.Create(Namespace, key);
}

/// <summary>A trivial event: the smallest thing that can travel on the order stream provider.</summary>
[GenerateSerializer, Immutable, Alias("bench.BenchEvent.v1")]
public sealed record BenchEvent(
    [property: Id(0)] string StreamKey,
    [property: Id(1)] long Sequence)
{
    /// <summary>Every bench stream carries this many events, as an order carries placed, paid, shipped, received.</summary>
    public const long LastSequence = 4;
}

/// <summary>The cheapest grain call Orleans can make: the baseline for calls per second through the gateway.</summary>
[Alias("bench.IBenchEchoGrain")]
[ClientCallable]
public interface IBenchEchoGrain : IGrainWithIntegerKey
{
    [Alias("Ping")] Task<int> PingAsync(int value);
}

/// <summary>
/// Publishes trivial events to one bench stream (key = stream key), shaped like an order grain's publish but
/// without state: the baseline for stream deliveries per second.
/// </summary>
[Alias("bench.IBenchProducerGrain")]
[ClientCallable]
public interface IBenchProducerGrain : IGrainWithStringKey
{
    [Alias("Publish")] Task PublishAsync(long sequence);
}

/// <summary>
/// What a silo has done and how much it holds, read by the bench between phases. Counters are totals since the
/// silo started; the bench subtracts two snapshots.
/// </summary>
[GenerateSerializer, Immutable, Alias("bench.SiloSample.v1")]
public sealed record SiloSample(
    [property: Id(0)] DateTimeOffset TakenAt,
    [property: Id(1)] double CpuSeconds,
    [property: Id(2)] long AllocatedBytes,
    [property: Id(3)] long HeapBytes,
    [property: Id(4)] long WorkingSetBytes,
    [property: Id(5)] int Gen0Collections,
    [property: Id(6)] int Gen1Collections,
    [property: Id(7)] int Gen2Collections,
    [property: Id(8)] long BenchDeliveries,
    [property: Id(9)] long SubscriberDeliveries,
    [property: Id(10)] long SubscriberApplied,
    [property: Id(11)] long SubscriberDuplicates,
    [property: Id(12)] long SubscriberWrites,
    [property: Id(13)] bool ServerGc,
    [property: Id(14)] bool ConcurrentGc,
    [property: Id(15)] int ProcessorCount,
    [property: Id(16)] long JitCompiledMethods = 0,
    [property: Id(17)] double GcPauseSeconds = 0,
    [property: Id(18)] long SubscriberDone = 0,
    [property: Id(19)] long NativeStoreBytes = 0)
{
    /// <summary>
    /// What the silo holds: its managed heap and the embedded store's records, which live in native memory
    /// (<c>SiloLocalGrainStorage</c>): memory per order counts both.
    /// </summary>
    public long HeldBytes => HeapBytes + NativeStoreBytes;
}

/// <summary>
/// The bench's handle on the silo it measures (embedded profile: one silo). It is refused unless the silo runs
/// with <c>Benchmarks:Enabled=true</c>, because it can slow subscribers down and force garbage collections.
/// </summary>
[Alias("bench.IBenchControlGrain")]
[ClientCallable]
public interface IBenchControlGrain : IGrainWithIntegerKey
{
    /// <summary>Counters and memory of this silo; with <paramref name="fullGc"/> after a full, compacting collection.</summary>
    [Alias("Sample")] Task<SiloSample> SampleAsync(bool fullGc);

    /// <summary>Slows every handler attempt of <paramref name="subscriber"/> by <paramref name="extraDelayMs"/> (a drill, set at run time).</summary>
    [Alias("SlowSubscriber")] Task SlowSubscriberAsync(string subscriber, int extraDelayMs);

    /// <summary>Removes drills set by <see cref="SlowSubscriberAsync"/>.</summary>
    [Alias("ClearDrills")] Task ClearDrillsAsync(IReadOnlyList<string> subscribers);

    /// <summary>
    /// Requests this silo sent to Azure Storage since it started, per service, resource and operation (durable
    /// profile; empty in the embedded profile, which sends none).
    /// </summary>
    [Alias("StorageOperations")] Task<IReadOnlyList<StorageOperationCount>> GetStorageOperationsAsync();

    /// <summary>
    /// Grain calls this silo took since it started, by target grain type (system targets and stream queues included).
    /// The bench takes it before and after a phase: grain calls per order event.
    /// </summary>
    [Alias("GrainCalls")] Task<IReadOnlyList<GrainCallCount>> GetGrainCallsAsync();

    /// <summary>
    /// Bench only: while on, this silo's placements reserve no stock and no coupon use (the "without reservations" side
    /// of <c>bench --workload consistency</c>'s ratio). Off by default; the bench turns it off again when it is done.
    /// </summary>
    [Alias("SetSkipReservations")] Task SetSkipReservationsAsync(bool skip);

    /// <summary>
    /// The head row of one ledger as storage holds it (read through this silo's grain storage, no ledger activated):
    /// its size serialized with Orleans' serializer, its entry count and the entries in its journal.
    /// </summary>
    [Alias("LedgerHead")] Task<LedgerHeadSize> GetLedgerHeadAsync(LedgerKind kind, string key);

    /// <summary>
    /// The SKU's own limit, without the placement around it: <paramref name="count"/> reservations of one unit on
    /// <paramref name="sku"/>, <paramref name="concurrency"/> at a time, made from this silo straight to the stock ledger
    /// (order ids <c>{orderPrefix}-{i}</c>, epoch 0), each confirmed (one-way) like a placement does. Units stay reserved
    /// for orders that do not exist: only for a bench SKU.
    /// </summary>
    [Alias("ReserveDirect")] Task<DirectReservations> ReserveDirectAsync(string sku, string orderPrefix, int count, int concurrency);

    /// <summary>
    /// The publish-to-apply latency of every event this silo's subscribers applied since the last call (from the event's
    /// <c>OccurredAt</c>, when its order grain accepted the command, to the subscriber's handler succeeding), then starts
    /// a new period.
    /// </summary>
    [Alias("TakeApplyLatency")] Task<LatencyPercentiles> TakeApplyLatencyAsync();

    /// <summary>
    /// What the embedded profile's in-process store holds, by store, state name and grain type (empty where the silo
    /// keeps state elsewhere): the breakdown of the bench's memory per order.
    /// </summary>
    [Alias("StoredRecords")] Task<IReadOnlyList<StoredRecordGroup>> GetStoredRecordsAsync();
}

/// <summary>
/// Records of one kind in the embedded store: <see cref="StateBytes"/> are the serialized states, <see cref="KeyBytes"/>
/// the grain keys; each record also costs a fixed overhead in memory (its dictionary node and two array headers).
/// </summary>
[GenerateSerializer, Immutable, Alias("bench.StoredRecordGroup.v1")]
public sealed record StoredRecordGroup(
    [property: Id(0)] string Store,
    [property: Id(1)] string StateName,
    [property: Id(2)] string GrainType,
    [property: Id(3)] int Records,
    [property: Id(4)] long StateBytes,
    [property: Id(5)] long KeyBytes);

/// <summary>Percentiles of a latency distribution in milliseconds (HdrHistogram, 2 significant digits).</summary>
[GenerateSerializer, Immutable, Alias("bench.LatencyPercentiles.v1")]
public sealed record LatencyPercentiles(
    [property: Id(0)] long Count,
    [property: Id(1)] double P50,
    [property: Id(2)] double P99,
    [property: Id(3)] double P999,
    [property: Id(4)] double Max);

/// <summary>What <see cref="IBenchControlGrain.ReserveDirectAsync"/> did: granted and refused reservations, and the seconds it took.</summary>
[GenerateSerializer, Immutable, Alias("bench.DirectReservations.v1")]
public sealed record DirectReservations(
    [property: Id(0)] int Granted,
    [property: Id(1)] int Refused,
    [property: Id(2)] double Seconds);

/// <summary>
/// A ledger's stored head row: <see cref="Bytes"/> is the head state serialized with Orleans' serializer (what the
/// embedded profile stores; the Azure profile's row holds the same fields), <see cref="Entries"/> the entries it ever
/// recorded, <see cref="JournalEntries"/> the entries of its last commit (held in the head until written apart; at most
/// one batch) and <see cref="BytesWithoutJournal"/> the head's size without them (what grows if anything grows),
/// <see cref="Pending"/> the unconfirmed reservations it lists (stock and coupon only).
/// </summary>
[GenerateSerializer, Immutable, Alias("bench.LedgerHeadSize.v1")]
public sealed record LedgerHeadSize(
    [property: Id(0)] LedgerKind Kind,
    [property: Id(1)] string Key,
    [property: Id(2)] bool Exists,
    [property: Id(3)] int Bytes,
    [property: Id(4)] long Entries,
    [property: Id(5)] int JournalEntries,
    [property: Id(6)] int Pending,
    [property: Id(7)] long Version,
    [property: Id(8)] int BytesWithoutJournal);

/// <summary>
/// Requests a silo sent to one Azure Storage resource with one operation, retries included: <see cref="Failed"/> of
/// them were answered with an error status, and <see cref="Messages"/> is the number of queue messages the gets
/// returned. Service is "table" or "queue"; resource is a table name or the order stream's queues.
/// </summary>
[GenerateSerializer, Immutable, Alias("bench.StorageOperationCount.v1")]
public sealed record StorageOperationCount(
    [property: Id(0)] string Service,
    [property: Id(1)] string Resource,
    [property: Id(2)] string Operation,
    [property: Id(3)] long Requests,
    [property: Id(4)] long Failed,
    [property: Id(5)] long Messages);

/// <summary>Grain calls a silo took, for one target grain type (<see cref="IBenchControlGrain.GetGrainCallsAsync"/>).</summary>
[GenerateSerializer, Immutable, Alias("bench.GrainCallCount.v1")]
public sealed record GrainCallCount(
    [property: Id(0)] string GrainType,
    [property: Id(1)] long Calls);
