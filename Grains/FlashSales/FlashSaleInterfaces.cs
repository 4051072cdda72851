using OrderFlow.Contracts;
using Orleans.Concurrency;

namespace OrderFlow.Grains.FlashSales;

/// <summary>What a silo-local front, a shard or the drainer needs to know of a sale.</summary>
[GenerateSerializer, Immutable, Alias("flash.FlashSaleInfo.v1")]
public sealed record FlashSaleInfo(
    [property: Id(0)] bool Exists,
    [property: Id(1)] FlashSaleSpec? Spec,
    [property: Id(2)] long UnitsLeft,
    [property: Id(3)] bool Exhausted,
    [property: Id(4)] string? OrderKey = null)
{
    /// <summary>Nothing left to hand to a shard: every unit is held by a ticket (or the SKU itself ran out).</summary>
    public bool SoldOut => Exists && (Exhausted || UnitsLeft == 0);
}

/// <summary>Units handed to one shard so far (the sale's record is the authority) and what the sale has left.</summary>
[GenerateSerializer, Immutable, Alias("flash.UnitGrant.v1")]
public sealed record UnitGrant(
    [property: Id(0)] long GrantedTotal,
    [property: Id(1)] long UnitsLeft,
    [property: Id(2)] bool Exhausted);

/// <summary>A ticket waiting for its order, as the drainer takes it.</summary>
[GenerateSerializer, Immutable, Alias("flash.QueuedTicket.v1")]
public sealed record QueuedTicket(
    [property: Id(0)] long Seq,
    [property: Id(1)] string UserId);

/// <summary>
/// Tickets of a shard from a point on, with the first ticket still without a final answer (<see cref="Resolved"/>) and
/// how many tickets there are from the point asked for on (<see cref="Remaining"/>, those returned included).
/// </summary>
[GenerateSerializer, Immutable, Alias("flash.ShardBacklog.v1")]
public sealed record ShardBacklog(
    [property: Id(0)] IReadOnlyList<QueuedTicket> Tickets,
    [property: Id(1)] long Remaining,
    [property: Id(2)] long Resolved);

/// <summary>A shard's counters: from its stored state, except <see cref="Refused"/> (since its activation).</summary>
[GenerateSerializer, Immutable, Alias("flash.ShardStats.v1")]
public sealed record ShardStats(
    [property: Id(0)] long Accepted,
    [property: Id(1)] long Processed,
    [property: Id(2)] long Won,
    [property: Id(3)] long Backlog,
    [property: Id(4)] IReadOnlyDictionary<AdmissionOutcome, long> Refused);

/// <summary>
/// What a shard has queued, as 64-bit keys of (user, request id) (<see cref="FlashSaleShardGrain.RequestKey"/>), sorted.
/// <see cref="Final"/>: the shard can queue nothing more (the sale is sold out and the shard holds no spare unit), so the
/// keys never change again and a front may answer any request not among them sold out by itself.
/// </summary>
[GenerateSerializer, Immutable, Alias("flash.QueuedKeys.v1")]
public sealed record QueuedKeys(
    [property: Id(0)] bool Final,
    [property: Id(1)] ulong[] Keys);

/// <summary>The drainer's counters: orders it created per unix second (recent past) and in all since its activation.</summary>
[GenerateSerializer, Immutable, Alias("flash.DrainStats.v1")]
public sealed record DrainStats(
    [property: Id(0)] long Placed,
    [property: Id(1)] IReadOnlyDictionary<long, long> Windows,
    [property: Id(2)] int Rate);

/// <summary>
/// The record of one sale (grain type <c>flash-sale</c>, key = sale id): its settings, its rate and the units it has
/// handed to each admission shard. It never calls another flash-sale grain, so none of them can deadlock on it.
/// </summary>
[Alias("flash.IFlashSaleRecordGrain")]
public interface IFlashSaleRecordGrain : IGrainWithStringKey
{
    [Alias("Create")] Task<FlashSaleCommandResult> CreateAsync(FlashSaleSpec spec);

    [Alias("SetRate")] Task<FlashSaleCommandResult> SetRateAsync(int rate);

    /// <summary>The sale as it stands; <paramref name="refusals"/> are a front's refusals since its last refresh (counted here, in memory).</summary>
    [Alias("Refresh")] Task<FlashSaleInfo> RefreshAsync(IReadOnlyDictionary<AdmissionOutcome, long>? refusals);

    /// <summary>Hands up to <paramref name="wanted"/> more units to <paramref name="shard"/>, durably; answers the shard's total.</summary>
    [Alias("TakeUnits")] Task<UnitGrant> TakeUnitsAsync(int shard, long wanted);

    /// <summary>The SKU refused a winner's order (out of stock): nothing more is handed out, every queued ticket ends sold out.</summary>
    [Alias("MarkExhausted")] Task MarkExhaustedAsync();

    /// <summary>Refusals the fronts reported (in memory, since this activation).</summary>
    [Alias("FrontRefusals")] Task<IReadOnlyDictionary<AdmissionOutcome, long>> GetFrontRefusalsAsync();
}

/// <summary>
/// One admission shard of a sale (grain type <c>flash-shard</c>, key <c>{sale}~{shard}</c>): the buyers whose user id
/// hashes to it (<see cref="FlashSaleLimits.ShardOf"/>), their tickets, and how far the drain has answered them.
/// </summary>
[Alias("flash.IFlashSaleShardGrain")]
public interface IFlashSaleShardGrain : IGrainWithStringKey
{
    [Alias("Admit")] Task<AdmissionResult> AdmitAsync(string userId, string requestId);

    /// <summary>Many requests of this shard's users, answered in order; they join the same group commit as single ones.</summary>
    [Alias("AdmitMany")] Task<AdmissionResult[]> AdmitManyAsync(IReadOnlyList<BuyRequest> requests);

    [Alias("Ticket")] Task<TicketStatus> GetTicketAsync(long seq);

    /// <summary>Up to <paramref name="max"/> tickets from <paramref name="fromSeq"/> on, or from the first without a final answer if that is later.</summary>
    [Alias("Peek")] Task<ShardBacklog> PeekAsync(long fromSeq, int max);

    /// <summary>Final answers for tickets <paramref name="fromSeq"/>, … in order (true: won); a repeat changes nothing.</summary>
    [Alias("Resolve")] Task ResolveAsync(long fromSeq, IReadOnlyList<bool> won);

    /// <summary>The sale is exhausted: every ticket without a final answer, and any later one, is sold out.</summary>
    [Alias("ResolveRestSoldOut")] Task ResolveRestSoldOutAsync();

    [Alias("Stats")] Task<ShardStats> GetStatsAsync();

    /// <summary>The keys of every request this shard queued, and whether it can queue any more.</summary>
    [Alias("QueuedKeys")] Task<QueuedKeys> GetQueuedKeysAsync();
}

/// <summary>
/// The drain of one sale (grain type <c>flash-drainer</c>, key = sale id): the only place that turns tickets into
/// orders, so its pace is the sale's cap cluster-wide.
/// </summary>
[Alias("flash.IFlashSaleDrainerGrain")]
public interface IFlashSaleDrainerGrain : IGrainWithStringKey
{
    /// <summary>Tickets may be waiting (a shard queued some, a ticket was asked about, the rate changed).</summary>
    [Alias("Wake"), OneWay] Task WakeAsync();

    [Alias("Stats")] Task<DrainStats> GetStatsAsync();
}
