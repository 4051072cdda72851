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
        var ids = IdsOfOneShard("batch-refuse-", 2);
        var shard = IOrderRelayGrain.ShardOf(ids[0]);
        // An id the relay refuses, in the same call as a good one.
        var refusals = await Shard(shard).ApplyAsync(new RelayBatch([new RelayPosition(ids[0], 1), new RelayPosition("bad/id", 1), new RelayPosition(ids[1], 3)], []));
        Assert.Null(refusals[0]);
        Assert.Contains("order id", refusals[1]);
        Assert.Null(refusals[2]);
        Assert.Equal(1L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[1]))?.Sequence);

        // Through the batcher the refusal is the order's error, not its neighbours'.
        var bad = Batcher.MarkAsync("bad/id", 1);
        var good = Batcher.MarkAsync(ids[0], 2);
        await Assert.ThrowsAsync<InvalidOperationException>(() => bad);
        await good;
        Assert.Equal(2L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);

        // The delivery of event 2 and the mark of event 3, in one call: the order stays held, at 3.
        Batcher.Delivered(ids[0], 2);
        await Batcher.MarkAsync(ids[0], 3);
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);

        // An older delivery never forgets a later mark; the matching one does.
        await Shard(shard).ApplyAsync(new RelayBatch([], [new RelayPosition(ids[0], 2), new RelayPosition(ids[1], 3)]));
        Assert.Equal(3L, (await Shard(shard).FindAsync(ids[0]))?.Sequence);
        Assert.Null(await Shard(shard).FindAsync(ids[1]));
        Batcher.Delivered(ids[0], 3);
        await Eventually.Until(() => Shard(shard).FindAsync(ids[0]), entry => entry is null, OrderDriver.CatchUpTimeout, entry => $"still held: {entry}");
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
