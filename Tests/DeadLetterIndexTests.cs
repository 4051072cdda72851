using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>The sharded dead-letter index and the operators' bulk retry, on the pipeline silo (points always fails OrderPaid for poison- orders).</summary>
[Collection(PipelineCollection.Name)]
public sealed class DeadLetterIndexTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    private IDeadLetterIndexGrain Index(string key) => fixture.Grains.GetGrain<IDeadLetterIndexGrain>(key);

    [Fact]
    public async Task A_parked_order_is_listed_from_its_shard_and_an_entry_left_in_the_pre_shard_row_moves_there_when_listed()
    {
        var id = await ParkAtPointsAsync("poison-shard-");
        var shard = Index(DeadLetterShards.KeyFor("points", id));
        var legacy = Index("points");
        var letter = Assert.Single(await shard.ListAsync(), l => l.OrderId == id);
        Assert.DoesNotContain(await legacy.ListAsync(), l => l.OrderId == id);

        // As before the index was sharded: the entry sits in the subscriber's one row.
        await shard.ResolveAsync(id);
        await legacy.ParkAsync(letter);
        var countBefore = (await _orders.Operations.CountDeadLettersAsync())["points"];

        var listed = await _orders.Operations.ListDeadLettersAsync("points");

        Assert.Contains(letter, listed);
        // Names match in any case, as everywhere else (red-team finding: "POINTS" listed nothing).
        Assert.Contains(letter, await _orders.Operations.ListDeadLettersAsync("POINTS"));
        Assert.Contains(letter, await shard.ListAsync());
        Assert.DoesNotContain(await legacy.ListAsync(), l => l.OrderId == id);
        Assert.Equal(countBefore, (await _orders.Operations.CountDeadLettersAsync())["points"]);
    }

    [Fact]
    public async Task A_full_shard_refuses_new_entries_but_still_updates_the_ones_it_lists()
    {
        var shard = Index($"cap-{Guid.NewGuid():N}.0");
        var at = DateTimeOffset.UtcNow;
        DeadLetter Letter(int i) => new("points", $"cap-order-{i}", 2, "OrderPaid", "full", 3, at, at);
        foreach (var batch in Enumerable.Range(0, DeadLetterShards.MaxEntriesPerShard).Chunk(100))
        {
            await Task.WhenAll(batch.Select(i => shard.ParkAsync(Letter(i))));
        }

        await shard.ParkAsync(Letter(DeadLetterShards.MaxEntriesPerShard));
        var updated = Letter(0) with { Attempts = 4, Error = new string('e', 2000) };
        await shard.ParkAsync(updated);

        var letters = await shard.ListAsync();
        Assert.Equal(DeadLetterShards.MaxEntriesPerShard, await shard.CountAsync());
        Assert.DoesNotContain(letters, l => l.OrderId == $"cap-order-{DeadLetterShards.MaxEntriesPerShard}");
        var stored = Assert.Single(letters, l => l.OrderId == "cap-order-0");
        Assert.Equal((4, FailureClassifier.MaxErrorLength), (stored.Attempts, stored.Error.Length));
    }

    [Fact]
    public async Task Retry_all_resumes_every_parked_order_of_a_subscriber_or_only_those_parked_since_a_time()
    {
        var early = await ParkAtPointsAsync("poison-bulk-early-");
        var since = DateTimeOffset.UtcNow;
        var late = new[] { await ParkAtPointsAsync("poison-bulk-late-"), await ParkAtPointsAsync("poison-bulk-late-") };

        await Assert.ThrowsAsync<ArgumentException>(() => _orders.Operations.RetryAllAsync("no-such", null));
        fixture.Drills.Clear("points");
        try
        {
            // The name in another case than the subscriber's own (red-team finding: it resumed 0 and said so with success).
            var recent = await _orders.Operations.RetryAllAsync("Points", since);

            Assert.Equal((2, 0, 0), (recent.Resumed, recent.Failed, recent.NotParked));
            foreach (var id in late)
            {
                Assert.All((await _orders.WaitCaughtUpAsync(id)).Subscribers, s => Assert.False(s.Parked));
            }

            Assert.True((await _orders.Operations.InspectAsync(early)).Subscribers.Single(s => s.Subscriber == "points").Parked);

            var all = await _orders.Operations.RetryAllAsync("points", null);
            Assert.True(all.Resumed >= 1 && all.Failed == 0, all.ToString());
            await _orders.WaitCaughtUpAsync(early);
            Assert.DoesNotContain(await _orders.Operations.ListDeadLettersAsync("points"), l => l.OrderId == early || late.Contains(l.OrderId));
            foreach (var id in late.Append(early))
            {
                Assert.Equal(decimal.Floor(9.5m), (await fixture.Grains.GetGrain<IPointsAccountGrain>($"user-{id}").GetAsync()).Balance);
            }
        }
        finally
        {
            fixture.Drills.Set("points", new SubscriberDrill { FailEventKind = "OrderPaid", OrderIdPrefix = "poison-" });
        }
    }

    /// <summary>Places and pays a poison order (points fails OrderPaid) and waits until the operators' list shows it parked.</summary>
    private async Task<string> ParkAtPointsAsync(string prefix)
    {
        var id = OrderDriver.NewId(prefix);
        var total = await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 9.5m)));
        await _orders.PayAsync(id, total);
        await Eventually.Until(() => _orders.Operations.ListDeadLettersAsync("points"), letters => letters.Any(l => l.OrderId == id),
            OrderDriver.CatchUpTimeout, letters => $"{letters.Count} letters at points, none for {id}");
        return id;
    }
}
