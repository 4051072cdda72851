using Azure.Core;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Ledgers;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// The durable profile's ledger entry store against Azurite: a batch of entries is one request (an entity-group
/// transaction, all or nothing), unseen keys are point reads (never a query, which scans the partition), a stale write
/// is refused, and hostile keys keep apart. Request counts come from the same counting policy the silo uses.
/// </summary>
[Collection(DurableCollection.Name)]
public sealed class AzureLedgerEntryStoreTests(DurableClusterFixture fixture)
{
    private readonly StorageOperationCounter _counter = new();

    private AzureTableLedgerEntryStore NewStore()
    {
        var options = new TableClientOptions();
        options.AddPolicy(_counter.PolicyFor("table"), HttpPipelinePosition.PerRetry);
        var serializer = ((InProcessSiloHandle)fixture.Cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredService<Serializer>();
        return new AzureTableLedgerEntryStore(new TableServiceClient(Azurite.ConnectionString, options), "entry-tests", serializer);
    }

    private static LedgerEntries NewLedger() =>
        BalanceLedgerGrain.EntriesOf(GrainId.Create("ledger-gmv", $"hot-{Guid.NewGuid():N}"), LedgerStateNames.Gmv);

    private long AllRequests() => _counter.Snapshot().Sum(c => c.Requests);

    private long PointReads() =>
        _counter.Snapshot().Where(c => c.Resource == AzureTableLedgerEntryStore.TableName && c.Operation == "read row").Sum(c => c.Requests);

    [Fact]
    public async Task A_batch_of_64_entries_is_written_in_one_request_and_read_back_by_point_reads()
    {
        var store = NewStore();
        var ledger = NewLedger();
        await store.ReadAsync(ledger, ["warm-up"]); // creates the table once
        var keys = Enumerable.Range(0, LedgerBook<BalanceHead>.MaxBatch).Select(i => $"order-{i}:3").ToArray();

        var (before, pointReadsBefore) = (AllRequests(), PointReads());
        var absent = await store.ReadAsync(ledger, keys);
        Assert.All(absent, record => Assert.False(record.RecordExists));
        Assert.Equal(keys.Length, PointReads() - pointReadsBefore);
        Assert.Equal(keys.Length, AllRequests() - before);

        before = AllRequests();
        var records = keys.Select((key, i) => new GrainState<LedgerEntry>(new LedgerEntry { Key = key, Amount = i, Version = 7 })).ToArray();
        await store.WriteAsync(ledger, records);
        Assert.Equal(1, AllRequests() - before);
        Assert.All(records, record => Assert.True(record.RecordExists && record.ETag is { Length: > 0 }));

        (before, pointReadsBefore) = (AllRequests(), PointReads());
        var read = await store.ReadAsync(ledger, keys);
        Assert.Equal(keys.Length, PointReads() - pointReadsBefore);
        Assert.Equal(keys.Length, AllRequests() - before);
        Assert.Equal(keys, read.Select(record => record.State!.Key));
        Assert.Equal(Enumerable.Range(0, keys.Length).Select(i => (decimal)i), read.Select(record => record.State!.Amount));
        Assert.All(read, record => Assert.Equal(7, record.State!.Version));
        Assert.Equal(records.Select(r => r.ETag), read.Select(r => r.ETag));
    }

    [Fact]
    public async Task A_stale_write_is_refused_and_nothing_of_its_transaction_lands()
    {
        var store = NewStore();
        var ledger = NewLedger();
        var first = new GrainState<LedgerEntry>(new LedgerEntry { Key = "a", Amount = 1, Version = 1 });
        await store.WriteAsync(ledger, [first]);

        // Another writer changes "a"; this one still holds the old ETag, and writes "a" with a new entry "b".
        var other = (await store.ReadAsync(ledger, ["a"]))[0];
        other.State!.Amount = 100;
        other.State.Version = 2;
        await store.WriteAsync(ledger, [other]);
        first.State = new LedgerEntry { Key = "a", Amount = 2, Version = 2 };
        var fresh = new GrainState<LedgerEntry>(new LedgerEntry { Key = "b", Amount = 5, Version = 2 });
        await Assert.ThrowsAnyAsync<InconsistentStateException>(() => store.WriteAsync(ledger, [fresh, first]));

        var stored = await store.ReadAsync(ledger, ["a", "b"]);
        Assert.Equal((true, 100m), (stored[0].RecordExists, stored[0].State!.Amount));
        Assert.False(stored[1].RecordExists);

        // A record this writer believes absent, but which exists, is refused the same way.
        var blind = new GrainState<LedgerEntry>(new LedgerEntry { Key = "a", Amount = 3, Version = 3 });
        await Assert.ThrowsAnyAsync<InconsistentStateException>(() => store.WriteAsync(ledger, [blind]));
        Assert.Equal(100m, (await store.ReadAsync(ledger, ["a"]))[0].State!.Amount);
    }

    [Fact]
    public async Task Keys_that_the_table_provider_would_fold_stay_apart()
    {
        var store = NewStore();
        var ledger = NewLedger();
        string[] keys = ["a/b", "a_b", "a%2Fb", "a\\b", "a#b", "a?b", "a'b", "a|b", "ü", "%C3%BC"];
        var records = keys.Select((key, i) => new GrainState<LedgerEntry>(new LedgerEntry { Key = key, Amount = i, Version = 1 })).ToArray();
        await store.WriteAsync(ledger, records);

        var read = await store.ReadAsync(ledger, keys);
        Assert.Equal(keys, read.Select(record => record.State!.Key));
        Assert.Equal(Enumerable.Range(0, keys.Length).Select(i => (decimal)i), read.Select(record => record.State!.Amount));
        Assert.Equal(keys.Length, keys.Select(AzureTableLedgerEntryStore.Escape).Distinct(StringComparer.Ordinal).Count());
        Assert.True(AzureTableLedgerEntryStore.Escape(new string('/', 2 * Ids.MaxLength)).Length <= 1024);
    }
}
