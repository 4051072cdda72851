using OrderFlow.Grains.Hosting;
using Orleans.Storage;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>A paged shard's records as storage holds them (<c>ShardPages</c>), read without activating the shard.</summary>
public sealed record StoredShardPages<TEntry>(
    IReadOnlyDictionary<string, TEntry> Open,
    IReadOnlyList<(long Number, bool Exists, IReadOnlyDictionary<string, TEntry> Entries)> Pages)
{
    /// <summary>
    /// The shard's open record (state <paramref name="stateName"/>) and each page it lists (<c>{stateName}.{n}</c>), with
    /// the page record's entries (empty if the record is missing).
    /// </summary>
    public static async Task<StoredShardPages<TEntry>> ReadAsync<TState>(IGrainStorage storage, GrainId grainId, string stateName)
        where TState : class, IPagedShardState<TEntry>, new()
    {
        var open = new GrainState<TState>();
        await storage.ReadStateAsync(stateName, grainId, open);
        var pages = new List<(long, bool, IReadOnlyDictionary<string, TEntry>)>();
        foreach (var number in open.State?.Pages ?? [])
        {
            var page = new GrainState<ShardPage<TEntry>>();
            await storage.ReadStateAsync($"{stateName}.{number}", grainId, page);
            pages.Add((number, page.RecordExists, page.State?.Entries ?? []));
        }

        return new StoredShardPages<TEntry>((IReadOnlyDictionary<string, TEntry>?)open.State?.Open ?? new Dictionary<string, TEntry>(), pages);
    }

    /// <summary>Every entry as the shard reads them back: a later record counts over an earlier one (pages in order, then the open record).</summary>
    public IReadOnlyDictionary<string, TEntry> Merged()
    {
        var merged = new Dictionary<string, TEntry>(StringComparer.Ordinal);
        foreach (var (key, entry) in Pages.OrderBy(page => page.Number).SelectMany(page => page.Entries).Concat(Open))
        {
            merged[key] = entry;
        }

        return merged;
    }
}
