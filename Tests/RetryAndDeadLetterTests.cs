using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class RetryAndDeadLetterTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    private T Grain<T>(string key) where T : IGrainWithStringKey => fixture.Grains.GetGrain<T>(key);

    [Fact]
    public async Task With_20_percent_transient_failures_at_two_subscribers_every_effect_lands_exactly_once()
    {
        // coupon and activity-gmv fail one attempt in five for flaky- orders (see PipelineFixture).
        var run = OrderDriver.NewId("flaky-");
        var plans = Enumerable.Range(0, 1000).Select(i => (Id: $"{run}-{i}", Coupon: $"coupon-{run}-{i}", Activity: $"activity-{run}-{i % 10}",
            Items: OrderDriver.Items(($"sku-{run}-{i % 13}", 1 + i % 3, 0.01m + i % 97)))).ToArray();
        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (p, _) =>
            await _orders.FullLifecycleAsync(p.Id, $"user-{p.Id}", p.Items, p.Coupon, p.Activity));

        var reports = await _orders.WaitCaughtUpAsync(plans.Select(p => p.Id).ToArray());

        var byName = reports.SelectMany(r => r.Subscribers).GroupBy(s => s.Subscriber).ToDictionary(g => g.Key, g => g.ToArray());
        Assert.True(byName["coupon"].Sum(s => s.FailedAttempts) > 0, "the coupon drill never fired");
        Assert.True(byName["activity-gmv"].Sum(s => s.FailedAttempts) > 0, "the activity-gmv drill never fired");
        foreach (var (name, statuses) in byName.Where(kv => kv.Key is not ("coupon" or "activity-gmv")))
        {
            Assert.True(statuses.All(s => s.HandlerRuns == Handed.Runs(name, Handed.FullLifecycle) && s.FailedAttempts == 0), $"{name} ran a handler more than once per event");
        }

        Assert.All(byName["coupon"].Concat(byName["activity-gmv"]), s => Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle) + s.FailedAttempts, s.HandlerRuns));
        Assert.All(reports.SelectMany(r => r.Subscribers), s => Assert.False(s.Parked, $"{s.Subscriber} parked {s.OrderId}"));

        var coupons = await Task.WhenAll(plans.Select(p => Grain<ICouponGrain>(p.Coupon).GetAsync()));
        Assert.All(coupons, c => Assert.True((c.Redeemed, c.Reserved) == (1L, 0L), $"coupon {c.CouponId}: {c}"));
        foreach (var activity in plans.GroupBy(p => p.Activity))
        {
            var expected = activity.Sum(p => p.Items.Sum(l => l.Quantity * l.UnitPrice));
            Assert.Equal(expected, (await Grain<IActivityGmvGrain>(activity.Key).GetAsync()).Balance);
        }
    }

    [Fact]
    public async Task A_poisoned_order_parks_in_order_without_delaying_others_and_can_be_retried_or_skipped()
    {
        // points always fails OrderPaid for poison- orders (see PipelineFixture).
        var retried = OrderDriver.NewId("poison-retry-");
        var skipped = OrderDriver.NewId("poison-skip-");
        var totals = new Dictionary<string, decimal>();
        foreach (var id in new[] { retried, skipped })
        {
            totals[id] = await _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(("sku-poison", 1, 42m)));
        }

        // 500 other orders flow through every subscriber, points included, while the poisoned ones wait.
        var bystanders = Enumerable.Range(0, 500).Select(i => OrderDriver.NewId($"bystander-{i}-")).ToArray();
        await Parallel.ForEachAsync(bystanders, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (id, _) =>
            await _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(("sku-bystander", 1, 3m))));
        await _orders.WaitCaughtUpAsync(bystanders);

        foreach (var id in new[] { retried, skipped })
        {
            var report = await _orders.WaitCaughtUpAsync(id, allowParked: true);
            var points = report.Subscribers.Single(s => s.Subscriber == "points");
            Assert.True(points.Parked);
            Assert.Equal(1, points.AppliedSequence);
            // Shipped (3) has nothing for points: the dispatcher does not hand it, so it is held only if the relay handed
            // points the order's log.
            Assert.Equal([2L, 4], points.BufferedSequences.Where(seq => seq != 3));
            Assert.Equal(PipelineFixture.MaxAttempts, points.Attempts);
            Assert.All(report.Subscribers.Where(s => s.Subscriber != "points"), s => Assert.Equal(4, s.AppliedSequence));
        }

        var letters = await _orders.Operations.ListDeadLettersAsync("points");
        Assert.Contains(letters, l => l.OrderId == retried && l.Sequence == 2 && l.EventKind == "OrderPaid" && l.Attempts == PipelineFixture.MaxAttempts);
        var parkedAtPoints = (await _orders.Operations.CountDeadLettersAsync())["points"];
        Assert.True(parkedAtPoints >= 2);

        // The lag an operator pages on shows them: settled for the relay (they wait for an operator, not for delivery),
        // so not undelivered, but parked at points and nowhere else.
        foreach (var id in new[] { retried, skipped })
        {
            await Eventually.Until(() => _orders.Operations.InspectAsync(id), r => r.Relay is null, OrderDriver.CatchUpTimeout, r => $"relay: {r.Relay}");
        }

        var lag = await _orders.Operations.GetLagAsync();
        Assert.Equal(parkedAtPoints, lag.Single(row => row.Subscriber == "points").Parked);
        Assert.All(lag.Where(row => row.Subscriber is "outbox" or "*"), row => Assert.Equal(0, row.Parked));

        // Skip while the fault is still there: event 2 is recorded as skipped, 3 and 4 follow in order.
        var wrong = await _orders.Operations.SkipAsync("points", skipped, 3);
        Assert.Equal(DeadLetterActionOutcome.WrongSequence, wrong.Outcome);
        var skip = await _orders.Operations.SkipAsync("points", skipped, 2);
        Assert.Equal(DeadLetterActionOutcome.Skipped, skip.Outcome);
        var afterSkip = (await _orders.WaitCaughtUpAsync(skipped)).Subscribers.Single(s => s.Subscriber == "points");
        Assert.Equal([2L], afterSkip.SkippedSequences);
        Assert.Equal(0L, (await Grain<IPointsAccountGrain>($"user-{skipped}").GetAsync()).Entries);
        Assert.Null(await Grain<IPointsAccountGrain>($"user-{skipped}").GetEntryAsync($"{skipped}:award"));

        // Remove the fault, then retry: the parked tail is applied from event 2, in order.
        fixture.Drills.Clear("points");
        try
        {
            var retry = await _orders.Operations.RetryAsync("points", retried);
            Assert.Equal(DeadLetterActionOutcome.Resumed, retry.Outcome);
            var afterRetry = (await _orders.WaitCaughtUpAsync(retried)).Subscribers.Single(s => s.Subscriber == "points");
            Assert.False(afterRetry.Parked);
            Assert.Empty(afterRetry.SkippedSequences);
            Assert.Equal(decimal.Floor(totals[retried]), (await Grain<IPointsAccountGrain>($"user-{retried}").GetAsync()).Balance);
        }
        finally
        {
            fixture.Drills.Set("points", new SubscriberDrill { FailEventKind = "OrderPaid", OrderIdPrefix = "poison-" });
        }

        var remaining = await _orders.Operations.ListDeadLettersAsync("points");
        Assert.DoesNotContain(remaining, l => l.OrderId == retried || l.OrderId == skipped);
        Assert.Equal(parkedAtPoints - 2, (await _orders.Operations.GetLagAsync()).Single(row => row.Subscriber == "points").Parked);
        Assert.Equal(DeadLetterActionOutcome.NotParked, (await _orders.Operations.RetryAsync("points", retried)).Outcome);
        Assert.Equal(DeadLetterActionOutcome.UnknownSubscriber, (await _orders.Operations.RetryAsync("no-such", retried)).Outcome);
    }

    [Fact]
    public async Task A_cancelled_order_whose_payment_an_operator_skipped_takes_back_no_points_it_never_awarded()
    {
        // points always fails OrderPaid for poison- orders (see PipelineFixture): it parks, and the operator skips it.
        var id = OrderDriver.NewId("poison-revoke-");
        var total = await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(("sku-poison", 1, 42m)));
        await _orders.PayAsync(id, total);
        var parked = await Eventually.Until(() => _orders.Operations.InspectAsync(id), r => r.Subscribers.Single(s => s.Subscriber == "points").Parked,
            OrderDriver.CatchUpTimeout, r => r.ToString());
        Assert.Equal(1, parked.Subscribers.Single(s => s.Subscriber == "points").AppliedSequence);
        Assert.Equal(DeadLetterActionOutcome.Skipped, (await _orders.Operations.SkipAsync("points", id, 2)).Outcome);

        await _orders.CancelAsync(id);
        var report = await _orders.WaitCaughtUpAsync(id);
        Assert.Equal(3, report.Subscribers.Single(s => s.Subscriber == "points").AppliedSequence);
        var account = Grain<IPointsAccountGrain>($"user-{id}");
        Assert.Null(await account.GetEntryAsync($"{id}:award"));
        Assert.Null(await account.GetEntryAsync($"{id}:revoke"));
        Assert.Equal((0m, 0L), ((await account.GetAsync()).Balance, (await account.GetAsync()).Entries));
        // The audit agrees: no take-back is owed for a payment that gave nothing (it notes the skip).
        var audit = await fixture.Grains.GetGrain<IAuditGrain>(0).AuditOrdersAsync([id]);
        Assert.True(audit.Discrepancies.Count == 0, string.Join("; ", audit.Discrepancies.Select(f => f.ToString())));
        Assert.Contains(audit.Notes, n => n.ToString().Contains("skipped", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deadletters_list_drops_an_entry_whose_inbox_is_not_parked_but_keeps_a_newer_parking()
    {
        // An index entry for an order whose inbox is not parked: a resolve that never reached the index.
        var id = OrderDriver.NewId("stale-");
        await _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 5m)));
        await _orders.WaitCaughtUpAsync(id);
        var index = Grain<IDeadLetterIndexGrain>(DeadLetterShards.KeyFor("points", id));
        var at = DateTimeOffset.UtcNow;
        var stale = new DeadLetter("points", id, 2, "OrderPaid", "a resolve that was lost", 10, at, at);
        await index.ParkAsync(stale);

        var listed = await _orders.Operations.ListDeadLettersAsync("points");

        Assert.DoesNotContain(listed, l => l.OrderId == id);
        Assert.DoesNotContain(await index.ListAsync(), l => l.OrderId == id);

        // A reader holding an older entry never erases a newer one for the same order.
        var newer = stale with { Attempts = 11, LastFailureAt = at.AddSeconds(1) };
        await index.ParkAsync(newer);
        Assert.False(await index.ResolveStaleAsync(stale));
        Assert.Contains(newer, await index.ListAsync());
        Assert.True(await index.ResolveStaleAsync(newer));
    }

    [Fact]
    public async Task A_lost_delivery_is_repaired_from_the_order_event_log()
    {
        // The chaos transport accepts event 2 of drop- orders and never delivers it.
        var id = OrderDriver.NewId("drop-");
        var user = $"user-{id}";
        var total = await _orders.FullLifecycleAsync(id, user, OrderDriver.Items(($"sku-{id}", 1, 15m)), $"coupon-{id}");

        var report = await _orders.WaitCaughtUpAsync(id);

        Assert.All(report.Subscribers, s =>
        {
            Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns);
            Assert.True(s.GapRepairs >= 1, $"{s.Subscriber} reached 4 without a gap repair");
        });
        Assert.Equal(decimal.Floor(total), (await Grain<IPointsAccountGrain>(user).GetAsync()).Balance);
        Assert.Equal(new ReplicaRow(true, OrderStatus.Received, 15m, 4, 0, 4), await Grain<IOrderReplicaGrain>(id).GetAsync());
    }

    [Fact]
    public async Task Random_permutations_with_duplicates_at_scale_apply_every_event_once_in_order()
    {
        var ids = Enumerable.Range(0, 300).Select(i => OrderDriver.NewId($"perm-{i}-")).ToArray();
        var totals = new decimal[ids.Length];
        await Parallel.ForEachAsync(Enumerable.Range(0, ids.Length), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, _) =>
            totals[i] = await _orders.FullLifecycleAsync(ids[i], $"user-{ids[i]}", OrderDriver.Items(($"sku-{ids[i]}", 1 + i % 5, 2.5m)), $"coupon-{ids[i]}", $"activity-{ids[i]}"));

        var reports = await _orders.WaitCaughtUpAsync(ids);

        Assert.True(reports.Sum(r => r.Subscribers.Sum(s => s.DuplicatesIgnored)) > 0, "the transport sent no duplicates");
        for (var i = 0; i < ids.Length; i++)
        {
            var row = await Grain<IOrderReplicaGrain>(ids[i]).GetAsync();
            Assert.True(row is { Violations: 0, Version: 4, Changes: 4 }, $"replica of {ids[i]}: {row}");
            Assert.Equal(decimal.Floor(totals[i]), (await Grain<IPointsAccountGrain>($"user-{ids[i]}").GetAsync()).Balance);
            Assert.Equal(totals[i], (await Grain<IActivityGmvGrain>($"activity-{ids[i]}").GetAsync()).Balance);
            var stock = await Grain<IStockGrain>($"sku-{ids[i]}").GetAsync();
            Assert.True((stock.Sold, stock.Reserved, stock.Available) == (1 + i % 5, 0, OrderDriver.StockPerSku - (1 + i % 5)), $"stock of {ids[i]}: {stock}");
        }

        Assert.All(reports.SelectMany(r => r.Subscribers), s => Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns));
    }
}
