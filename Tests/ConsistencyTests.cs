using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Tests.Infrastructure;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// Placement reserves stock and the coupon all or nothing; payment commits, cancellation gives back, each exactly once;
/// a placement that dies between its reservations and its write leaks nothing and half-writes nothing.
/// </summary>
[Collection(ConsistencyFixture.Name)]
public sealed class ConsistencyTests(ConsistencyFixture fixture)
{
    private IGrainFactory Grains => SiloGrains.Of(fixture.Cluster);

    private IOrderGrain Order(string id) => Grains.GetGrain<IOrderGrain>(id);

    private IStoredStateGrain Stored => Grains.GetGrain<IStoredStateGrain>(0);

    private async Task<string> StockAsync(string sku, long units)
    {
        var set = await Grains.GetGrain<IStockGrain>(sku).SetAvailableAsync(units);
        Assert.True(set.Accepted, set.Message);
        return sku;
    }

    private async Task<string> CouponAsync(string coupon, long uses)
    {
        var issued = await Grains.GetGrain<ICouponGrain>(coupon).IssueAsync(uses);
        Assert.True(issued.Accepted, issued.Message);
        return coupon;
    }

    private static PlaceOrder Place(string id, string user, IReadOnlyList<OrderLine> items, string? coupon = null, string? activity = null) =>
        new($"{id}-place", user, items, coupon, activity);

    [Fact]
    public async Task A_thousand_buyers_racing_for_a_hundred_units_leave_exactly_a_hundred_winners()
    {
        var sku = await StockAsync(OrderDriver.NewId("race-sku-"), 100);
        var run = OrderDriver.NewId("race-");

        var results = await Task.WhenAll(Enumerable.Range(0, 1_000).Select(i =>
            Order($"{run}-{i}").PlaceAsync(Place($"{run}-{i}", $"buyer-{i}", OrderDriver.Items((sku, 1, 10m))))));

        Assert.Equal(100, results.Count(r => r.Accepted));
        Assert.All(results.Where(r => !r.Accepted), r => Assert.Equal(OrderErrorCode.OutOfStock, r.Error!.Code));
        Assert.Contains(sku, results.First(r => !r.Accepted).Error!.Message);
        var level = await Grains.GetGrain<IStockGrain>(sku).GetAsync();
        Assert.Equal((0L, 100L, 0L), (level.Available, level.Reserved, level.Sold));
        await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => l.Pending == 0, TimeSpan.FromSeconds(10), v => $"{v}");
        // Every reservation confirmed. The check-back reminder stays while the ledger is active, through several of its
        // check periods (a busy SKU registers it once, not at each reservation after a quiet moment), and goes when the
        // ledger deactivates (its own tick would otherwise wake the ledger a minute later only to remove it).
        await Eventually.Holds(() => fixture.HasCheckReminderAsync("stock", sku), stored => stored, TimeSpan.FromSeconds(1), v => $"stored: {v}");
        await Eventually.Until(() => fixture.ReminderAfterDeactivationAsync("stock", sku), stored => !stored, TimeSpan.FromSeconds(10), v => $"stored: {v}");

        // Losers wrote nothing: no order record, no catalog entry to relay.
        var losers = results.Where(r => !r.Accepted).Select(r => r.OrderId).Take(100).ToArray();
        Assert.All(await Stored.ReadOrderDetailsAsync(losers), o => Assert.False(o.Exists));
    }

    [Fact]
    public async Task A_single_use_coupon_raced_by_fifty_orders_is_won_once()
    {
        var sku = await StockAsync(OrderDriver.NewId("coupon-race-sku-"), 1_000);
        var coupon = await CouponAsync(OrderDriver.NewId("once-"), 1);
        var run = OrderDriver.NewId("coupon-race-");

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            Order($"{run}-{i}").PlaceAsync(Place($"{run}-{i}", $"buyer-{i}", OrderDriver.Items((sku, 2, 10m)), coupon))));

        Assert.Single(results, r => r.Accepted);
        Assert.All(results.Where(r => !r.Accepted), r => Assert.Equal(OrderErrorCode.CouponUnavailable, r.Error!.Code));
        var uses = await Grains.GetGrain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((1L, 1L, 0L, 0L), (uses.Issued, uses.Reserved, uses.Redeemed, uses.Available));
        // The 49 losers reserved stock first and gave it back: only the winner's 2 units are held.
        var level = await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => l.Pending == 0, TimeSpan.FromSeconds(10), v => $"{v}");
        Assert.Equal((998L, 2L), (level.Available, level.Reserved));
    }

    [Fact]
    public async Task An_order_is_refused_whole_when_one_line_cannot_be_reserved()
    {
        var plenty = await StockAsync(OrderDriver.NewId("plenty-"), 10);
        var scarce = await StockAsync(OrderDriver.NewId("scarce-"), 1);
        var coupon = await CouponAsync(OrderDriver.NewId("c-"), 5);
        var id = OrderDriver.NewId("half-");

        var result = await Order(id).PlaceAsync(Place(id, "u1", OrderDriver.Items((plenty, 3, 1m), (scarce, 2, 1m)), coupon));

        Assert.False(result.Accepted);
        Assert.Equal(OrderErrorCode.OutOfStock, result.Error!.Code);
        Assert.Contains(scarce, result.Error.Message);
        Assert.Equal((10L, 0L), await Figures(plenty));
        Assert.Equal((1L, 0L), await Figures(scarce));
        var uses = await Grains.GetGrain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((5L, 0L), (uses.Available, uses.Reserved));
        var stored = (await Stored.ReadOrderDetailsAsync([id]))[0];
        Assert.Equal((OrderStatus.None, 1L), (stored.Status, stored.PlacementEpoch));

        // The same command again, once there is stock, places the order under the next epoch.
        await StockAsync(scarce, 5);
        var retried = await Order(id).PlaceAsync(Place(id, "u1", OrderDriver.Items((plenty, 3, 1m), (scarce, 2, 1m)), coupon));
        Assert.True(retried.Accepted, retried.Error?.Message);
        Assert.Equal((7L, 3L), await Figures(plenty));
        Assert.Equal((3L, 2L), await Figures(scarce));
        var reservation = await Grains.GetGrain<IStockReservationsGrain>(plenty).GetReservationAsync(id);
        Assert.Equal((1L, ReservationState.Reserved, 3L), (reservation!.Epoch, reservation.State, reservation.Quantity));
    }

    [Fact]
    public async Task Unknown_skus_and_coupons_are_refused_with_their_own_codes()
    {
        var sku = await StockAsync(OrderDriver.NewId("known-"), 3);
        var unknownSku = OrderDriver.NewId("nosuch-");
        var a = OrderDriver.NewId("unknown-sku-");
        var b = OrderDriver.NewId("unknown-coupon-");

        var noSku = await Order(a).PlaceAsync(Place(a, "u", OrderDriver.Items((sku, 1, 1m), (unknownSku, 1, 1m))));
        var noCoupon = await Order(b).PlaceAsync(Place(b, "u", OrderDriver.Items((sku, 1, 1m)), OrderDriver.NewId("never-issued-")));

        Assert.Equal(OrderErrorCode.UnknownSku, noSku.Error!.Code);
        Assert.Contains(unknownSku, noSku.Error.Message);
        Assert.Equal(OrderErrorCode.CouponUnavailable, noCoupon.Error!.Code);
        Assert.Equal((3L, 0L), await Figures(sku));
        Assert.False((await Grains.GetGrain<IStockGrain>(unknownSku).GetAsync()).Exists);
    }

    [Fact]
    public async Task Bad_stock_and_coupon_figures_are_refused_and_change_nothing()
    {
        var sku = await StockAsync(OrderDriver.NewId("bounded-"), 7);
        var stock = Grains.GetGrain<IStockGrain>(sku);

        foreach (var bad in new[] { -1L, InventoryLimits.MaxStock + 1, long.MinValue })
        {
            var refused = await stock.SetAvailableAsync(bad);
            Assert.Equal((false, OrderErrorCode.InvalidCommand), (refused.Accepted, refused.Code));
        }

        Assert.Equal((7L, 0L), await Figures(sku));
        var badId = await Grains.GetGrain<IStockGrain>("bad/sku").SetAvailableAsync(5);
        Assert.Equal(OrderErrorCode.InvalidCommand, badId.Code);
        var coupon = Grains.GetGrain<ICouponGrain>(OrderDriver.NewId("uses-"));
        Assert.False((await coupon.IssueAsync(0)).Accepted);
        Assert.False((await coupon.GetAsync()).Exists);
    }

    [Fact]
    public async Task A_coupon_cannot_be_reissued_below_the_uses_it_has_given()
    {
        var sku = await StockAsync(OrderDriver.NewId("reissue-sku-"), 10);
        var coupon = await CouponAsync(OrderDriver.NewId("reissue-"), 3);
        foreach (var id in new[] { OrderDriver.NewId("reissue-a-"), OrderDriver.NewId("reissue-b-") })
        {
            (await Order(id).PlaceAsync(Place(id, "u", OrderDriver.Items((sku, 1, 1m)), coupon))).EnsureAccepted();
        }

        var tooFew = await Grains.GetGrain<ICouponGrain>(coupon).IssueAsync(1);
        Assert.Equal((false, OrderErrorCode.InvalidCommand), (tooFew.Accepted, tooFew.Code));
        Assert.Equal((3L, 2L, 1L), (tooFew.Level.Issued, tooFew.Level.Reserved, tooFew.Level.Available));
        var exact = await Grains.GetGrain<ICouponGrain>(coupon).IssueAsync(2);
        Assert.True(exact.Accepted);
        Assert.Equal((2L, 2L, 0L), (exact.Level.Issued, exact.Level.Reserved, exact.Level.Available));
    }

    [Fact]
    public async Task Cancelling_a_paid_order_gives_everything_back_exactly_once_despite_repeated_cancels()
    {
        var id = OrderDriver.NewId("comp-");
        var user = $"user-{id}";
        var sku = await StockAsync($"sku-{id}", 10);
        var coupon = await CouponAsync($"coupon-{id}", 1);
        var activity = $"activity-{id}";
        (await Order(id).PlaceAsync(Place(id, user, OrderDriver.Items((sku, 4, 12.5m)), coupon, activity))).EnsureAccepted();
        (await Order(id).PayAsync(new PayOrder($"{id}-pay", $"pay-{id}", 50m))).EnsureAccepted();
        await WaitPaidAppliedAsync(id);
        Assert.Equal((6L, 0L), await Figures(sku));
        Assert.Equal(4L, (await Grains.GetGrain<IStockGrain>(sku).GetAsync()).Sold);
        Assert.Equal(1L, (await Grains.GetGrain<ICouponGrain>(coupon).GetAsync()).Redeemed);

        var cancels = await Task.WhenAll(
            Order(id).CancelAsync(new CancelOrder($"{id}-cancel")),
            Order(id).CancelAsync(new CancelOrder($"{id}-cancel")),
            Order(id).CancelAsync(new CancelOrder($"{id}-cancel-again")));
        Assert.Equal(2, cancels.Count(c => c.Accepted));
        Assert.Equal(OrderErrorCode.IllegalTransition, cancels.Single(c => !c.Accepted).Error!.Code);
        await StoredProgress.WaitFinishedAsync(Grains, [id], OrderDriver.CatchUpTimeout);

        var level = await Grains.GetGrain<IStockGrain>(sku).GetAsync();
        Assert.Equal((10L, 0L, 0L), (level.Available, level.Reserved, level.Sold));
        var uses = await Grains.GetGrain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((1L, 0L, 0L), (uses.Available, uses.Reserved, uses.Redeemed));
        var points = Grains.GetGrain<IPointsAccountGrain>(user);
        Assert.Equal((0m, 2L), ((await points.GetAsync()).Balance, (await points.GetAsync()).Entries));
        Assert.Equal((50m, -50m), (await points.GetEntryAsync($"{id}:award"), await points.GetEntryAsync($"{id}:revoke")));
        Assert.Equal(0m, (await Grains.GetGrain<IActivityGmvGrain>(activity).GetAsync()).Balance);
        var reservation = await Grains.GetGrain<IStockReservationsGrain>(sku).GetReservationAsync(id);
        Assert.Equal(ReservationState.Restored, reservation!.State);

        // A late, duplicated delivery of the payment and the cancellation changes nothing (the commit was done before
        // the reservation was restored).
        Assert.Equal(ReservationOutcome.AlreadyDone, (await Grains.GetGrain<IStockReservationsGrain>(sku).CommitAsync(id)).Outcome);
        Assert.Equal(ReservationOutcome.AlreadyDone, (await Grains.GetGrain<IStockReservationsGrain>(sku).ReleaseAsync(id)).Outcome);
        Assert.Equal((10L, 0L), await Figures(sku));
    }

    [Fact]
    public async Task Cancelling_an_unpaid_order_releases_its_reservations()
    {
        var id = OrderDriver.NewId("release-");
        var sku = await StockAsync($"sku-{id}", 5);
        var coupon = await CouponAsync($"coupon-{id}", 1);
        (await Order(id).PlaceAsync(Place(id, "u", OrderDriver.Items((sku, 5, 1m)), coupon))).EnsureAccepted();
        Assert.Equal((0L, 5L), await Figures(sku));

        (await Order(id).CancelAsync(new CancelOrder($"{id}-cancel", "changed my mind"))).EnsureAccepted();
        await StoredProgress.WaitFinishedAsync(Grains, [id], OrderDriver.CatchUpTimeout);

        Assert.Equal((5L, 0L), await Figures(sku));
        var uses = await Grains.GetGrain<ICouponGrain>(coupon).GetAsync();
        Assert.Equal((1L, 0L, 0L), (uses.Available, uses.Reserved, uses.Redeemed));
    }

    [Fact]
    public async Task A_payment_id_pays_one_order_only()
    {
        var sku = await StockAsync(OrderDriver.NewId("payid-sku-"), 10);
        var (a, b) = (OrderDriver.NewId("payid-a-"), OrderDriver.NewId("payid-b-"));
        var payment = OrderDriver.NewId("pay-");
        (await Order(a).PlaceAsync(Place(a, "u", OrderDriver.Items((sku, 1, 3m))))).EnsureAccepted();
        (await Order(b).PlaceAsync(Place(b, "u", OrderDriver.Items((sku, 1, 3m))))).EnsureAccepted();

        (await Order(a).PayAsync(new PayOrder($"{a}-pay", payment, 3m))).EnsureAccepted();
        var reused = await Order(b).PayAsync(new PayOrder($"{b}-pay", payment, 3m));
        var repeated = await Order(a).PayAsync(new PayOrder($"{a}-pay", payment, 3m));

        Assert.Equal(OrderErrorCode.PaymentIdReused, reused.Error!.Code);
        Assert.Contains(a, reused.Error.Message);
        Assert.True(repeated is { Accepted: true, Repeated: true });
        Assert.Equal(OrderStatus.Placed, (await Order(b).GetAsync()).Status);
    }

    [Fact]
    public async Task Concurrent_claims_of_one_payment_id_all_get_its_owner_and_none_a_cluster_error()
    {
        // Red-team finding: the payment id's grain deactivated after every claim, so claims queued behind it were
        // forwarded to a new activation each time, and Orleans rejects a message forwarded more than twice.
        var payment = Grains.GetGrain<IPaymentIdGrain>(OrderDriver.NewId("pay-race-"));
        var claimants = Enumerable.Range(0, 20).Select(i => $"race-order-{i}").ToArray();

        var owners = await Task.WhenAll(claimants.Select(order => payment.ClaimAsync(order)));

        var owner = Assert.Single(owners.Distinct());
        Assert.Contains(owner, claimants);
        Assert.Equal(owner, await payment.GetOwnerAsync());
    }

    [Fact]
    public async Task A_placement_that_dies_between_its_reservations_and_its_write_leaks_nothing()
    {
        var id = OrderDriver.NewId("dies-");
        var sku = await StockAsync($"sku-{id}", 4);
        var coupon = await CouponAsync($"coupon-{id}", 1);

        await Order(id).GetAsync(); // activated (nothing stored yet), so the faults below meet its write, not its first read
        // The order's write fails and so does the re-read after it: the activation's state is untrusted, it writes no
        // fence and gives nothing back — as if its silo died right there. The reservations wait for their check-back.
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => Order(id).PlaceAsync(Place(id, "u", OrderDriver.Items((sku, 3, 1m)), coupon)));
            Assert.Equal((1L, 3L), await Figures(sku));
            // While the order cannot answer, the check-back cannot decide: the units stay held, never given away twice,
            // and a reminder is stored for each key, which would bring its check-back back after a crash of this silo.
            await Eventually.Holds(() => Figures(sku), f => f == (1L, 3L), TimeSpan.FromSeconds(2), v => $"{v}");
            Assert.True(await fixture.HasCheckReminderAsync("stock", sku));
            Assert.True(await fixture.HasCheckReminderAsync("coupon-uses", coupon));
        }

        // Storage is back: the check-back asks the order, which fences the placement (durably) and says release.
        await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => (l.Available, l.Reserved) == (4L, 0L), TimeSpan.FromSeconds(20), v => $"{v}");
        await Eventually.Until(() => StoredAsync(LedgerKind.Coupon, coupon), c => c is { Reserved: 0, Available: 1, Pending: 0 }, TimeSpan.FromSeconds(20), v => $"{v}");
        // Nothing pending: the reminders go with the ledgers' activations (their first tick is a minute away, so it is not that).
        await Eventually.Until(() => fixture.ReminderAfterDeactivationAsync("stock", sku), stored => !stored, TimeSpan.FromSeconds(10), v => $"stored: {v}");
        await Eventually.Until(() => fixture.ReminderAfterDeactivationAsync("coupon-uses", coupon), stored => !stored, TimeSpan.FromSeconds(10), v => $"stored: {v}");
        var stored = (await Stored.ReadOrderDetailsAsync([id]))[0];
        Assert.Equal((OrderStatus.None, 1L), (stored.Status, stored.PlacementEpoch));

        // The caller's retry of the same command places the order under the next epoch.
        (await Order(id).PlaceAsync(Place(id, "u", OrderDriver.Items((sku, 3, 1m)), coupon))).EnsureAccepted();
        Assert.Equal((1L, 3L), await Figures(sku));
        await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => l.Pending == 0, TimeSpan.FromSeconds(10), v => $"{v}");
    }

    [Fact]
    public async Task A_placement_whose_write_landed_before_its_silo_died_keeps_its_reservations()
    {
        var id = OrderDriver.NewId("landed-");
        var sku = await StockAsync($"sku-{id}", 4);

        await Order(id).GetAsync();
        // The write lands but answers an error, and the re-read fails: the caller sees a failure, nothing confirms.
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Write, Times = 1, Mode = StorageFaultMode.AfterCall }))
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Read, Times = 1 }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => Order(id).PlaceAsync(Place(id, "u", OrderDriver.Items((sku, 2, 1m)))));
        }

        // The check-back finds the order placed under that epoch: the reservation is kept, never given away.
        var level = await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => l.Pending == 0, TimeSpan.FromSeconds(20), v => $"{v}");
        Assert.Equal((2L, 2L), (level.Available, level.Reserved));
        var stored = (await Stored.ReadOrderDetailsAsync([id]))[0];
        Assert.Equal((OrderStatus.Placed, 0L), (stored.Status, stored.PlacementEpoch));
    }

    [Fact]
    public async Task A_hot_key_writes_the_same_few_bytes_at_its_thousandth_order_as_at_its_first()
    {
        var sku = await StockAsync(OrderDriver.NewId("hot-"), 1_000_000);
        var activity = OrderDriver.NewId("hot-activity-");
        var run = OrderDriver.NewId("hot-run-");

        async Task<(int Stock, int Gmv)> HeadBytesAfterAsync(int from, int to)
        {
            foreach (var batch in Enumerable.Range(from, to - from).Chunk(100))
            {
                await Task.WhenAll(batch.Select(async i =>
                {
                    var id = $"{run}-{i}";
                    (await Order(id).PlaceAsync(Place(id, $"u{i % 50}", OrderDriver.Items((sku, 1, 2m)), activity: activity))).EnsureAccepted();
                    (await Order(id).PayAsync(new PayOrder($"{id}-pay", $"pay-{id}", 2m))).EnsureAccepted();
                }));
            }

            await WaitPaidAppliedAsync($"{run}-{to - 1}");
            await Eventually.Until(() => Grains.GetGrain<IActivityGmvGrain>(activity).GetAsync(), g => g.Entries >= to, OrderDriver.CatchUpTimeout, v => $"{v}");
            await Eventually.Until(() => StoredAsync(LedgerKind.Stock, sku), l => l.Committed == to && l.Pending == 0, OrderDriver.CatchUpTimeout, v => $"{v}");
            // One more single write on each, so each head's journal holds exactly one entry when it is measured.
            await Grains.GetGrain<IActivityGmvGrain>(activity).ApplyAsync($"probe-{to}", 0m);
            await Grains.GetGrain<IStockGrain>(sku).SetAvailableAsync(1_000_000);
            return (await HeadBytesAsync<ReservationHead>("stock", LedgerStateNames.Stock, sku),
                    await HeadBytesAsync<BalanceHead>("ledger-gmv", LedgerStateNames.Gmv, activity));
        }

        var early = await HeadBytesAfterAsync(0, 100);
        var late = await HeadBytesAfterAsync(100, 600);

        // The head row of a key with 600 orders is the size it was at 100: no processed key lives in it.
        Assert.InRange(late.Stock, early.Stock - 16, early.Stock + 16);
        Assert.InRange(late.Gmv, early.Gmv - 16, early.Gmv + 16);
        Assert.True(late.Stock < 1_000 && late.Gmv < 1_000, $"head rows of {late.Stock} and {late.Gmv} bytes");
        var ledger = (await Stored.ReadLedgersAsync(LedgerKind.Gmv, [activity]))[0];
        Assert.Equal(602, ledger.Entries);
        Assert.Equal(1_200m, ledger.Balance);
    }

    private async Task<int> HeadBytesAsync<T>(string grainType, string stateName, string key) where T : class, new()
    {
        var services = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services;
        var record = new GrainState<T>(new T());
        await services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Ledgers).ReadStateAsync(stateName, GrainId.Create(grainType, key), record);
        Assert.True(record.RecordExists);
        return services.GetRequiredService<Serializer>().SerializeToArray(record.State).Length;
    }

    /// <summary>Waits until the subscribers with an effect on payment have stored the payment (event 2) as applied.</summary>
    /// <summary>
    /// Waits until the payment's effects are all stored, as the audit reads them (storage only): the subscribers with
    /// keyed effects write their own progress only at the order's end, so their inboxes cannot tell.
    /// </summary>
    private async Task WaitPaidAppliedAsync(string orderId)
    {
        await Eventually.Until(() => Grains.GetGrain<IAuditGrain>(0).AuditOrdersAsync([orderId]),
            r => r.Checked == 1 && r.Discrepancies.Count == 0 && r.Notes.All(n => n.Area != "in-flight"),
            OrderDriver.CatchUpTimeout,
            r => string.Join("; ", r.Discrepancies.Concat(r.Notes).Select(f => $"{f.Area}: {f.Detail}")));
    }

    /// <summary>
    /// A stock or coupon ledger's head as stored, read by the checker, which activates nothing: a poll that waits for a
    /// check-back to settle cannot itself wake the ledger (an activation re-arms its check-back) and so repair what it checks.
    /// </summary>
    private async Task<StoredLedger> StoredAsync(LedgerKind kind, string key) => (await Stored.ReadLedgersAsync(kind, [key]))[0];

    private async Task<(long Available, long Reserved)> Figures(string sku)
    {
        var level = await Grains.GetGrain<IStockGrain>(sku).GetAsync();
        return (level.Available, level.Reserved);
    }
}

/// <summary>One silo with fault-injecting storage and a fast reservation check-back (1 s).</summary>
public sealed class ConsistencyFixture : SiloFixture<ConsistencyFixture.Configurator>
{
    public const string Name = "consistency";

    /// <summary>
    /// Deactivates every idle activation of the silo, as its collector does after the collection age, then reads whether
    /// the reservation ledger's check-back reminder is stored (asked again until it is not: a ledger busy at that moment
    /// is not collected).
    /// </summary>
    public async Task<bool> ReminderAfterDeactivationAsync(string grainType, string key)
    {
        await Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        return await HasCheckReminderAsync(grainType, key);
    }

    /// <summary>Whether a reservation ledger's check-back reminder is stored (the silo's reminder table, read without activating the ledger).</summary>
    public async Task<bool> HasCheckReminderAsync(string grainType, string key)
    {
        var table = ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredService<IReminderTable>();
        var rows = await table.ReadRows(GrainId.Create(grainType, key));
        return rows.Reminders.Any(r => r.ReminderName == "reservation-check");
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
            siloBuilder.Services.Configure<ReservationOptions>(o =>
            {
                o.CheckBackAfter = TimeSpan.FromSeconds(1);
                o.CheckPeriod = TimeSpan.FromMilliseconds(200);
            });
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.SettleAfter = TimeSpan.FromSeconds(2);
                o.Period = TimeSpan.FromMilliseconds(200);
            });
        }
    }
}

[CollectionDefinition(ConsistencyFixture.Name)]
public sealed class ConsistencyCollection : ICollectionFixture<ConsistencyFixture>;
