using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// The silo's relay batcher: many orders' marks to one shard in few calls, each stored before it completes; a batch is
/// stored whole or not at all; one order's refusal is its own; deliveries ride along and are never lost for good.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class RelayBatcherTests(PipelineFixture fixture)
{
    private RelayBatcher Batcher => ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<RelayBatcher>();

    private IOrderRelayGrain Shard(int shard) => fixture.Grains.GetGrain<IOrderRelayGrain>(shard);

    /// <summary>
    /// Order ids of one shard, unique to the test (marks of orders never written: the relay holds them). A shard from 16
    /// on: its key (hexadecimal) is two digits, so a storage fault's key prefix names it alone.
    /// </summary>
    private static string[] IdsOfOneShard(string prefix, int count)
    {
        var id = OrderDriver.NewId(prefix);
        var shard = 16 + IOrderRelayGrain.ShardOf(id) % (IOrderRelayGrain.Shards - 16);
        return Enumerable.Range(0, 1_000_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == shard).Take(count).ToArray();
    }

    [Fact]
    public async Task Two_hundred_marks_to_one_shard_at_once_go_in_a_few_calls_and_each_completes_only_once_stored()
    {
        var ids = IdsOfOneShard("batch-", 200);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        var before = Batcher.SentTo(shard);

        await Task.WhenAll(ids.Select(id => Batcher.MarkAsync(id, 1)));

        var after = Batcher.SentTo(shard);
        Assert.True(after.Marks - before.Marks >= ids.Length, $"{after.Marks - before.Marks} marks sent");
        // They gather while the lane's loop starts and while its call is out (at most RelayBatch.MaxItems a call).
        Assert.True(after.Calls - before.Calls is >= 1 and <= 10, $"{after.Calls - before.Calls} calls");
        // Completed means stored: read from storage, nothing activated or repaired on the way.
        var stored = (await StoredShardPages<RelayRecord>.ReadAsync<RelayShardState>(SiloStorage(), Shard(shard).GetGrainId(), "relay")).Merged();
        Assert.All(ids, id => Assert.Equal(1L, stored.TryGetValue(id, out var record) ? record.Sequence : 0));

        foreach (var id in ids)
        {
            Batcher.Delivered(id, 1);
        }

        // Deliveries alone go within DeliveredDelay, batched too.
        await Eventually.Until(async () => (await Task.WhenAll(ids.Select(id => Shard(shard).FindAsync(id)))).Count(entry => entry is not null),
            held => held == 0, OrderDriver.CatchUpTimeout, held => $"{held} orders still held");
        var delivered = Batcher.SentTo(shard);
        Assert.True(delivered.Delivered - after.Delivered >= ids.Length);
        Assert.InRange(delivered.Calls - after.Calls, 1, 10);
    }

    [Fact]
    public async Task A_batch_whose_write_fails_stores_none_of_its_marks_and_the_next_mark_goes_through()
    {
        var ids = IdsOfOneShard("batch-fail-", 4);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        var batch = new RelayBatch(ids[..3].Select(id => new RelayPosition(id, 1)).ToArray(), []);
        using (var fault = fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write, Times = 1 }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => Shard(shard).ApplyAsync(batch));
            Assert.Equal(1, fault.Hits);
        }

        // One write for the three: it failed, and none of them is held (or stored).
        Assert.All(await Task.WhenAll(ids[..3].Select(id => Shard(shard).FindAsync(id))), Assert.Null);

        // And one write when it succeeds: with the shard's second write failing, the batch still lands whole. (A write
        // after it — sealing a full open record into a page — may meet the fault; that one is logged, not thrown.)
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write, Skip = 1, Times = 1 }))
        {
            Assert.All(await Shard(shard).ApplyAsync(batch), Assert.Null);
        }

        var stored = (await StoredShardPages<RelayRecord>.ReadAsync<RelayShardState>(SiloStorage(), Shard(shard).GetGrainId(), "relay")).Merged();
        Assert.All(ids[..3], id => Assert.True(stored.ContainsKey(id), $"{id} not stored"));
        await Shard(shard).ApplyAsync(new RelayBatch([], ids[..3].Select(id => new RelayPosition(id, 1)).ToArray()));

        // Through the batcher: its call fails, the mark throws, and the lane is free for the next.
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write, Times = 1 }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => Batcher.MarkAsync(ids[3], 1));
        }

        Assert.Null(await Shard(shard).FindAsync(ids[3]));
        await Batcher.MarkAsync(ids[3], 2);
        Assert.Equal(2L, (await Shard(shard).FindAsync(ids[3]))?.Sequence);
        Batcher.Delivered(ids[3], 2);
    }

    [Fact]
    public async Task A_refused_mark_fails_its_own_order_only_and_a_delivery_does_not_undo_a_later_mark()
    {
        var ids = IdsOfOneShard("batch-refuse-", 3);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        // An id the relay refuses, of the same shard, in the same call as good ones.
        var bad = Enumerable.Range(0, 10_000).Select(i => $"bad/{i}").First(id => IOrderRelayGrain.ShardOf(id) == shard);
        var refusals = await Shard(shard).ApplyAsync(new RelayBatch([new RelayPosition(ids[0], 1), new RelayPosition(bad, 1), new RelayPosition(ids[1], 3)], []));
        Assert.Null(refusals[0]);
        Assert.Contains("order id", refusals[1]);
        Assert.Null(refusals[2]);
        Assert.Equal(1L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[1]))?.Sequence);

        // Through the batcher, in one call (they gather while a slow write holds the lane): the refusal is the order's
        // error, not its neighbours'.
        var (good, batch) = await GatheredAsync(shard, ids[2], () => [Batcher.MarkAsync(bad, 1), Batcher.MarkAsync(ids[0], 2)]);
        Assert.Equal(1, batch.Calls);
        await good;
        await Assert.ThrowsAsync<InvalidOperationException>(() => batch.Marks[0]);
        await batch.Marks[1];
        Assert.Equal(2L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);

        // The delivery of event 2 and the mark of event 3: the order stays held, at 3, in whichever order they go.
        Batcher.Delivered(ids[0], 2);
        await Batcher.MarkAsync(ids[0], 3);
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);

        // An older delivery never forgets a later mark; the matching one does.
        await Shard(shard).ApplyAsync(new RelayBatch([], [new RelayPosition(ids[0], 2), new RelayPosition(ids[1], 3)]));
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);
        Assert.Null(await Shard(shard).FindAsync(ids[1]));
        Batcher.Delivered(ids[0], 3);
        Batcher.Delivered(ids[2], 1);
        await Eventually.Until(() => Shard(shard).FindAsync(ids[0]), entry => entry is null, OrderDriver.CatchUpTimeout, entry => $"still held: {entry}");
    }

    [Fact]
    public async Task A_batch_whose_write_landed_but_answered_with_a_failure_completes_every_mark_by_sending_each_again()
    {
        var ids = IdsOfOneShard("batch-landed-", 21);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        StorageFaultHandle? landed = null;
        var (first, batch) = await GatheredAsync(shard, ids[0], () =>
        {
            // The batch's write lands, then fails (a timeout after the write was applied).
            landed = fixture.Faults.Fail(new StorageFault
            {
                StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write,
                Mode = StorageFaultMode.AfterCall, Times = 1,
            });
            return ids[1..].Select(id => Batcher.MarkAsync(id, 1)).ToArray();
        });
        using (landed)
        {
            await first;
            Assert.Equal(1, batch.Calls);
            // Sent again one by one: each finds its mark stored and completes; no order's command fails for it.
            await Task.WhenAll(batch.Marks);
            Assert.Equal(1, landed!.Hits);
        }

        var stored = (await StoredShardPages<RelayRecord>.ReadAsync<RelayShardState>(SiloStorage(), Shard(shard).GetGrainId(), "relay")).Merged();
        Assert.All(ids, id => Assert.True(stored.ContainsKey(id), $"{id} not stored"));
        await Shard(shard).ApplyAsync(new RelayBatch([], ids.Select(id => new RelayPosition(id, 1)).ToArray()));
    }

    [Fact]
    public async Task A_mark_to_an_idle_lane_takes_the_waiting_deliveries_and_if_that_call_fails_goes_again_alone()
    {
        var ids = IdsOfOneShard("batch-direct-", 4);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        await Task.WhenAll(ids[..2].Select(id => Batcher.MarkAsync(id, 1)));

        // Two deliveries wait (DeliveredDelay); the next mark takes them along, in a call that fails before it lands.
        Batcher.Delivered(ids[0], 1);
        Batcher.Delivered(ids[1], 1);
        var before = Batcher.SentTo(shard);
        using (var fault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write, Times = 1,
        }))
        {
            await Batcher.MarkAsync(ids[2], 1); // sent again alone: it completes, and only once stored
            Assert.Equal(1, fault.Hits);
        }

        var after = Batcher.SentTo(shard);
        Assert.Equal((1L, 1L, 2L), (after.Calls - before.Calls, after.Marks - before.Marks, after.Delivered - before.Delivered));
        var stored = (await StoredShardPages<RelayRecord>.ReadAsync<RelayShardState>(SiloStorage(), Shard(shard).GetGrainId(), "relay")).Merged();
        Assert.True(stored.ContainsKey(ids[2]));
        // The deliveries went with the failed call: the orders stay held until a delivery or the shard's own check.
        Assert.NotNull(await Shard(shard).FindAsync(ids[0]));

        // With no failure, the deliveries ride the mark and the shard forgets those orders at once.
        Batcher.Delivered(ids[0], 1);
        Batcher.Delivered(ids[1], 1);
        await Batcher.MarkAsync(ids[3], 1);
        Assert.Null(await Shard(shard).FindAsync(ids[0]));
        Assert.Null(await Shard(shard).FindAsync(ids[1]));
        Batcher.Delivered(ids[2], 1);
        Batcher.Delivered(ids[3], 1);
    }

    /// <summary>
    /// Holds the shard's lane with a lone mark of <paramref name="holder"/> whose write is slow, starts the marks
    /// <paramref name="gather"/> makes while it is out, and returns the holder's mark and theirs with the calls the lane
    /// made after the holder's: so they went together when that is 1.
    /// </summary>
    private async Task<(Task Holder, (long Calls, Task[] Marks) Gathered)> GatheredAsync(int shard, string holder, Func<Task[]> gather)
    {
        var slow = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = KeyOf(shard), Operations = StorageOperations.Write,
            Mode = StorageFaultMode.CountOnly, Delay = TimeSpan.FromMilliseconds(500), Times = 1,
        });
        using (slow)
        {
            var before = Batcher.SentTo(shard);
            var first = Batcher.MarkAsync(holder, 1);
            await Eventually.Until(() => Task.FromResult(slow.Hits), hits => hits == 1, OrderDriver.CatchUpTimeout, _ => "the holder's write never started");
            var marks = gather();
            await first;
            await Task.WhenAll(marks.Select(mark => mark.ContinueWith(_ => { }, TaskScheduler.Default)));
            return (first, (Batcher.SentTo(shard).Calls - before.Calls - 1, marks));
        }
    }

    [Fact]
    public async Task A_batch_larger_than_the_bound_is_refused_whole()
    {
        var marks = Enumerable.Range(0, RelayBatch.MaxItems + 1).Select(i => new RelayPosition($"{OrderDriver.NewId("batch-big-")}-{i}", 1)).ToArray();
        await Assert.ThrowsAsync<ArgumentException>(() => Shard(0).ApplyAsync(new RelayBatch(marks, [])));
        Assert.All(await Task.WhenAll(marks.Take(5).Select(m => Shard(0).FindAsync(m.OrderId))), Assert.Null);
    }

    private string KeyOf(int shard)
    {
        var key = Shard(shard).GetGrainId().Key.ToString()!;
        Assert.True(key.Length == 2, $"shard {shard}'s key '{key}' is not two characters: a fault on its prefix would reach other shards");
        return key;
    }

    private Orleans.Storage.IGrainStorage SiloStorage() =>
        ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredKeyedService<Orleans.Storage.IGrainStorage>(StorageNames.Orders);
}

/// <summary>A silo whose relay shards hold at most 100 orders, with no settle check in the tests' time.</summary>
public sealed class SmallRelayShardsFixture : SiloFixture<SmallRelayShardsFixture.Configurator>
{
    public const int MaxPending = 100;

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.MaxPendingPerShard = MaxPending;
                o.SettleAfter = TimeSpan.FromHours(1);
            });
        }
    }
}

/// <summary>A full shard refuses new orders' marks, in a batch as alone, and never a held order's next one.</summary>
public sealed class RelayShardBoundTests(SmallRelayShardsFixture fixture) : IClassFixture<SmallRelayShardsFixture>
{
    private RelayBatcher Batcher => ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<RelayBatcher>();

    [Fact]
    public async Task A_full_shard_refuses_only_new_orders_and_re_marks_of_held_ones_take_no_room()
    {
        const int Shard = 41;
        var shard = SiloGrains.Of(fixture.Cluster).GetGrain<IOrderRelayGrain>(Shard);
        var id = OrderDriver.NewId("bound-");
        var ids = Enumerable.Range(0, 1_000_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == Shard)
            .Take(SmallRelayShardsFixture.MaxPending + 2).ToArray();
        var held = ids[..(SmallRelayShardsFixture.MaxPending - 1)];
        foreach (var chunk in held.Chunk(RelayBatch.MaxItems))
        {
            Assert.All(await shard.ApplyAsync(new RelayBatch(chunk.Select(o => new RelayPosition(o, 1)).ToArray(), [])), Assert.Null);
        }

        Assert.Equal(SmallRelayShardsFixture.MaxPending - 1, (await shard.GetStatusAsync()).Pending);

        // A held order's next event and two new orders: the first new one takes the last place, the second is refused.
        var (newcomer, late) = (ids[^2], ids[^1]);
        var refusals = await shard.ApplyAsync(new RelayBatch(
            [new RelayPosition(held[0], 2), new RelayPosition(newcomer, 1), new RelayPosition(late, 1)], []));
        Assert.Null(refusals[0]);
        Assert.Null(refusals[1]);
        Assert.Contains($"holds {SmallRelayShardsFixture.MaxPending} orders", refusals[2]);
        Assert.Null(await shard.FindAsync(late));

        // Through the batcher: the refused order's command fails; a held order is never refused its next mark.
        await Assert.ThrowsAsync<InvalidOperationException>(() => Batcher.MarkAsync(late, 1));
        await Batcher.MarkAsync(held[1], 2);
        Assert.Equal(2L, (await shard.FindAsync(held[1]))?.Sequence);

        // Delivered, they make room again.
        await shard.ApplyAsync(new RelayBatch([], ids.Select(o => new RelayPosition(o, 2)).ToArray()));
        Assert.Equal(0, (await shard.GetStatusAsync()).Pending);
        await Batcher.MarkAsync(late, 1);
    }
}
