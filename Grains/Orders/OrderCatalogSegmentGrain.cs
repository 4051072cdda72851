using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

[GenerateSerializer, Alias("catalog.CatalogSegmentState.v1")]
public sealed class CatalogSegmentState
{
    /// <summary>Sorted by <see cref="CatalogEntry.Compare"/>; each order at most once.</summary>
    [Id(0)] public List<CatalogEntry> Entries { get; set; } = [];
}

/// <summary>
/// One segment of a catalog shard (<see cref="IOrderCatalogSegmentGrain"/>): a sorted list of entries in one row. It
/// takes whatever its head sends (the head decides when a segment is full), and never holds an order twice.
/// </summary>
[GrainType("order-catalog-segment")]
public sealed class OrderCatalogSegmentGrain(
    [PersistentState("segment", StorageNames.Orders)] IPersistentState<CatalogSegmentState> state) : Grain, IOrderCatalogSegmentGrain
{
    private static readonly Comparer<CatalogEntry> Order = Comparer<CatalogEntry>.Create(CatalogEntry.Compare);

    private readonly GuardedState<CatalogSegmentState> _state = new(state);
    private HashSet<string>? _ids;

    private List<CatalogEntry> Entries => _state.State.Entries;

    private int Number => int.Parse(this.GetPrimaryKeyString().Split('.')[1], System.Globalization.CultureInfo.InvariantCulture);

    public async Task<CatalogSegment> AddAsync(CatalogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _ids ??= Entries.Select(e => e.OrderId).ToHashSet(StringComparer.Ordinal);
        if (_ids.Contains(entry.OrderId))
        {
            // A retried placement (its first write failed): the order is already here.
            return Summary();
        }

        var at = Entries.BinarySearch(entry, Order);
        Entries.Insert(at < 0 ? ~at : at, entry);
        try
        {
            await _state.WriteOrReloadAsync(this);
        }
        catch
        {
            // Rebuilt from what storage says after the re-read: the entry may or may not be stored.
            _ids = null;
            throw;
        }

        _ids.Add(entry.OrderId);
        return Summary();
    }

    public Task<IReadOnlyList<CatalogEntry>> ReadAsync(CatalogEntry? after, DateTimeOffset? since, int max)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        var start = 0;
        if (after is not null)
        {
            var at = Entries.BinarySearch(after, Order);
            start = at < 0 ? ~at : at + 1;
        }

        if (since is { } from)
        {
            // Entries are sorted by creation time: skip those before since by binary search.
            var first = Entries.BinarySearch(new CatalogEntry("", from), Order);
            start = Math.Max(start, first < 0 ? ~first : first);
        }

        return Task.FromResult<IReadOnlyList<CatalogEntry>>(Entries.Skip(start).Take(max).ToArray());
    }

    public Task<CatalogSegment> GetSummaryAsync() => Task.FromResult(Summary());

    private CatalogSegment Summary() => new(Number, Entries.Count,
        Entries.Count == 0 ? null : Entries[0].CreatedAt, Entries.Count == 0 ? null : Entries[^1].CreatedAt, Open: true);
}
