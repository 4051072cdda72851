namespace OrderFlow.Contracts;

/// <summary>
/// One order in the order catalog: its id and the time of its <c>OrderPlaced</c> event. Kept this small on purpose: a
/// catalog segment's state is one storage row of up to <see cref="IOrderCatalogGrain.MaxSegmentSize"/> of these.
/// Entries are ordered by <see cref="CreatedAt"/>, then by <see cref="OrderId"/> (ordinal): <see cref="Compare"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("catalog.CatalogEntry.v1")]
public sealed record CatalogEntry(
    [property: Id(0)] string OrderId,
    [property: Id(1)] DateTimeOffset CreatedAt)
{
    /// <summary>The catalog's order: creation time, then order id (ordinal), so two orders placed in the same tick still sort one way.</summary>
    public static int Compare(CatalogEntry a, CatalogEntry b)
    {
        var byTime = a.CreatedAt.UtcTicks.CompareTo(b.CreatedAt.UtcTicks);
        return byTime != 0 ? byTime : string.CompareOrdinal(a.OrderId, b.OrderId);
    }
}

/// <summary>
/// One segment of a catalog shard: its number (0, 1, 2 … in the order they were opened), how many entries it holds, and
/// the earliest and latest creation time among them (null while it is empty). Only the shard's last segment is
/// <see cref="Open"/> (still taking entries); a closed segment's figures never change.
/// </summary>
[GenerateSerializer, Immutable, Alias("catalog.CatalogSegment.v1")]
public sealed record CatalogSegment(
    [property: Id(0)] int Number,
    [property: Id(1)] int Count,
    [property: Id(2)] DateTimeOffset? FirstCreatedAt,
    [property: Id(3)] DateTimeOffset? LastCreatedAt,
    [property: Id(4)] bool Open);

/// <summary>
/// The head of one shard of the order catalog (key = shard number; an order belongs to shard
/// <see cref="IOrderRelayGrain.ShardOf"/>, <see cref="IOrderRelayGrain.Shards"/> shards): it lists the shard's
/// segments (<see cref="IOrderCatalogSegmentGrain"/>, at most <c>OrderCatalog:SegmentSize</c> entries each) and adds
/// new orders to the last one. The catalog exists so that something can walk every order ever placed — a new
/// subscriber's backfill — without any grain or row growing with the number of orders.
/// <para>
/// <b>Order.</b> Within a shard, segments are in the order they were opened and each segment's entries are sorted by
/// creation time (<see cref="CatalogEntry.Compare"/>); an entry goes to the segment open when it arrives, so two
/// neighbouring segments overlap in time only by what arrived out of order (orders placed on silos whose clocks
/// differ, or in the same instant). Across shards there is no order: a reader walks shard by shard.
/// </para>
/// <para>
/// <b>Bounds</b> (measured with the Orleans serializer the storage providers use: <c>BackfillBatchTests</c>). An entry
/// is its order id's UTF-8 bytes plus about 25: a full segment of 2,000 entries is 98 KB with 24-character ids and
/// 308 KB with the longest (128-character) ids, within Azure Table's 1 MB entity. The head holds about 51 bytes per
/// closed segment, so it grows by one record per <c>SegmentSize</c> orders of its shard: with 500 per segment (the
/// default) and 64 shards, one record per 32,000 orders placed overall, about 1.6 KB per head per million orders; a
/// head row reaches 1 MB after some 650 million orders (2.6 billion at 2,000 per segment). Adding an order costs one
/// write (its segment's, on average half full: about 12 KB at 500 per segment), plus one head write per
/// <c>SegmentSize</c> orders of the shard.
/// </para>
/// </summary>
[Alias("catalog.IOrderCatalogGrain")]
public interface IOrderCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>The largest segment the catalog allows: 2,000 entries of the longest ids stay far below a 1 MB row.</summary>
    public const int MaxSegmentSize = 2_000;

    /// <summary>
    /// The segment size unless configured: each new order rewrites its open segment, on average half full, so 500
    /// entries mean about 12 KB serialized per placement with 24-character ids (2,000 meant 49 KB, more than every
    /// other write of a placement together), against a head that fills four times faster than at 2,000.
    /// </summary>
    public const int DefaultSegmentSize = 500;

    /// <summary>
    /// Records durably that <paramref name="orderId"/> was placed at <paramref name="createdAt"/> (the time its
    /// <c>OrderPlaced</c> event carries). Adding an order its open segment already holds writes nothing; a retry that
    /// arrives after the segment closed adds a second entry, which readers take as the same order twice.
    /// </summary>
    [Alias("Add")] Task AddAsync(string orderId, DateTimeOffset createdAt);

    /// <summary>The shard's segments, oldest first; the last one is open and its figures are read from it now.</summary>
    [Alias("Segments")] Task<IReadOnlyList<CatalogSegment>> GetSegmentsAsync();
}

/// <summary>
/// One segment of a catalog shard (key = <see cref="KeyOf"/>, e.g. <c>17.3</c>): at most <c>OrderCatalog:SegmentSize</c>
/// entries sorted by creation time, in one state record. Reached through its head (<see cref="IOrderCatalogGrain"/>),
/// which decides when to open the next one.
/// </summary>
[Alias("catalog.IOrderCatalogSegmentGrain")]
public interface IOrderCatalogSegmentGrain : IGrainWithStringKey
{
    /// <summary>The key of segment <paramref name="number"/> of shard <paramref name="shard"/> (a <c>.</c>: Azure Table folds <c>/</c> in keys).</summary>
    public static string KeyOf(int shard, int number) => $"{shard}.{number}";

    /// <summary>Adds the entry (durably) unless this segment already holds the order; says what the segment holds now.</summary>
    [Alias("Add")] Task<CatalogSegment> AddAsync(CatalogEntry entry);

    /// <summary>
    /// Up to <paramref name="max"/> entries in the catalog's order that come after <paramref name="after"/> (all, when
    /// null) and were created at or after <paramref name="since"/> (any time, when null).
    /// </summary>
    [Alias("Read")] Task<IReadOnlyList<CatalogEntry>> ReadAsync(CatalogEntry? after, DateTimeOffset? since, int max);

    [Alias("Summary")] Task<CatalogSegment> GetSummaryAsync();
}
