using Microsoft.Extensions.Logging;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

namespace OrderFlow.Grains.Ledgers;

/// <summary>
/// The storage engine of one ledger activation: a head row (<typeparamref name="THead"/>, the grain's
/// <c>[PersistentState]</c>) and one record per entry (processed key or reservation) in the same storage provider, with
/// group commit. Callers queue operations (<see cref="RunAsync{T}"/>); each batch of up to <see cref="MaxBatch"/>
/// operations loads the entries it names (in parallel, cached afterwards), runs the operations one after another
/// against the head and the entries — each sees the ones before it — and commits once: the head with the batch's
/// entries in its journal (the commit point, <see cref="LedgerHead"/>), then each entry to its own record. Every
/// operation of the batch is answered only after that commit, so nothing is ever answered from a write that did not
/// land; if it fails, the head is re-read (<see cref="GuardedState{T}"/>) and every operation of the batch fails.
/// <para>
/// Cost: a head write per batch, and the batch's entries written and its unseen keys read through the profile's
/// <see cref="ILedgerEntryStore"/> (embedded: a request per entry; Azure: one transaction per batch, a point read per
/// unseen key) — O(1) in time and bytes whatever the number of keys the ledger has recorded. One instance per activation;
/// the grain must be reentrant so that calls queue here while a commit is in flight.
/// </para>
/// </summary>
public sealed partial class LedgerBook<THead>(
    IGrainBase owner,
    IPersistentState<THead> head,
    ILedgerEntryStore entryStore,
    LedgerEntries entries,
    ILogger logger) where THead : LedgerHead, new()
{
    /// <summary>Most operations (and so entries) one commit takes: the journal's bound.</summary>
    public const int MaxBatch = 64;

    /// <summary>Entries kept in memory after a commit or a read; past this the cache starts over.</summary>
    public const int MaxCached = 20_000;

    private readonly GuardedState<THead> _head = new(head);
    private readonly Queue<Operation> _queue = new();
    private readonly Dictionary<string, GrainState<LedgerEntry>> _records = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LedgerEntry> _staged = new(StringComparer.Ordinal);
    private bool _dirty;
    private bool _pumping;
    private bool _journalWritten;

    /// <summary>False once a failed write left the head unknown (<see cref="GuardedState{T}"/>): <see cref="Head"/> then throws.</summary>
    public bool IsTrusted => _head.IsTrusted;

    /// <summary>The head as this activation holds it (committed, plus the current batch's changes inside an operation).</summary>
    public THead Head => _head.State;

    /// <summary>Commits made by this activation (for tests and logs).</summary>
    public long Commits { get; private set; }

    /// <summary>
    /// Queues <paramref name="decide"/> for the next batch, with the entries <paramref name="keys"/> loaded. It runs alone
    /// (no other operation interleaves), may read <see cref="Head"/> and <see cref="Find"/>, change the head
    /// (<see cref="Touch"/>) and stage entries (<see cref="Put"/>). Completes once the batch is committed.
    /// </summary>
    public Task<T> RunAsync<T>(IReadOnlyCollection<string> keys, Func<T> decide)
    {
        var operation = new Operation<T>(keys, decide);
        _queue.Enqueue(operation);
        RestartPump();
        return operation.Task;
    }

    /// <summary>The entry under <paramref name="key"/> (this batch's version if it staged one), or null; the key must be loaded.</summary>
    public LedgerEntry? Find(string key) =>
        _staged.TryGetValue(key, out var staged) ? staged
        : _records.TryGetValue(key, out var record) ? (record.RecordExists ? record.State : null)
        : throw new InvalidOperationException($"ledger {entries.LedgerKey}: entry {key} was not loaded for this operation");

    /// <summary>Stages <paramref name="entry"/> for this batch's commit (new or changed).</summary>
    public void Put(LedgerEntry entry)
    {
        if (!_staged.ContainsKey(entry.Key) && Find(entry.Key) is null)
        {
            Head.Entries++;
        }

        _staged[entry.Key] = entry;
        _dirty = true;
    }

    /// <summary>Marks the head changed, so this batch commits even without an entry.</summary>
    public void Touch() => _dirty = true;

    private async Task PumpAsync()
    {
        try
        {
            while (true)
            {
                if (_queue.Count == 0)
                {
                    if (_journalWritten)
                    {
                        return;
                    }

                    // The last commit's entries go to their records once its callers are answered (the head is the commit
                    // point), and always before the next batch reads any (at the top of each batch, below).
                    try
                    {
                        await WriteJournalAsync();
                    }
                    catch (Exception ex)
                    {
                        LogJournalPending(ex, entries.LedgerKey, _head.IsTrusted ? Head.Journal.Count : 0);
                        if (_queue.Count == 0)
                        {
                            return;
                        }
                    }

                    continue;
                }

                var batch = new List<Operation>(Math.Min(_queue.Count, MaxBatch));
                while (batch.Count < MaxBatch && _queue.TryDequeue(out var next))
                {
                    batch.Add(next);
                }

                try
                {
                    await WriteJournalAsync();
                    await LoadAsync(batch.SelectMany(operation => operation.Keys).Distinct(StringComparer.Ordinal).ToArray());
                }
                catch (Exception ex)
                {
                    batch.ForEach(operation => operation.Fail(ex));
                    continue;
                }

                foreach (var operation in batch)
                {
                    operation.Run();
                }

                if (_dirty)
                {
                    try
                    {
                        await CommitAsync();
                    }
                    catch (Exception ex)
                    {
                        batch.ForEach(operation => operation.Fail(ex));
                        continue;
                    }
                }

                batch.ForEach(operation => operation.Complete());
            }
        }
        finally
        {
            _pumping = false;
        }
    }

    private void RestartPump()
    {
        if (!_pumping)
        {
            _pumping = true;
            _ = PumpAsync();
        }
    }

    private async Task CommitAsync()
    {
        var entries = _staged.Values.ToList();
        _staged.Clear();
        _dirty = false;
        Head.Version++;
        foreach (var entry in entries)
        {
            entry.Version = Head.Version;
        }

        Head.Journal = entries;
        try
        {
            await _head.WriteOrReloadAsync(owner);
        }
        catch
        {
            // The head was re-read (or the activation is going away): whatever journal storage holds is written again
            // before the next batch, which is harmless if its entries are already in their records.
            _journalWritten = false;
            throw;
        }

        Commits++;
        // Committed: the entries are in the head's journal. They are written to their records after the callers are
        // answered, and always before the next batch reads any (or by the next activation).
        _journalWritten = false;
    }

    /// <summary>Writes the head's journal entries to their records, once per commit (and once per activation).</summary>
    private async Task WriteJournalAsync()
    {
        if (_journalWritten)
        {
            return;
        }

        var journal = Head.Journal;
        if (journal.Count > 0)
        {
            await WriteEntriesAsync(journal);
        }

        _journalWritten = true;
    }

    /// <summary>
    /// Writes <paramref name="journal"/> to the entries' records in one call to the store; if a record changed behind
    /// this activation's back (a previous activation's flush of the same journal, still finishing), entry by entry.
    /// </summary>
    private async Task WriteEntriesAsync(IReadOnlyList<LedgerEntry> journal)
    {
        await LoadAsync(journal.Select(entry => entry.Key).ToArray());
        var writes = new List<(GrainState<LedgerEntry> Record, LedgerEntry Entry)>(journal.Count);
        foreach (var entry in journal)
        {
            var record = _records[entry.Key];
            if (!IsWritten(record, entry))
            {
                writes.Add((record, entry));
            }
        }

        if (writes.Count == 0)
        {
            return;
        }

        var previous = writes.Select(write => write.Record.State).ToArray();
        writes.ForEach(write => write.Record.State = write.Entry);
        try
        {
            await entryStore.WriteAsync(entries, writes.Select(write => write.Record).ToArray());
        }
        catch (Exception ex)
        {
            // Which records landed is unknown: they are read again when next needed.
            for (var i = 0; i < writes.Count; i++)
            {
                writes[i].Record.State = previous[i];
                _records.Remove(writes[i].Entry.Key);
            }

            if (!IsEtagConflict(ex))
            {
                throw;
            }

            await Task.WhenAll(writes.Select(write => WriteEntryAsync(write.Entry)));
        }
    }

    /// <summary>One entry to its record, re-reading it after a conflicting write (at most three attempts).</summary>
    private async Task WriteEntryAsync(LedgerEntry entry)
    {
        var record = _records.TryGetValue(entry.Key, out var known) ? known : await ReadEntryAsync(entry.Key);
        for (var attempt = 0; ; attempt++)
        {
            if (IsWritten(record, entry))
            {
                return;
            }

            var previous = record.State;
            record.State = entry;
            try
            {
                await entryStore.WriteAsync(entries, [record]);
                return;
            }
            catch (Exception ex) when (attempt < 2 && IsEtagConflict(ex))
            {
                record.State = previous;
                record = await ReadEntryAsync(entry.Key);
            }
        }
    }

    /// <summary>Storage already has this commit's entry (or a later one), written by an earlier flush.</summary>
    private static bool IsWritten(GrainState<LedgerEntry> record, LedgerEntry entry) =>
        record.RecordExists && record.State!.Version >= entry.Version && !ReferenceEquals(record.State, entry);

    private async Task LoadAsync(IReadOnlyCollection<string> keys)
    {
        if (_records.Count + keys.Count > MaxCached)
        {
            // Before choosing what to read: every key of this batch must be loaded after the cache starts over.
            _records.Clear();
        }

        var missing = keys.Where(key => !_records.ContainsKey(key)).Distinct(StringComparer.Ordinal).ToArray();
        if (missing.Length > 0)
        {
            var records = await entryStore.ReadAsync(entries, missing);
            for (var i = 0; i < missing.Length; i++)
            {
                _records[missing[i]] = records[i];
            }
        }
    }

    private async Task<GrainState<LedgerEntry>> ReadEntryAsync(string key)
    {
        var record = (await entryStore.ReadAsync(entries, [key]))[0];
        _records[key] = record;
        return record;
    }

    private static bool IsEtagConflict(Exception ex) =>
        ex is InconsistentStateException || ex.InnerException is InconsistentStateException;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ledger {LedgerKey} committed {Count} entries but could not write them to their records yet; they stay in its journal and are written before its next batch")]
    private partial void LogJournalPending(Exception exception, string ledgerKey, int count);

    private abstract class Operation(IReadOnlyCollection<string> keys)
    {
        public IReadOnlyCollection<string> Keys { get; } = keys;

        public abstract void Run();

        public abstract void Fail(Exception error);

        public abstract void Complete();
    }

    private sealed class Operation<T>(IReadOnlyCollection<string> keys, Func<T> decide) : Operation(keys)
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _done.Task;

        public override void Run()
        {
            try
            {
                _result = decide();
            }
            catch (Exception ex)
            {
                _error = ex;
            }
        }

        public override void Fail(Exception error) => _done.TrySetException(error);

        public override void Complete()
        {
            if (_error is not null)
            {
                _done.TrySetException(_error);
            }
            else
            {
                _done.TrySetResult(_result!);
            }
        }
    }
}
