using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// Storage that is down for longer than a handler's retry schedule: a transient infrastructure failure, retried on its
/// own clock, never a reason to park. Verified from storage only (<see cref="StoredProgress"/>, <see cref="IStoredStateGrain"/>).
/// </summary>
[Collection(StorageOutageCollection.Name)]
public sealed class TransientOutageTests(StorageOutageFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly OrderDriver _orders = new(fixture.Grains);

    private IStoredStateGrain Stored => fixture.Grains.GetGrain<IStoredStateGrain>(0);

    [Fact]
    public async Task A_points_ledger_outage_far_longer_than_the_retry_schedule_parks_nothing_and_awards_every_point_once()
    {
        var run = OrderDriver.NewId("ledger-outage-");
        var ids = Enumerable.Range(0, 8).Select(i => $"{run}-{i}").ToArray();

        // 3 s of failing writes to these orders' points ledgers: sixty times the 3 attempts x 50 ms the handler gets.
        using var outage = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Ledgers, Operations = StorageOperations.Write, GrainType = "ledger-points", KeyPrefix = $"user-{run}-",
            For = TimeSpan.FromSeconds(3),
        });
        var totals = await Task.WhenAll(ids.Select((id, i) => _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1 + i % 3, 7.5m)))));

        // While storage is down the head event waits on the transient schedule, its attempts untouched. This is how the
        // ledger's failed write reaches the subscriber through the grain call: Orleans' storage bridge wraps the
        // provider's error in an OrleansException, and the call carries both.
        var waiting = await Eventually.Until(() => _orders.Operations.InspectAsync(ids[0]),
            report => report.Subscribers.Single(s => s.Subscriber == "points").TransientSince is not null, Timeout,
            report => report.Subscribers.Single(s => s.Subscriber == "points").ToString());
        var pointsWaiting = waiting.Subscribers.Single(s => s.Subscriber == "points");
        Assert.True(pointsWaiting is { Attempts: 0, Parked: false, LastError: null }, pointsWaiting.ToString());
        Assert.StartsWith("OrleansException > StorageFaultException: Injected storage fault: Write of ledger-points/", pointsWaiting.LastTransientError);

        var stored = await StoredProgress.WaitFinishedAsync(fixture.Grains, ids, Timeout);

        Assert.True(outage.Hits > 0, "the outage never met a points ledger write");
        foreach (var order in stored)
        {
            var points = order.Subscribers.Single(s => s.Subscriber == "points");
            Assert.True(points is { Parked: false, FailedAttempts: 0, TransientFailures: > 0 }, $"points of {order.OrderId}: {points}");
        }

        var ledgers = await Stored.ReadLedgersAsync(LedgerKind.Points, ids.Select(id => $"user-{id}").ToArray());
        for (var i = 0; i < ids.Length; i++)
        {
            Assert.True((ledgers[i].Exists, ledgers[i].Balance, ledgers[i].Entries) == (true, decimal.Floor(totals[i]), 1),
                $"points ledger of {ids[i]}: {ledgers[i]}, expected {decimal.Floor(totals[i])} in one entry");
        }

        await AuditCheck.AssertCleanAsync(fixture.Grains, ids);
    }

    [Fact]
    public async Task A_storage_outage_under_load_loses_nothing_and_doubles_nothing()
    {
        var run = OrderDriver.NewId("storage-outage-");
        var plans = Enumerable.Range(0, 50).Select(i => (Id: $"{run}-{i}", Quantity: 1 + i % 4, Price: 3.25m + i)).ToArray();
        var ids = plans.Select(p => p.Id).ToArray();
        Task<decimal> Flow((string Id, int Quantity, decimal Price) p) =>
            _orders.FullLifecycleAsync(p.Id, $"user-{p.Id}", OrderDriver.Items(($"sku-{p.Id}", p.Quantity, p.Price)), $"coupon-{p.Id}", $"activity-{p.Id}");

        var retriedCommands = 0;

        // Placing reserves stock and a coupon use, and paying claims the payment id: both write to the ledgers' storage,
        // so while it is down those commands fail (retriable, nothing kept) and the client sends them again, same
        // command ids, until they are accepted. The stock and coupons exist before the outage.
        async Task<decimal> FlowRetryingAsync((string Id, int Quantity, decimal Price) p)
        {
            var items = OrderDriver.Items(($"sku-{p.Id}", p.Quantity, p.Price));
            var order = _orders.Order(p.Id);
            var total = p.Quantity * p.Price;
            var steps = new Func<Task<CommandResult>>[]
            {
                () => order.PlaceAsync(new PlaceOrder($"{p.Id}-place", $"user-{p.Id}", items, $"coupon-{p.Id}", $"activity-{p.Id}")),
                () => order.PayAsync(new PayOrder($"{p.Id}-pay", $"pay-{p.Id}", total)),
                () => order.ShipAsync(new ShipOrder($"{p.Id}-ship")),
                () => order.ConfirmReceiptAsync(new ConfirmReceipt($"{p.Id}-receive")),
            };
            foreach (var step in steps)
            {
                var deadline = DateTimeOffset.UtcNow + Timeout;
                while (true)
                {
                    try
                    {
                        (await step()).EnsureAccepted();
                        break;
                    }
                    catch (Exception ex) when (ex is not OrderRejectedException && DateTimeOffset.UtcNow < deadline)
                    {
                        Interlocked.Increment(ref retriedCommands);
                        // A caller's pause before it sends the same command again (what is under test is that the
                        // retry is safe), not a wait for a condition; bounded by the deadline above.
                        await Task.Delay(100);
                    }
                }
            }

            return total;
        }

        await Task.WhenAll(plans.Skip(10).Select(p => _orders.EnsureInventoryAsync(OrderDriver.Items(($"sku-{p.Id}", p.Quantity, p.Price)), $"coupon-{p.Id}")));

        // A fifth of the orders are through before the outage; the rest flow while every storage but the orders' fails.
        // The order's own storage stays up, so every command is accepted and every event is owed to the subscribers.
        // The inboxes come back first: while their writes fail no failed attempt can be stored, so only a ledger outage
        // that outlasts them tests whether a storage error is spent as a handler attempt.
        var before = await Task.WhenAll(plans.Take(10).Select(Flow));
        var outages = new[] { (StorageNames.Subscribers, 1.5), (StorageNames.Ledgers, 3.0), (StorageNames.PubSub, 1.5) }
            .Select(o => fixture.Faults.Fail(new StorageFault { StorageName = o.Item1, Operations = StorageOperations.Write, For = TimeSpan.FromSeconds(o.Item2) }))
            .ToArray();
        try
        {
            var during = await Task.WhenAll(plans.Skip(10).Select(FlowRetryingAsync));
            var totals = before.Concat(during).ToArray();
            await Eventually.Until(() => Task.FromResult(fixture.Faults.Active.Count), n => n == 0, Timeout, n => $"{n} faults still active");
            Assert.True(outages[0].Hits > 0 && outages[1].Hits > 0, $"the outage missed: subscribers {outages[0].Hits} hits, ledgers {outages[1].Hits} hits ({retriedCommands} commands sent again)");

            var stored = await StoredProgress.WaitFinishedAsync(fixture.Grains, ids, Timeout);
            // No handler failed in this test: every failure was the outage, and none was spent as an attempt.
            Assert.All(stored, order => Assert.All(order.Subscribers, s => Assert.True(s is { Parked: false, FailedAttempts: 0 }, $"{s} of {order.OrderId}")));
            Assert.True(stored.Sum(order => order.Subscribers.Sum(s => s.TransientFailures)) > 0, "no handler met the outage");

            var expected = new (LedgerKind Kind, Func<int, string> Key, Func<int, decimal> Balance)[]
            {
                (LedgerKind.Points, i => $"user-{ids[i]}", i => decimal.Floor(totals[i])),
                (LedgerKind.Gmv, i => $"activity-{ids[i]}", i => totals[i]),
            };
            foreach (var (kind, key, balance) in expected)
            {
                var ledgers = await Stored.ReadLedgersAsync(kind, ids.Select((_, i) => key(i)).ToArray());
                var wrong = ledgers.Select((ledger, i) => (ledger, i)).Where(x => (x.ledger.Exists, x.ledger.Balance, x.ledger.Entries) != (true, balance(x.i), 1)).ToArray();
                Assert.True(wrong.Length == 0,
                    $"{wrong.Length} {kind} ledgers wrong, e.g. " + string.Join("; ", wrong.Take(3).Select(x => $"{x.ledger} expected {balance(x.i)} in one entry")));
            }

            // Stock and coupons: each order's one reservation was committed once by its payment (sold / redeemed), and a
            // placement that failed during the outage left nothing held (Reserved 0 once the order is paid).
            var reservations = new (LedgerKind Kind, Func<int, string> Key, Func<int, long> Committed, long Initial)[]
            {
                (LedgerKind.Stock, i => $"sku-{ids[i]}", i => plans[i].Quantity, OrderDriver.StockPerSku),
                (LedgerKind.Coupon, i => $"coupon-{ids[i]}", _ => 1, OrderDriver.UsesPerCoupon),
            };
            foreach (var (kind, key, committed, initial) in reservations)
            {
                var ledgers = await Eventually.Until(() => Stored.ReadLedgersAsync(kind, ids.Select((_, i) => key(i)).ToArray()),
                    all => all.All(l => l.Pending == 0), Timeout, all => $"{all.Count(l => l.Pending > 0)} {kind} ledgers with unconfirmed reservations");
                var wrong = ledgers.Select((ledger, i) => (ledger, i))
                    .Where(x => (x.ledger.Exists, x.ledger.Committed, x.ledger.Reserved, x.ledger.Available, x.ledger.Entries) !=
                                (true, committed(x.i), 0, initial - committed(x.i), 1))
                    .ToArray();
                Assert.True(wrong.Length == 0,
                    $"{wrong.Length} {kind} ledgers wrong, e.g. " + string.Join("; ", wrong.Take(3).Select(x => $"{x.ledger} expected {committed(x.i)} committed in one entry")));
            }

            var replicas = await Stored.ReadReplicasAsync(ids);
            Assert.All(replicas, row => Assert.True(row is { Violations: 0, Version: 4, Changes: 4 }, $"replica {row}"));
            await AuditCheck.AssertCleanAsync(fixture.Grains, ids);
        }
        finally
        {
            foreach (var outage in outages)
            {
                outage.Dispose();
            }
        }
    }
}
