using System.Globalization;
using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>The open record of a shard whose entries are stored in pages (<see cref="ShardPages{TState, TEntry}"/>).</summary>
public interface IPagedShardState<TEntry>
{
    /// <summary>Entries written since the last page was sealed (in a record written before pages: all of them).</summary>
    Dictionary<string, TEntry> Open { get; }

    /// <summary>The sealed pages the shard stores, each a record of its own (<see cref="ShardPage{TEntry}"/>).</summary>
    List<long> Pages { get; }

    /// <summary>The number the next sealed page gets.</summary>
    long NextPage { get; set; }

    /// <summary>Empties the open record (its entries went into a page).</summary>
    void ClearOpen();
}

/// <summary>A sealed page of a shard: entries by key, shrinking as they are removed; deleted once empty.</summary>
[GenerateSerializer, Alias("hosting.ShardPage`1")]
public sealed class ShardPage<TEntry>
{
    [Id(0)] public Dictionary<string, TEntry> Entries { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// A shard's entries stored so that no write grows with how many it holds (the payment deadline shards, the relay's
/// shards). Entries are added to the shard's open record, one grain state written by every change that must be durable;
/// once it holds <c>pageSize</c> entries they are sealed into a page record of their own (state name
/// <c>{stateName}.{n}</c>, same storage): the page is written first, then the open record, emptied and listing it. A crash
/// between the two leaves the entries in both (the page unlisted, overwritten by the next seal under the same number).
/// An entry of a page that changes moves to the open record (written there first; the page forgets it lazily), and
/// removals from a page are written lazily: with the page's next write, or not at all when the page empties, because an
/// emptied page is deleted. So after a crash a removed entry can come back, and an entry can be found in an earlier page
/// and a later record at once: the later one counts (the open record over every page, a later page over an earlier one).
/// A page left with at most a quarter of a page is folded into the open record and deleted, so pages do not pile up
/// behind a few long-held entries. A shard keeps all its entries in memory: its bound is a memory bound, the caller's.
/// </summary>
internal sealed partial class ShardPages<TState, TEntry>(Grain grain, GuardedState<TState> open, string stateName,
    IGrainStorage storage, int pageSize, ILogger logger)
    where TState : IPagedShardState<TEntry>
{
    private readonly SortedDictionary<long, Page> _pages = [];

    /// <summary>The open record's entries.</summary>
    public Dictionary<string, TEntry> Open => open.State.Open;

    /// <summary>The sealed pages, oldest first.</summary>
    public IEnumerable<Page> Sealed => _pages.Values;

    /// <summary>Entries held, in the open record and every page.</summary>
    public int Count => Open.Count + _pages.Values.Sum(page => page.Entries.Count);

    /// <summary>Every entry held, oldest page first, the open record last.</summary>
    public IEnumerable<KeyValuePair<string, TEntry>> All => _pages.Values.SelectMany(page => page.Entries).Concat(Open);

    /// <summary>The open record changed in memory only (a removal): written with its next write.</summary>
    public bool OpenDirty { get; set; }

    private long Shard => grain.GetPrimaryKeyLong();

    /// <summary>Reads every page the open record lists (at activation), and drops what later records supersede.</summary>
    public async Task LoadAsync()
    {
        await Task.WhenAll(open.State.Pages.Where(number => !_pages.ContainsKey(number)).Select(LoadPageAsync));
        var later = new HashSet<string>(Open.Keys, StringComparer.Ordinal);
        foreach (var page in _pages.Values.Reverse())
        {
            foreach (var key in page.Entries.Keys.Where(later.Contains).ToList())
            {
                page.Entries.Remove(key);
                page.Dirty = true;
            }

            later.UnionWith(page.Entries.Keys);
        }
    }

    /// <summary>
    /// Where an entry is held: the open record's entries, or the newest page's that holds it (the later record counts, as
    /// at load), with that page; null if nowhere.
    /// </summary>
    public (Dictionary<string, TEntry> Entries, Page? Page)? Locate(string key) =>
        Open.ContainsKey(key) ? (Open, null) : PageOf(key) is { } page ? (page.Entries, page) : null;

    /// <summary>The entries that hold the key (<see cref="Locate"/>), or null.</summary>
    public Dictionary<string, TEntry>? HolderOf(string key) => Locate(key)?.Entries;

    /// <summary>The newest sealed page that holds the entry, or null (in the open record only, or nowhere).</summary>
    public Page? PageOf(string key)
    {
        foreach (var page in _pages.Values.Reverse())
        {
            if (page.Entries.ContainsKey(key))
            {
                return page;
            }
        }

        return null;
    }

    /// <summary>
    /// Stores an entry, new or changed, in the open record (one write; it counts over a page that holds the key), then
    /// lets that page forget its older copy — after the write, so that a failed write leaves the stored entry where it
    /// was — and seals the open record if it is full. The write's failure is thrown (the open record is read back).
    /// </summary>
    public Task PutAsync(string key, TEntry entry) => PutManyAsync(new Dictionary<string, TEntry>(1, StringComparer.Ordinal) { [key] = entry });

    /// <summary>
    /// <see cref="PutAsync"/> for many entries with one write of the open record (group commit). The open record may then
    /// hold up to <c>pageSize</c> − 1 + <paramref name="entries"/>' count before it is sealed.
    /// </summary>
    public async Task PutManyAsync(IReadOnlyDictionary<string, TEntry> entries)
    {
        var superseded = new List<(string Key, Page Page)>();
        foreach (var (key, entry) in entries)
        {
            if (!Open.ContainsKey(key) && PageOf(key) is { } page)
            {
                superseded.Add((key, page));
            }

            Open[key] = entry;
        }

        await WriteOpenAsync();
        foreach (var (key, page) in superseded)
        {
            if (page.Entries.Remove(key))
            {
                page.Dirty = true;
            }
        }

        await SealIfFullAsync();
    }

    /// <summary>Removes an entry from memory wherever it is held; stored lazily. False if it was not held.</summary>
    public bool Remove(string key)
    {
        if (Open.Remove(key))
        {
            OpenDirty = true;
            return true;
        }

        if (PageOf(key) is { } page && page.Entries.Remove(key))
        {
            page.Dirty = true;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Writes the open record. If the write fails it is read back (<see cref="GuardedState{T}"/>), and the pages in
    /// memory are made the ones it lists: a page it lists and memory lacks is read (a seal whose write landed though it
    /// answered with a failure), one memory holds and it does not list is let go (its entries are open again). If that
    /// read fails too, the activation goes, and the next one reads everything. Rethrows the write's failure.
    /// </summary>
    public async Task WriteOpenAsync()
    {
        try
        {
            await open.WriteOrReloadAsync(grain);
            OpenDirty = false;
        }
        catch when (open.IsTrusted)
        {
            OpenDirty = false; // memory is what storage holds
            foreach (var number in _pages.Keys.Where(n => !open.State.Pages.Contains(n)).ToList())
            {
                _pages.Remove(number);
            }

            try
            {
                await LoadAsync();
            }
            catch (Exception readFailure)
            {
                LogPageFailed(readFailure, Shard, -1);
                grain.DeactivateOnIdle();
            }

            throw;
        }
    }

    /// <summary>
    /// Writes a page whose entries must be stored now (a change that has to be durable). A write that fails may have
    /// landed: the page learns the stored ETag and writes once more, its entries in memory being what it means to store
    /// (storage's, less removals that are always safe to store). If that fails too, the failure is thrown.
    /// </summary>
    public async Task WritePageAsync(Page page)
    {
        try
        {
            await page.Record.WriteStateAsync();
        }
        catch (Exception ex)
        {
            LogPageFailed(ex, Shard, page.Number);
            await page.Record.RefreshETagAsync();
            await page.Record.WriteStateAsync();
        }

        page.Dirty = false;
    }

    /// <summary>
    /// Seals the open record's entries into a page if it holds <c>pageSize</c> of them (after a write that added one).
    /// If the page cannot be written they stay open and the next call tries again; if the open record cannot, it is read
    /// back (<see cref="WriteOpenAsync"/>). Failures are logged, not thrown: the entries are stored either way.
    /// </summary>
    public async Task SealIfFullAsync()
    {
        if (Open.Count < pageSize)
        {
            return;
        }

        var number = open.State.NextPage;
        var record = PageRecord(number);
        try
        {
            record.AssumeNew();
            record.State.Entries = new(Open, StringComparer.Ordinal);
            try
            {
                await record.WriteStateAsync();
            }
            catch (InconsistentStateException)
            {
                // Left by a seal whose open record's write failed: its entries are still open, so overwrite it.
                await record.ReadStateAsync();
                record.State.Entries = new(Open, StringComparer.Ordinal);
                await record.WriteStateAsync();
            }
        }
        catch (Exception ex)
        {
            LogPageFailed(ex, Shard, number);
            return;
        }

        open.State.Pages.Add(number);
        open.State.NextPage = number + 1;
        open.State.ClearOpen();
        _pages[number] = new Page(number, record);
        try
        {
            await WriteOpenAsync();
        }
        catch (Exception ex)
        {
            // Read back: either the write did not land (the entries are open again and the page record is unlisted) or
            // it did (the page is listed and the open record empty).
            LogOpenFailed(ex, Shard);
        }
    }

    /// <summary>
    /// Stores what changed lazily: deletes the pages that emptied and, with <paramref name="writeChanged"/>, writes the
    /// pages that changed; then the open record if it no longer lists a page (or, with <paramref name="writeChanged"/>,
    /// changed). Without it, removals from a page still holding entries are stored only with the page's next write or as
    /// the shard deactivates. Failures are logged and tried again at the next call; a page write that failed learns the
    /// stored ETag for that try.
    /// </summary>
    public async Task FlushAsync(bool writeChanged)
    {
        await CompactAsync();
        var dropped = false;
        foreach (var page in _pages.Values.ToList())
        {
            if (page.Entries.Count == 0)
            {
                if (await TryDeleteAsync(page))
                {
                    _pages.Remove(page.Number);
                    open.State.Pages.Remove(page.Number);
                    dropped = true;
                }
            }
            else if (page.Dirty && writeChanged)
            {
                try
                {
                    await WritePageAsync(page);
                }
                catch (Exception ex)
                {
                    LogPageFailed(ex, Shard, page.Number); // its removals are tried again; lost, they only come back
                }
            }
        }

        if (dropped || (OpenDirty && writeChanged))
        {
            try
            {
                // A page deleted but still listed (this write failed) reads as empty, and goes again, when next seen.
                await WriteOpenAsync();
            }
            catch (Exception ex)
            {
                LogOpenFailed(ex, Shard);
            }
        }
    }

    /// <summary>
    /// Moves the entries of one page left holding at most a quarter of a page (the rest of its entries removed, a few
    /// held long) into the open record, if they fit there: the open record is written first (it counts over the page),
    /// and the emptied page is deleted by the caller. So pages do not pile up behind a few long-held entries: an activation
    /// reads at most about four pages per page of entries held. If the write fails the entries stay in the page.
    /// </summary>
    private async Task CompactAsync()
    {
        var sparse = _pages.Values.FirstOrDefault(page => page.Entries.Count > 0 && page.Entries.Count <= Math.Max(1, pageSize / 4)
            && Open.Count + page.Entries.Count < pageSize);
        if (sparse is null)
        {
            return;
        }

        foreach (var (key, entry) in sparse.Entries)
        {
            Open[key] = entry;
        }

        try
        {
            await WriteOpenAsync();
        }
        catch (Exception ex)
        {
            LogOpenFailed(ex, Shard); // read back: the open record is what storage holds, the page unchanged
            return;
        }

        sparse.Entries.Clear();
    }

    /// <summary>As the shard deactivates: writes the pages and the open record that changed lazily, failures only logged.</summary>
    public async Task FlushOnDeactivateAsync(CancellationToken cancellationToken)
    {
        foreach (var page in _pages.Values.Where(page => page.Dirty && page.Entries.Count > 0))
        {
            try
            {
                await page.Record.WriteStateAsync(cancellationToken);
            }
            catch (Exception ex)
            {
                LogPageFailed(ex, Shard, page.Number);
            }
        }

        if (OpenDirty)
        {
            try
            {
                await open.WriteStateAsync(cancellationToken);
            }
            catch (Exception ex)
            {
                LogOpenFailed(ex, Shard);
            }
        }
    }

    /// <summary>
    /// Deletes an emptied page's record. A delete that fails may have landed (its answer lost): the record is read back
    /// and counts as deleted if it is gone; otherwise it keeps the fresh ETag, and none of what it holds (entries removed
    /// in memory, not yet in storage), for the next try.
    /// </summary>
    private async Task<bool> TryDeleteAsync(Page page)
    {
        try
        {
            await page.Record.ClearStateAsync();
            return true;
        }
        catch (Exception ex)
        {
            LogPageFailed(ex, Shard, page.Number);
        }

        try
        {
            await page.Record.ReadStateAsync();
            page.Entries.Clear();
            return !page.Record.RecordExists;
        }
        catch (Exception ex)
        {
            LogPageFailed(ex, Shard, page.Number);
            return false;
        }
    }

    private async Task LoadPageAsync(long number)
    {
        var record = PageRecord(number);
        await record.ReadStateAsync();
        _pages[number] = new Page(number, record);
    }

    private DeferredState<ShardPage<TEntry>> PageRecord(long number) =>
        new($"{stateName}.{number.ToString(CultureInfo.InvariantCulture)}", grain.GetGrainId(), storage);

    /// <summary>One sealed page in memory: its record, and whether removals changed it since its last write.</summary>
    public sealed class Page(long number, DeferredState<ShardPage<TEntry>> record)
    {
        public long Number { get; } = number;

        public DeferredState<ShardPage<TEntry>> Record { get; } = record;

        public Dictionary<string, TEntry> Entries => Record.State.Entries;

        public bool Dirty { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shard {Shard} could not write, read or delete its page {Page} (-1: a page its open record lists); it tries again")]
    private partial void LogPageFailed(Exception exception, long shard, long page);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shard {Shard} could not write its open record; it was read back")]
    private partial void LogOpenFailed(Exception exception, long shard);
}
