using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>The outbox relay drives every order to its end at every subscriber, with no client touching the order.</summary>
[Collection(PipelineCollection.Name)]
public sealed class RelayTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task An_order_whose_final_event_the_transport_lost_reaches_its_end_at_every_subscriber_with_no_client_touching_it()
    {
        // drop- (ChaosPublisher): the transport accepts event 2 and never delivers it. Here event 2 is the last one,
        // so no later event reveals the gap: before the relay, only a client's look at the order could repair it.
        var id = OrderDriver.NewId("drop-");
        await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)));
        await _orders.CancelAsync(id);

        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal((OrderStatus.Cancelled, 2L), (done[0].Status, done[0].LastSequence));
        Assert.All(done[0].Subscribers, s => Assert.Equal(2L, s.AppliedSequence));

        // Settled: the relay forgets the order, so it holds only orders with undelivered work.
        var shard = fixture.Grains.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(id));
        await Eventually.Until(() => shard.FindAsync(id), entry => entry is null, OrderDriver.CatchUpTimeout, entry => $"relay still holds {entry}");
    }

    [Fact]
    public async Task Order_show_says_whether_the_relay_holds_the_order_and_lag_counts_it_until_it_settles()
    {
        var id = OrderDriver.NewId("drop-");
        await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)));
        await _orders.CancelAsync(id);
        var report = await _orders.Operations.InspectAsync(id);
        // The mark is made before each event's write, so the order is held from its first command on.
        Assert.NotNull(report.Relay);
        Assert.Equal(2L, report.Relay!.Sequence);

        await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        await Eventually.Until(() => _orders.Operations.InspectAsync(id), r => r.Relay is null, OrderDriver.CatchUpTimeout, r => $"relay: {r.Relay}");
        var lag = await _orders.Operations.GetLagAsync();
        Assert.Contains(lag, l => l.Subscriber == "points");
    }

    [Fact]
    public async Task A_placement_whose_write_failed_takes_its_relay_mark_back_and_its_retry_marks_again()
    {
        var id = OrderDriver.NewId("unmark-");
        var items = OrderDriver.Items(($"sku-{id}", 1, 2m));
        await _orders.EnsureInventoryAsync(items);
        var place = new PlaceOrder($"{id}-place", $"user-{id}", items);
        using (fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Write, Times = 1,
        }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => _orders.Order(id).PlaceAsync(place));
        }

        // The re-read showed no event 1: the order took its mark back, so the relay does not wait for an event that
        // will never exist (it would otherwise hold the order, and fill its shard with such orders, for good).
        var shard = fixture.Grains.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(id));
        Assert.Null(await shard.FindAsync(id));

        // The caller's retry places the order, and its event reaches every subscriber as usual.
        (await _orders.Order(id).PlaceAsync(place)).EnsureAccepted();
        await _orders.CancelAsync(id);
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.All(done[0].Subscribers, s => Assert.Equal(2L, s.AppliedSequence));
    }

    [Fact]
    public void Shards_are_stable_across_processes_and_spread_orders()
    {
        Assert.Equal(IOrderRelayGrain.ShardOf("o-1"), IOrderRelayGrain.ShardOf("o-1"));
        var used = Enumerable.Range(0, 2_000).Select(i => IOrderRelayGrain.ShardOf($"order-{i}")).Distinct().Count();
        Assert.Equal(IOrderRelayGrain.Shards, used);
        // FNV-1a is fixed: the same id maps to the same shard in every silo and after every restart.
        Assert.Equal(IOrderRelayGrain.ShardOf("order-42"), (int)(Fnv("order-42") % IOrderRelayGrain.Shards));
    }

    private static uint Fnv(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
