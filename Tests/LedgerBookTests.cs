using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// The ledgers' storage (head row + a record per processed key + the journal of the last commit): a key is never
/// applied twice, also when its own record could not be written, and the checker sees what the ledger committed.
/// </summary>
[Collection(ConsistencyFixture.Name)]
public sealed class LedgerBookTests(ConsistencyFixture fixture)
{
    private IGrainFactory Grains => SiloGrains.Of(fixture.Cluster);

    [Fact]
    public async Task A_key_committed_while_its_record_cannot_be_written_is_found_in_the_journal_and_never_applied_twice()
    {
        var user = OrderDriver.NewId("journal-");
        var points = Grains.GetGrain<IPointsAccountGrain>(user);
        Assert.True((await points.ApplyAsync("o-1:award", 10m)).Applied);

        StoredEntry stored;
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Ledgers, GrainType = "ledger-points.entry", KeyPrefix = user, Operations = StorageOperations.Write }))
        {
            // The head (with the key in its journal) is the commit: the apply is answered, the key's own record is not written.
            var applied = await points.ApplyAsync("o-2:award", 5m);
            Assert.Equal((true, 15m), (applied.Applied, applied.Balance));

            // The checker reads the journal's copy; the ledger takes nothing else until the record is written.
            stored = (await Grains.GetGrain<IStoredStateGrain>(0).ReadEntriesAsync([new EntryRef(LedgerKind.Points, user, "o-2:award")]))[0];
            await Assert.ThrowsAnyAsync<Exception>(() => points.ApplyAsync("o-2:award", 5m));
            await Assert.ThrowsAnyAsync<Exception>(() => points.ApplyAsync("o-3:award", 1m));
        }

        Assert.Equal((true, 5m), (stored.Exists, stored.Amount));
        var again = await points.ApplyAsync("o-2:award", 5m);
        Assert.Equal((false, 15m), (again.Applied, again.Balance));
        Assert.Equal(15m, (await points.GetAsync()).Balance);
        Assert.Equal(2, (await points.GetAsync()).Entries);
        var ledger = (await Grains.GetGrain<IStoredStateGrain>(0).ReadLedgersAsync(LedgerKind.Points, [user]))[0];
        Assert.Equal((15m, 2L), (ledger.Balance, ledger.Entries));
    }

    [Fact]
    public async Task A_head_write_that_fails_applies_nothing_and_the_retry_applies_once()
    {
        var user = OrderDriver.NewId("head-fails-");
        var points = Grains.GetGrain<IPointsAccountGrain>(user);
        Assert.True((await points.ApplyAsync("o-1:award", 10m)).Applied);

        (string Key, decimal Amount, bool Applied)[] outcome;
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Ledgers, GrainType = "ledger-points", KeyPrefix = user, Operations = StorageOperations.Write, Times = 1 }))
        {
            // Operations queued together share a commit; its failure fails every one of them and applies none.
            outcome = await Task.WhenAll(new[] { ("o-2:award", 1m), ("o-3:award", 2m), ("o-4:award", 3m) }.Select(async k =>
            {
                try
                {
                    return (k.Item1, k.Item2, (await points.ApplyAsync(k.Item1, k.Item2)).Applied);
                }
                catch (Exception)
                {
                    return (k.Item1, k.Item2, false);
                }
            }));
        }

        Assert.Contains(outcome, o => !o.Applied);
        var after = await points.GetAsync();
        Assert.Equal((10m + outcome.Where(o => o.Applied).Sum(o => o.Amount), 1L + outcome.Count(o => o.Applied)), (after.Balance, after.Entries));
        // The callers retry everything (a ledger answers "already applied" for what the failed commit did not undo).
        foreach (var (key, amount) in new[] { ("o-2:award", 1m), ("o-3:award", 2m), ("o-4:award", 3m), ("o-2:award", 1m) })
        {
            await points.ApplyAsync(key, amount);
        }

        var snapshot = await points.GetAsync();
        Assert.Equal((16m, 4L), (snapshot.Balance, snapshot.Entries));
        Assert.Null(await points.GetEntryAsync("o-5:award"));
        Assert.Equal(3m, await points.GetEntryAsync("o-4:award"));
    }

    [Fact]
    public async Task Many_callers_on_one_key_share_commits_and_each_key_is_applied_once()
    {
        var activity = OrderDriver.NewId("group-");
        var gmv = Grains.GetGrain<IActivityGmvGrain>(activity);

        // 500 distinct keys, each sent twice, all at once.
        var calls = Enumerable.Range(0, 500).SelectMany(i => new[] { gmv.ApplyAsync($"o-{i}:paid", 2m), gmv.ApplyAsync($"o-{i}:paid", 2m) }).ToArray();
        var results = await Task.WhenAll(calls);

        Assert.Equal(500, results.Count(r => r.Applied));
        var snapshot = await gmv.GetAsync();
        Assert.Equal((1_000m, 500L), (snapshot.Balance, snapshot.Entries));
    }

    [Fact]
    public async Task A_batch_that_meets_a_full_cache_still_finds_the_keys_it_had_cached()
    {
        var activity = OrderDriver.NewId("cache-");
        var gmv = Grains.GetGrain<IActivityGmvGrain>(activity);
        var filled = OrderFlow.Grains.Ledgers.LedgerBook<OrderFlow.Grains.Ledgers.BalanceHead>.MaxCached - 10;
        foreach (var chunk in Enumerable.Range(0, filled).Chunk(1_000))
        {
            await Task.WhenAll(chunk.Select(i => gmv.ApplyAsync($"o-{i}:paid", 1m)));
        }

        // Cached keys and new ones together, past the cache's bound: the cache starts over and the batch reads them all.
        var mixed = await Task.WhenAll(Enumerable.Range(filled - 20, 60).Select(i => gmv.ApplyAsync($"o-{i}:paid", 1m)));

        Assert.Equal(40, mixed.Count(r => r.Applied));
        var snapshot = await gmv.GetAsync();
        Assert.Equal(((decimal)filled + 40, (long)filled + 40), (snapshot.Balance, snapshot.Entries));
        Assert.False((await gmv.ApplyAsync("o-0:paid", 1m)).Applied);
    }
}
