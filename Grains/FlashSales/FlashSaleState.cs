using OrderFlow.Contracts;

namespace OrderFlow.Grains.FlashSales;

/// <summary>The record of one sale: settings, rate, and the units handed to each shard (all of it durable).</summary>
[GenerateSerializer, Alias("flash.FlashSaleRecord.v1")]
public sealed class FlashSaleRecord
{
    [Id(0)] public FlashSaleSpec? Spec { get; set; }
    [Id(1)] public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Units handed to each shard so far; never more than <see cref="FlashSaleSpec.Stock"/> in sum.</summary>
    [Id(2)] public long[] Granted { get; set; } = new long[FlashSaleLimits.Shards];

    /// <summary>The SKU refused a winner's order: the sale hands out nothing more.</summary>
    [Id(3)] public bool Exhausted { get; set; }

    /// <summary>
    /// The secret the winners' order ids are derived from (<see cref="FlashSaleLimits.OrderIdOf"/>), drawn at creation;
    /// null for a sale created before it existed.
    /// </summary>
    [Id(4)] public string? OrderKey { get; set; }

    public long UnitsLeft => Spec is null || Exhausted ? 0 : Spec.Stock - Granted.Sum();
}

/// <summary>One queued request: a unit is held for it from the moment it is stored.</summary>
[GenerateSerializer, Immutable, Alias("flash.FlashTicket.v1")]
public sealed record FlashTicket(
    [property: Id(0)] long Seq,
    [property: Id(1)] string UserId,
    [property: Id(2)] string RequestId,
    [property: Id(3)] DateTimeOffset QueuedAt);

/// <summary>
/// The head of one admission shard. Tickets are numbered 0, 1, … in the order they were queued; the last
/// <see cref="Open"/> ones live in the head, every earlier run of <see cref="FlashSaleShardGrain.SegmentSize"/> in a
/// sealed segment record of its own, so a write costs the same at the 10,000th ticket as at the first.
/// </summary>
[GenerateSerializer, Alias("flash.FlashShardState.v1")]
public sealed class FlashShardState
{
    /// <summary>Tickets ever queued (the next ticket's number).</summary>
    [Id(0)] public long Issued { get; set; }

    /// <summary>Tickets from <c>Sealed × SegmentSize</c> on.</summary>
    [Id(1)] public List<FlashTicket> Open { get; set; } = [];

    /// <summary>Sealed segments (records <c>{shard key}~{n}~{token n}</c>, n below this; see <see cref="SegmentTokens"/>).</summary>
    [Id(2)] public int Sealed { get; set; }

    /// <summary>Tickets below this number have their final answer.</summary>
    [Id(3)] public long Resolved { get; set; }

    /// <summary>Resolved tickets that ended sold out one by one (their order was refused); all others below <see cref="Resolved"/> won.</summary>
    [Id(4)] public List<long> SoldOut { get; set; } = [];

    /// <summary>Set when the sale was exhausted: every ticket from this number on ends sold out, without an order.</summary>
    [Id(5)] public long? SoldOutFrom { get; set; }

    /// <summary>Units the sale handed to this shard, as last heard (the sale's record is the authority).</summary>
    [Id(6)] public long Granted { get; set; }

    /// <summary>
    /// The token of each sealed segment's record, drawn at random when it was written: a segment record is written once
    /// under a key no other attempt uses, so a seal whose head write failed, or a second activation of the shard, can
    /// never overwrite a segment a head points to. Its leftovers are never read. ≤ MaxStock / 256 entries of 8 characters.
    /// A head stored before tokens existed has none: its segments are <c>{shard key}~{n}</c>.
    /// </summary>
    [Id(7)] public List<string> SegmentTokens { get; set; } = [];

    public long Backlog => Issued - Resolved;

    public long SoldOutCount => SoldOut.Count + (SoldOutFrom is { } from ? Math.Max(0, Resolved - from) : 0);

    public long Won => Resolved - SoldOutCount;

    /// <summary>Whether resolved ticket <paramref name="seq"/> ended sold out.</summary>
    public bool EndedSoldOut(long seq) => seq >= SoldOutFrom || SoldOut.BinarySearch(seq) >= 0;
}

/// <summary>A sealed run of tickets (never changed once written).</summary>
[GenerateSerializer, Alias("flash.FlashTicketSegment.v1")]
public sealed class FlashTicketSegment
{
    [Id(0)] public List<FlashTicket> Tickets { get; set; } = [];
}
