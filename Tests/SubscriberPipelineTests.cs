using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class SubscriberPipelineTests(PipelineFixture fixture)
{
    private static readonly string[] BuiltIn = ["activity-gmv", "coupon", "inventory", "order-sync", "points", "sms"];

    private readonly OrderDriver _orders = new(fixture.Grains);

    private T Grain<T>(string key) where T : IGrainWithStringKey => fixture.Grains.GetGrain<T>(key);

    [Fact]
    public async Task The_six_subscribers_and_a_seventh_from_another_assembly_are_all_known()
    {
        var names = await _orders.Operations.GetSubscribersAsync();
        Assert.Equal(BuiltIn.Append("audit-trail").Order(StringComparer.Ordinal), names);
    }

    [Fact]
    public async Task Each_subscriber_applies_each_event_of_a_paid_order_exactly_once()
    {
        var id = OrderDriver.NewId("once-");
        var user = $"user-{id}";
        var (coupon, activity) = ($"coupon-{id}", $"activity-{id}");
        var (skuA, skuB) = ($"sku-a-{id}", $"sku-b-{id}");
        var total = await _orders.FullLifecycleAsync(id, user, OrderDriver.Items((skuA, 2, 19.99m), (skuB, 1, 5.02m), (skuA, 1, 19.99m)), coupon, activity);

        var report = await _orders.WaitCaughtUpAsync(id);

        Assert.Equal(64.99m, total);
        Assert.All(report.Subscribers, s =>
        {
            Assert.Equal(4, s.AppliedSequence);
            Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns); // once per event it handles
            Assert.Empty(s.BufferedSequences);
            Assert.False(s.Parked);
        });
        Assert.Equal(64m, (await Grain<IPointsAccountGrain>(user).GetAsync()).Balance);
        var couponLevel = await Grain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((1L, 0L), (couponLevel.Redeemed, couponLevel.Reserved));
        Assert.Equal(64.99m, (await Grain<IActivityGmvGrain>(activity).GetAsync()).Balance);
        var (stockA, stockB) = (await Grain<IStockGrain>(skuA).GetAsync(), await Grain<IStockGrain>(skuB).GetAsync());
        Assert.Equal((3L, 0L, OrderDriver.StockPerSku - 3), (stockA.Sold, stockA.Reserved, stockA.Available));
        Assert.Equal((1L, 0L, OrderDriver.StockPerSku - 1), (stockB.Sold, stockB.Reserved, stockB.Available));
        var sms = await Grain<ISmsGatewayGrain>(user).GetSentAsync();
        Assert.Equal(["paid", "shipped"], sms.Where(m => m.OrderId == id).Select(m => m.Kind));
        var row = await Grain<IOrderReplicaGrain>(id).GetAsync();
        Assert.Equal(new ReplicaRow(true, OrderStatus.Received, 64.99m, 4, 0, 4), row);
    }

    [Fact]
    public async Task Cancelling_a_paid_order_reverses_each_effect_exactly_once()
    {
        var id = OrderDriver.NewId("refund-");
        var user = $"user-{id}";
        var (coupon, activity, sku) = ($"coupon-{id}", $"activity-{id}", $"sku-{id}");
        var total = await _orders.PlaceAsync(id, user, OrderDriver.Items((sku, 4, 12.5m)), coupon, activity);
        await _orders.PayAsync(id, total);
        await _orders.CancelAsync(id);
        await _orders.Order(id).CancelAsync(new CancelOrder($"{id}-cancel"));

        var report = await _orders.WaitCaughtUpAsync(id);

        Assert.All(report.Subscribers, s => Assert.Equal(Handed.Runs(s.Subscriber, "PAC"), s.HandlerRuns));
        var points = await Grain<IPointsAccountGrain>(user).GetAsync();
        Assert.Equal((0m, 2L), (points.Balance, points.Entries));
        Assert.Equal(50m, await Grain<IPointsAccountGrain>(user).GetEntryAsync($"{id}:award"));
        Assert.Equal(-50m, await Grain<IPointsAccountGrain>(user).GetEntryAsync($"{id}:revoke"));
        // Redeemed at payment, restored by the cancellation: nothing redeemed, nothing held.
        var couponLevel = await Grain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((0L, 0L, OrderDriver.UsesPerCoupon), (couponLevel.Redeemed, couponLevel.Reserved, couponLevel.Available));
        var gmv = await Grain<IActivityGmvGrain>(activity).GetAsync();
        Assert.Equal((0m, 2L), (gmv.Balance, gmv.Entries));
        Assert.Equal(50m, await Grain<IActivityGmvGrain>(activity).GetEntryAsync($"{id}:paid"));
        Assert.Equal(-50m, await Grain<IActivityGmvGrain>(activity).GetEntryAsync($"{id}:refund"));
        // Sold at payment, restocked by the cancellation: every unit is available again.
        var stock = await Grain<IStockGrain>(sku).GetAsync();
        Assert.Equal((0L, 0L, OrderDriver.StockPerSku), (stock.Sold, stock.Reserved, stock.Available));
        var restored = await fixture.Grains.GetGrain<IStockReservationsGrain>(sku).GetReservationAsync(id);
        Assert.Equal((4L, ReservationState.Restored), (restored!.Quantity, restored.State));
        var row = await Grain<IOrderReplicaGrain>(id).GetAsync();
        Assert.False(row.Exists);
        Assert.Equal(3, row.Version);
        Assert.Equal(0, row.Violations);
    }

    [Fact]
    public async Task Cancelling_before_payment_touches_no_ledger()
    {
        var id = OrderDriver.NewId("early-cancel-");
        var user = $"user-{id}";
        await _orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", 1, 9m)), $"coupon-{id}", $"activity-{id}");
        await _orders.CancelAsync(id);

        await _orders.WaitCaughtUpAsync(id);

        // No balance ledger saw the order; its reservations were made at placement and given back by the cancellation.
        Assert.Equal(0L, (await Grain<IPointsAccountGrain>(user).GetAsync()).Entries);
        Assert.Null(await Grain<IPointsAccountGrain>(user).GetEntryAsync($"{id}:award"));
        Assert.Equal(0L, (await Grain<IActivityGmvGrain>($"activity-{id}").GetAsync()).Entries);
        Assert.Null(await Grain<IActivityGmvGrain>($"activity-{id}").GetEntryAsync($"{id}:paid"));
        var coupon = await Grain<ICouponGrain>($"coupon-{id}").GetAsync();
        Assert.Equal((0L, 0L, OrderDriver.UsesPerCoupon), (coupon.Redeemed, coupon.Reserved, coupon.Available));
        var stock = await Grain<IStockGrain>($"sku-{id}").GetAsync();
        Assert.Equal((0L, 0L, OrderDriver.StockPerSku), (stock.Sold, stock.Reserved, stock.Available));
        var released = await fixture.Grains.GetGrain<IStockReservationsGrain>($"sku-{id}").GetReservationAsync(id);
        Assert.Equal((1L, ReservationState.Released), (released!.Quantity, released.State));
        var row = await Grain<IOrderReplicaGrain>(id).GetAsync();
        Assert.Equal((false, 2L, 0), (row.Exists, row.Version, row.Violations));
    }

    [Fact]
    public async Task Per_order_order_holds_under_200_concurrent_orders_with_interleaved_commands()
    {
        var ids = Enumerable.Range(0, 200).Select(i => OrderDriver.NewId($"many-{i}-")).ToArray();
        var totals = new decimal[ids.Length];
        var steps = new Func<int, Task>[]
        {
            async i => totals[i] = await _orders.PlaceAsync(ids[i], $"user-many-{i % 7}", OrderDriver.Items(($"sku-many-{i % 5}", 1 + i % 3, 1.25m * (1 + i % 11)))),
            i => _orders.PayAsync(ids[i], totals[i]),
            i => i % 4 == 0 ? _orders.CancelAsync(ids[i]) : _orders.ShipAsync(ids[i]),
            i => i % 4 == 0 ? Task.CompletedTask : _orders.ReceiveAsync(ids[i]),
        };

        // Every order moves one step per round, all orders concurrently: their events interleave on the stream.
        foreach (var step in steps)
        {
            await Task.WhenAll(Enumerable.Range(0, ids.Length).Select(step));
        }

        var reports = await _orders.WaitCaughtUpAsync(ids);

        foreach (var report in reports)
        {
            var row = await Grain<IOrderReplicaGrain>(report.Order.OrderId).GetAsync();
            Assert.True(row.Violations == 0, $"replica of {report.Order.OrderId} saw {row.Violations} out-of-order changes");
            Assert.Equal(report.Order.LastSequence, row.Version);
            Assert.Equal(report.Order.Status == OrderStatus.Received, row.Exists);
            var kinds = report.Order.Status == OrderStatus.Cancelled ? "PAC" : Handed.FullLifecycle;
            Assert.All(report.Subscribers, s => Assert.Equal(Handed.Runs(s.Subscriber, kinds), s.HandlerRuns));
        }

        // And from storage alone: every order against its reservations, points, GMV and replica row.
        var audit = await AuditCheck.AssertCleanAsync(_orders.Grains, ids);
        Assert.Equal(ids.Length, audit.Checked);
    }

    [Fact]
    public async Task Duplicated_deliveries_are_dropped_and_change_nothing()
    {
        var id = OrderDriver.NewId("dup-");
        var user = $"user-{id}";
        await _orders.FullLifecycleAsync(id, user, OrderDriver.Items(($"sku-{id}", 2, 30m)), $"coupon-{id}", $"activity-{id}");

        // Each copy travels after its original, so a subscriber can be caught up before the last copy reaches it.
        await _orders.WaitCaughtUpAsync(id);
        var report = await Eventually.Until(() => _orders.Operations.InspectAsync(id),
            r => r.Subscribers.All(s => s.DuplicatesIgnored >= Handed.Runs(s.Subscriber, Handed.FullLifecycle)), OrderDriver.CatchUpTimeout,
            r => string.Join(", ", r.Subscribers.Select(s => $"{s.Subscriber} dropped {s.DuplicatesIgnored}")));

        Assert.All(report.Subscribers, s =>
        {
            // Each event it is handed comes twice: one run, one duplicate dropped.
            Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns);
            Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.DuplicatesIgnored);
        });
        Assert.Equal(60m, (await Grain<IPointsAccountGrain>(user).GetAsync()).Balance);
        Assert.Equal(60m, (await Grain<IActivityGmvGrain>($"activity-{id}").GetAsync()).Balance);
        var stock = await Grain<IStockGrain>($"sku-{id}").GetAsync();
        Assert.Equal((2L, 0L, OrderDriver.StockPerSku - 2), (stock.Sold, stock.Reserved, stock.Available));
        Assert.Equal((1L, 0L), ((await Grain<ICouponGrain>($"coupon-{id}").GetAsync()).Redeemed, (await Grain<ICouponGrain>($"coupon-{id}").GetAsync()).Reserved));
        Assert.Equal(2, (await Grain<ISmsGatewayGrain>(user).GetSentAsync()).Count(m => m.OrderId == id));
        Assert.Equal(0, (await Grain<IOrderReplicaGrain>(id).GetAsync()).Violations);
    }

    [Fact]
    public async Task Reordered_deliveries_are_applied_in_sequence_order()
    {
        var id = OrderDriver.NewId("swap-");
        await _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 8m)));

        var report = await _orders.WaitCaughtUpAsync(id);

        Assert.All(report.Subscribers, s => Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns));
        var row = await Grain<IOrderReplicaGrain>(id).GetAsync();
        Assert.Equal(new ReplicaRow(true, OrderStatus.Received, 8m, 4, 0, 4), row);
    }

    [Fact]
    public async Task Points_ledgers_add_up_to_the_paid_amounts_to_the_cent()
    {
        var run = OrderDriver.NewId("sum-");
        var users = Enumerable.Range(0, 10).Select(u => $"user-{run}-{u}").ToArray();
        var expected = users.ToDictionary(u => u, _ => 0m);
        var awards = new Dictionary<string, (string User, decimal Points)>();
        var ids = new List<string>();
        await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            var id = $"{run}-{i}";
            var user = users[i % users.Length];
            var total = await _orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{run}", 1 + i % 4, 0.99m + i * 1.37m)));
            await _orders.PayAsync(id, total);
            lock (expected)
            {
                expected[user] += decimal.Floor(total);
                awards[id] = (user, decimal.Floor(total));
                ids.Add(id);
            }
        }));

        await _orders.WaitCaughtUpAsync(ids);

        foreach (var user in users)
        {
            var account = await Grain<IPointsAccountGrain>(user).GetAsync();
            Assert.Equal(expected[user], account.Balance);
            // Each of the user's orders applied its award once, under its own key, and nothing else was recorded.
            var mine = ids.Where(id => awards[id].User == user).ToArray();
            Assert.Equal(mine.Length, account.Entries);
            var amounts = await Task.WhenAll(mine.Select(id => Grain<IPointsAccountGrain>(user).GetEntryAsync($"{id}:award")));
            Assert.Equal(mine.Select(id => (decimal?)awards[id].Points), amounts);
            Assert.Equal(account.Balance, amounts.Sum(a => a!.Value));
        }
    }
}
