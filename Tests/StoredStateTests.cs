using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>The non-repairing checker reads exactly what the grains stored, under the names they store it.</summary>
[Collection(PipelineCollection.Name)]
public sealed class StoredStateTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    private IStoredStateGrain Stored => fixture.Grains.GetGrain<IStoredStateGrain>(0);

    [Fact]
    public async Task Stored_state_of_a_finished_order_matches_what_its_grains_answer()
    {
        var id = OrderDriver.NewId("stored-");
        var (user, sku, coupon, activity) = ($"user-{id}", $"sku-{id}", $"coupon-{id}", $"activity-{id}");
        var total = await _orders.FullLifecycleAsync(id, user, OrderDriver.Items((sku, 2, 4.25m)), coupon, activity);
        var order = (await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout))[0];

        Assert.Equal((OrderStatus.Received, 4L), (order.Status, order.LastSequence));
        // The six product subscribers, and the tests' own audit-trail subscriber (Tests/Infrastructure).
        Assert.Subset(order.Subscribers.Select(s => s.Subscriber).ToHashSet(), new HashSet<string> { "activity-gmv", "coupon", "inventory", "order-sync", "points", "sms" });
        Assert.All(order.Subscribers, s => Assert.Equal((true, 4L, 0L), (s.Exists, s.AppliedSequence, order.Missing(s))));

        foreach (var (kind, key, balance) in new[] { (LedgerKind.Points, user, decimal.Floor(total)), (LedgerKind.Gmv, activity, total) })
        {
            var ledger = (await Stored.ReadLedgersAsync(kind, [key]))[0];
            Assert.Equal((true, balance, 1L), (ledger.Exists, ledger.Balance, ledger.Entries));
        }

        // Stock and coupon: one reservation each, committed by the payment (sold / redeemed), as the grains say.
        var stock = (await Stored.ReadLedgersAsync(LedgerKind.Stock, [sku]))[0];
        Assert.Equal((true, OrderDriver.StockPerSku - 2, 0L, 2L, 1L), (stock.Exists, stock.Available, stock.Reserved, stock.Committed, stock.Entries));
        var stockLevel = await fixture.Grains.GetGrain<IStockGrain>(sku).GetAsync();
        Assert.Equal((stockLevel.Available, stockLevel.Reserved, stockLevel.Sold), (stock.Available, stock.Reserved, stock.Committed));
        var uses = (await Stored.ReadLedgersAsync(LedgerKind.Coupon, [coupon]))[0];
        Assert.Equal((true, OrderDriver.UsesPerCoupon - 1, 0L, 1L, 1L), (uses.Exists, uses.Available, uses.Reserved, uses.Committed, uses.Entries));
        var couponLevel = await fixture.Grains.GetGrain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((couponLevel.Available, couponLevel.Reserved, couponLevel.Redeemed), (uses.Available, uses.Reserved, uses.Committed));

        var entries = await Stored.ReadEntriesAsync([
            new EntryRef(LedgerKind.Points, user, $"{id}:award"), new EntryRef(LedgerKind.Gmv, activity, $"{id}:paid"),
            new EntryRef(LedgerKind.Stock, sku, id), new EntryRef(LedgerKind.Coupon, coupon, id)]);
        Assert.Equal((true, decimal.Floor(total)), (entries[0].Exists, entries[0].Amount));
        Assert.Equal((true, total), (entries[1].Exists, entries[1].Amount));
        Assert.Equal((true, 2L, ReservationState.Committed), (entries[2].Exists, entries[2].Reservation?.Quantity, entries[2].Reservation?.State));
        Assert.Equal((true, 1L, ReservationState.Committed), (entries[3].Exists, entries[3].Reservation?.Quantity, entries[3].Reservation?.State));

        var replica = (await Stored.ReadReplicasAsync([id]))[0];
        Assert.Equal(await fixture.Grains.GetGrain<IOrderReplicaGrain>(id).GetAsync(), replica);
    }

    [Fact]
    public async Task An_order_that_was_never_placed_reads_as_absent_and_activates_nothing()
    {
        var id = OrderDriver.NewId("absent-");
        var order = (await Stored.ReadOrdersAsync([id]))[0];
        Assert.False(order.Exists);
        Assert.All(order.Subscribers, s => Assert.Equal((false, DeliveryState.Open), (s.Exists, order.Delivery(s))));
        Assert.False((await Stored.ReadLedgersAsync(LedgerKind.Points, [id]))[0].Exists);
        Assert.Null((await Stored.ReadReplicasAsync([id]))[0]);
    }

    [Fact]
    public async Task Inspecting_many_orders_is_capped_per_call_and_callers_page()
    {
        // Each inspected order activates the order and every subscriber grain: one call may not fan out without bound.
        var operations = fixture.Grains.GetGrain<IOperationsGrain>(0);
        var ids = Enumerable.Range(0, IOperationsGrain.MaxInspectBatch + 1).Select(i => OrderDriver.NewId($"page{i}-")).ToArray();
        await Assert.ThrowsAsync<ArgumentException>(() => operations.InspectManyAsync(ids));
        Assert.Equal(IOperationsGrain.MaxInspectBatch, (await operations.InspectManyAsync(ids[..IOperationsGrain.MaxInspectBatch])).Count);
        await Assert.ThrowsAsync<ArgumentException>(() => operations.InspectAsync("x/1"));
    }

    [Fact]
    public async Task The_checker_refuses_oversized_batches_and_ids_outside_the_alphabet()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Stored.ReadOrdersAsync(Enumerable.Range(0, IStoredStateGrain.MaxBatch + 1).Select(i => $"o{i}").ToArray()));
        await Assert.ThrowsAsync<ArgumentException>(() => Stored.ReadOrdersAsync(["x/1"]));
    }
}
