using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

namespace OrderFlow.Grains.Ledgers;

/// <summary>Where one ledger's entries live: the entries' state name and record type, and the ledger's key.</summary>
public sealed record LedgerEntries(string StateName, GrainType EntryType, string LedgerKey)
{
    /// <summary>The record of one entry as a grain-storage id: type <c>{ledger type}.entry</c>, key <c>{ledger key}~{entry key}</c>.</summary>
    public GrainId IdOf(string entryKey) => GrainId.Create(EntryType, $"{LedgerKey}~{entryKey}");
}

/// <summary>
/// The records of ledger entries (processed keys, reservations), read and written many at a time: a ledger's batch
/// (<see cref="LedgerBook{THead}"/>) reads the keys it has not seen and writes the entries of its last commit in as few
/// requests as the profile's storage allows. Records carry their ETag: a write over a record changed since it was read
/// fails with <see cref="InconsistentStateException"/>.
/// </summary>
public interface ILedgerEntryStore
{
    /// <summary>One record per key, in the order of <paramref name="keys"/>: <c>RecordExists</c> false (and an empty entry) when absent.</summary>
    Task<IReadOnlyList<GrainState<LedgerEntry>>> ReadAsync(LedgerEntries ledger, IReadOnlyList<string> keys);

    /// <summary>
    /// Writes each record's <c>State</c> (distinct keys), guarded by its ETag (none: the record must not exist), and
    /// updates the ETags. Throws <see cref="InconsistentStateException"/> when a record changed behind the caller's back;
    /// after a failure, which records landed is unknown: read them again.
    /// </summary>
    Task WriteAsync(LedgerEntries ledger, IReadOnlyList<GrainState<LedgerEntry>> records);
}

/// <summary>
/// The embedded profile's entry store: each entry a record of its own in the ledgers' grain storage (resolved when first
/// used, so a storage wrapped for fault injection is the one used), read and written in parallel.
/// </summary>
public sealed class GrainStorageLedgerEntryStore(IServiceProvider services) : ILedgerEntryStore
{
    private IGrainStorage? _storage;

    private IGrainStorage Storage => _storage ??= services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Ledgers);

    public async Task<IReadOnlyList<GrainState<LedgerEntry>>> ReadAsync(LedgerEntries ledger, IReadOnlyList<string> keys) =>
        await Task.WhenAll(keys.Select(async key =>
        {
            var record = new GrainState<LedgerEntry>(new LedgerEntry { Key = key });
            await Storage.ReadStateAsync(ledger.StateName, ledger.IdOf(key), record);
            record.State ??= new LedgerEntry { Key = key };
            return record;
        }));

    public Task WriteAsync(LedgerEntries ledger, IReadOnlyList<GrainState<LedgerEntry>> records) =>
        Task.WhenAll(records.Select(async record =>
        {
            await Storage.WriteStateAsync(ledger.StateName, ledger.IdOf(record.State!.Key), record);
            record.RecordExists = true;
        }));
}
