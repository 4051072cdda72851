using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// A pending retry is part of the subscriber's durable state: it survives the silo dying and resumes, with the
/// attempts already made, in a new cluster that reads the same storage. Progress that is written lazily (events
/// with nothing to do) is recovered from the order's log after such a crash.
/// </summary>
public sealed class RestartTests
{
    [Fact]
    public async Task A_pending_retry_survives_a_silo_crash_and_resumes_after_restart_applying_the_effect_once()
    {
        var id = OrderDriver.NewId("restart-");
        var user = $"user-{id}";
        decimal total;

        var first = await StartAsync<FailingPointsSilo>();
        try
        {
            var orders = new OrderDriver(first.GrainFactory);
            total = await orders.PlaceAsync(id, user, OrderDriver.Items(("sku-restart", 2, 21.5m)));
            await orders.PayAsync(id, total);
            var pending = await Eventually.Until(() => orders.Operations.InspectAsync(id),
                r => r.Subscribers.Single(s => s.Subscriber == "points").Attempts >= 2,
                OrderDriver.CatchUpTimeout, r => Describe(r, "points"));
            var points = pending.Subscribers.Single(s => s.Subscriber == "points");
            Assert.Equal(1, points.AppliedSequence);
            Assert.Contains(2L, points.BufferedSequences);
            Assert.NotNull(points.NextAttemptAt);
        }
        finally
        {
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        // The relay would resume the retry on its own at start-up (it does: Events_left_in_the_outbox...); kept away here
        // so the test sees the retry count the crash left.
        var second = await StartAsync<NoRelaySilo>();
        try
        {
            var orders = new OrderDriver(second.GrainFactory);
            var resumed = await orders.Operations.InspectAsync(id);
            var points = resumed.Subscribers.Single(s => s.Subscriber == "points");
            Assert.Equal(OrderStatus.Paid, resumed.Order.Status);
            Assert.True(points.Attempts >= 2, $"the new cluster lost the retry count: {Describe(resumed, "points")}");
            Assert.Equal(1, points.AppliedSequence);

            var done = await orders.WaitCaughtUpAsync(id);
            Assert.Equal(0, done.Subscribers.Single(s => s.Subscriber == "points").Attempts);
            await AssertPointsAwardedOnceAsync(second, user, total);
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public async Task Progress_over_events_with_nothing_to_do_is_written_lazily_and_a_crash_before_that_is_caught_up_from_the_order_log()
    {
        // No coupon and no activity: coupon and activity-gmv have nothing to do for any event of this order.
        var id = OrderDriver.NewId("lazy-");
        var user = $"user-{id}";
        var first = await StartAsync<HealthySilo>();
        decimal total;
        try
        {
            total = await PlacePayShipAsync(new OrderDriver(first.GrainFactory), id, user, 3, 7.25m);
        }
        finally
        {
            // The silo dies now: nothing it would still write while stopping reaches storage.
            var atCrash = SurvivingGrainStorage.Snapshot(key => key.Contains(id, StringComparison.Ordinal));
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
            SurvivingGrainStorage.Restore(atCrash, key => key.Contains(id, StringComparison.Ordinal));
        }

        var second = await StartAsync<NoGapRepairSilo>();
        try
        {
            // Stored progress: SMS wrote each text (paid, shipped) before its delivery was acknowledged. The others
            // wrote nothing: events with nothing to do, and applied events of subscribers with keyed effects (order-sync,
            // points, inventory), are not written on their own, and the crash took that progress with it.
            long Stored(string subscriber) => StoredAppliedSequence(second, subscriber, id);
            Assert.Equal((0, 3, 0, 0, 0, 0),
                (Stored("order-sync"), Stored("sms"), Stored("points"), Stored("inventory"), Stored("coupon"), Stored("activity-gmv")));

            // The order's stored mark says events 1 and 2 were published, so only event 3 comes again through the
            // stream, to the subscribers that handle shipped (HandlesOnly). For order-sync's inbox (nothing stored) it
            // skips ahead, and this silo's gap repair waits 10 minutes: only a new activation's catch-up reads events 1
            // and 2 from the order's log, and runs their handlers again — the replica's changes are already done.
            var orders = new OrderDriver(second.GrainFactory);
            var shippedTakers = new[] { "order-sync", "sms", "audit-trail" };
            var caughtUp = await Eventually.Until(() => orders.Operations.InspectAsync(id),
                r => r.Subscribers.Where(s => shippedTakers.Contains(s.Subscriber)).All(s => s.AppliedSequence == 3), OrderDriver.CatchUpTimeout, r => Describe(r, "order-sync"));
            Assert.True(caughtUp.Subscribers.Single(s => s.Subscriber == "order-sync").GapRepairs >= 1);

            // The others have nothing to do for shipped: the order's last event reaches them, and its new activation
            // reads the paid event from the order's log and runs its handler again — the award and the stock's commit
            // are already done downstream.
            await orders.ReceiveAsync(id);
            var done = await orders.WaitCaughtUpAsync(id);
            Assert.All(done.Subscribers, s => Assert.Equal(4, s.AppliedSequence));
            Assert.All(done.Subscribers.Where(s => s.Subscriber is "coupon" or "activity-gmv" or "points" or "inventory" or "order-sync"),
                s => Assert.True(s.GapRepairs >= 1, s.ToString()));
            await AssertPointsAwardedOnceAsync(second, user, total);
            var stock = await SiloGrains.Of(second).GetGrain<IStockGrain>($"sku-{id}").GetAsync();
            Assert.Equal((3L, 0L, OrderDriver.StockPerSku - 3), (stock.Sold, stock.Reserved, stock.Available));
            Assert.Equal(new ReplicaRow(true, OrderStatus.Received, total, 4, 0, 4), await SiloGrains.Of(second).GetGrain<IOrderReplicaGrain>(id).GetAsync());

            // The order's final event is always written: storage says 4 for everyone.
            Assert.All(done.Subscribers, s => Assert.Equal(4, Stored(s.Subscriber)));
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public async Task A_stored_unfinished_inbox_catches_up_from_the_order_log_when_it_is_activated_with_no_delivery()
    {
        var id = OrderDriver.NewId("behind-");
        var user = $"user-{id}";
        var subscriberRecords = (string key) => key.StartsWith($"{StorageNames.Subscribers}/", StringComparison.Ordinal) && key.Contains(id, StringComparison.Ordinal);
        var first = await StartAsync<HealthySilo>();
        decimal total;
        IReadOnlyDictionary<string, (byte[] Data, string ETag)> inboxesAtCrash;
        try
        {
            var orders = new OrderDriver(first.GrainFactory);
            var management = first.GrainFactory.GetGrain<IManagementGrain>(0);
            total = await orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", 2, 4.5m)));
            await orders.PayAsync(id, total);
            await orders.WaitCaughtUpAsync(id);
            // Coupon (no coupon here) never stores anything before the order ends: keep its inbox as it is now, absent.
            var neverStored = SurvivingGrainStorage.Snapshot(key => subscriberRecords(key) && key.Contains("/coupon/", StringComparison.Ordinal));
            // Points and inventory (keyed effects) write the payment's progress lazily: as they deactivate.
            await Eventually.Until(async () =>
                {
                    await management.ForceActivationCollection(TimeSpan.Zero);
                    return (StoredAppliedSequence(first, "points", id), StoredAppliedSequence(first, "inventory", id));
                },
                stored => stored == (2, 2), OrderDriver.CatchUpTimeout, stored => $"points and inventory stored {stored}");
            await orders.ShipAsync(id);
            await orders.WaitCaughtUpAsync(id);
            inboxesAtCrash = SurvivingGrainStorage.Snapshot(key => subscriberRecords(key) && !key.Contains("/coupon/", StringComparison.Ordinal))
                .Concat(neverStored).ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.Ordinal);

            // Nothing will be re-published after the crash: either the order stored its published mark (3) as it
            // deactivated, which it does while its relay shard still holds it, or the shard stored that it forgot the
            // order (then the order's next activation asks the shard and publishes nothing).
            var relayShard = first.GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(id)).GetGrainId();
            await Eventually.Until(async () =>
                {
                    await management.ForceActivationCollection(TimeSpan.Zero);
                    var mark = SurvivingGrainStorage.Peek<OrderFlow.Grains.Orders.OrderState>(SerializerOf(first), StorageNames.Orders, "order",
                        GrainId.Create("order", id))?.PublishedSequence ?? 0;
                    var held = SurvivingGrainStorage.Peek<OrderFlow.Grains.Orders.RelayShardState>(SerializerOf(first), StorageNames.Orders, "relay",
                        relayShard)?.Pending.ContainsKey(id) ?? true;
                    return (Mark: mark, RelayHolds: held);
                },
                stored => stored.Mark == 3 || !stored.RelayHolds, OrderDriver.CatchUpTimeout, stored => $"stored published mark and relay: {stored}");
        }
        finally
        {
            // The silo dies with the inboxes as they were before the deactivations flushed them.
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        SurvivingGrainStorage.Restore(inboxesAtCrash, subscriberRecords);
        var second = await StartAsync<NoGapRepairSilo>();
        try
        {
            // points and inventory stored event 2 (paid, their effect) but not 3 (shipped, nothing to do). No event
            // will be delivered and gap repair waits 10 minutes: only their catch-up on activation can move them. Asked
            // themselves (order show would report them at 3 anyway, shipped having nothing for them): they read the
            // order's log and step over shipped — no repair, nothing of theirs was missing.
            var orders = new OrderDriver(second.GrainFactory);
            foreach (var name in new[] { "points", "inventory" })
            {
                var inbox = SiloGrains.Of(second).GetGrain<IOrderSubscriberGrain>(GrainId.Create(name, id));
                var status = await Eventually.Until(() => inbox.GetStatusAsync(), s => s.AppliedSequence == 3, OrderDriver.CatchUpTimeout, s => s.ToString());
                Assert.Equal((0L, 1L), (status.GapRepairs, status.HandlerRuns));
            }

            // An inbox that never stored anything cannot tell it is behind; it waits for a delivery (or GapRepairAfter).
            var caughtUp = await orders.Operations.InspectAsync(id);
            Assert.Equal(0, caughtUp.Subscribers.Single(s => s.Subscriber == "coupon").AppliedSequence);

            await orders.ReceiveAsync(id);
            var done = await orders.WaitCaughtUpAsync(id);
            Assert.All(done.Subscribers, s => Assert.Equal(4, s.AppliedSequence));
            await AssertPointsAwardedOnceAsync(second, user, total);
            var stock = await SiloGrains.Of(second).GetGrain<IStockGrain>($"sku-{id}").GetAsync();
            Assert.Equal((2L, 0L, OrderDriver.StockPerSku - 2), (stock.Sold, stock.Reserved, stock.Available));
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public async Task A_parked_order_whose_dead_letter_entry_was_lost_is_listed_again_when_its_inbox_is_activated()
    {
        var id = OrderDriver.NewId("lost-letter-");
        var first = await StartAsync<ParkingPointsSilo>();
        try
        {
            var orders = new OrderDriver(first.GrainFactory);
            var total = await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 12m)));
            await orders.PayAsync(id, total);
            await Eventually.Until(() => orders.Operations.ListDeadLettersAsync("points"), letters => letters.Any(l => l.OrderId == id),
                OrderDriver.CatchUpTimeout, letters => $"{letters.Count} letters, none for {id}");

            // The index update is lost (the silo died before it landed, say): the inbox is parked, the list says nothing.
            await SiloGrains.Of(first).GetGrain<IDeadLetterIndexGrain>(DeadLetterShards.KeyFor("points", id)).ResolveAsync(id);
            Assert.DoesNotContain(await orders.Operations.ListDeadLettersAsync("points"), l => l.OrderId == id);
        }
        finally
        {
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        var second = await StartAsync<HealthySilo>();
        try
        {
            var orders = new OrderDriver(second.GrainFactory);
            var parked = await orders.Operations.InspectAsync(id);
            Assert.True(parked.Subscribers.Single(s => s.Subscriber == "points").Parked, Describe(parked, "points"));

            var letters = await Eventually.Until(() => orders.Operations.ListDeadLettersAsync("points"), l => l.Any(x => x.OrderId == id),
                OrderDriver.CatchUpTimeout, l => $"{l.Count} letters, none for {id}");
            var letter = letters.Single(l => l.OrderId == id);
            Assert.Equal((2L, "OrderPaid", 2), (letter.Sequence, letter.EventKind, letter.Attempts));
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public Task Events_left_in_the_outbox_by_a_crash_are_published_and_applied_with_no_client_touching_the_order() =>
        // Stands for a silo that dies between each write and its publish: every event is stored, none published.
        CrashThenSettleUntouchedAsync<NoPublishSilo>("relay-restart-", 2, 3m, (_, _) => Task.CompletedTask);

    [Fact]
    public Task Events_held_behind_a_gap_when_every_silo_dies_are_applied_after_restart_with_no_client_touching_the_order() =>
        // The transport loses event 2 (paid): events 3 and 4 reach the inboxes and wait behind the gap, whose repair timer
        // is in memory only (and waits GapRepairAfter = 30 s here).
        CrashThenSettleUntouchedAsync<DropSecondEventSilo>("gapkill-", 1, 5m, async (first, id) =>
        {
            var stored = first.GrainFactory.GetGrain<IStoredStateGrain>(0);
            await Eventually.Until(async () => (await stored.ReadOrdersAsync([id]))[0],
                o => o.Subscribers.Single(s => s.Subscriber == "order-sync").HeldSequences.Count == 2,
                OrderDriver.CatchUpTimeout, StoredProgress.Describe);
        });

    /// <summary>
    /// Runs one order's whole life on a <typeparamref name="TFirst"/> cluster, lets <paramref name="beforeCrash"/> check
    /// what it left, kills every silo, and starts a healthy cluster over the same storage in which nobody calls the
    /// order: the relay (woken at start-up) must take it to its end at every subscriber, effects applied once.
    /// </summary>
    private static async Task CrashThenSettleUntouchedAsync<TFirst>(string prefix, int quantity, decimal price, Func<TestCluster, string, Task> beforeCrash)
        where TFirst : ISiloConfigurator, new()
    {
        var id = OrderDriver.NewId(prefix);
        var first = await StartAsync<TFirst>();
        try
        {
            await new OrderDriver(first.GrainFactory).FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", quantity, price)));
            await beforeCrash(first, id);
        }
        finally
        {
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        var second = await StartAsync<HealthySilo>();
        try
        {
            var done = await StoredProgress.WaitFinishedAsync(second.GrainFactory, [id], OrderDriver.CatchUpTimeout);
            Assert.All(done[0].Subscribers, s => Assert.Equal(4L, s.AppliedSequence));
            await AssertPointsAwardedOnceAsync(second, $"user-{id}", quantity * price);
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public async Task The_stored_state_checker_repairs_nothing_an_unpublished_outbox_stays_visible_until_an_operator_path_activates_the_order()
    {
        var id = OrderDriver.NewId("unpublished-");
        var first = await StartAsync<NoPublishSilo>();
        try
        {
            // Every command is accepted (the event is durable in the outbox) while the transport refuses every publish.
            await new OrderDriver(first.GrainFactory).FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 3m)));
            // Operators see why: the order's last publish error and since when (order show prints both).
            var snapshot = await first.GrainFactory.GetGrain<IOrderGrain>(id).GetAsync();
            Assert.Contains("the transport is down", snapshot.PublishError);
            Assert.NotNull(snapshot.PublishFailingSince);
        }
        finally
        {
            // The silo dies with all four events in the outbox; its in-memory reminders die with it.
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        var second = await StartAsync<NoRelaySilo>();
        try
        {
            var stored = second.GrainFactory.GetGrain<IStoredStateGrain>(0);
            var before = (await stored.ReadOrdersAsync([id]))[0];
            Assert.Equal((OrderStatus.Received, 4L, 0L), (before.Status, before.LastSequence, before.PublishedSequence));
            Assert.All(before.Subscribers, s => Assert.Equal((DeliveryState.Behind, 4L), (before.Delivery(s), before.Missing(s))));

            // Reading again and again, for 2 s, repairs nothing: no order or inbox grain was activated by the reads.
            var after = await Eventually.Holds(async () => (await stored.ReadOrdersAsync([id]))[0],
                o => o.PublishedSequence == 0 && o.Subscribers.All(s => o.Delivery(s) == DeliveryState.Behind),
                TimeSpan.FromSeconds(2), StoredProgress.Describe);
            Assert.Equal(0L, after.PublishedSequence);
            Assert.All(after.Subscribers, s => Assert.Equal(DeliveryState.Behind, after.Delivery(s)));

            // The operators' path activates the order, whose activation publishes its outbox: then storage shows the end.
            await new OrderDriver(second.GrainFactory).Operations.InspectAsync(id);
            var done = await StoredProgress.WaitFinishedAsync(second.GrainFactory, [id], OrderDriver.CatchUpTimeout);
            Assert.All(done[0].Subscribers, s => Assert.Equal(4L, s.AppliedSequence));
        }
        finally
        {
            await StopAsync(second);
        }
    }

    private static Task StopAsync(TestCluster cluster) => SurvivingCluster.StopAsync(cluster);

    private static async Task<decimal> PlacePayShipAsync(OrderDriver orders, string id, string user, int quantity, decimal price)
    {
        var total = await orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", quantity, price)));
        await orders.PayAsync(id, total);
        await orders.ShipAsync(id);
        await orders.WaitCaughtUpAsync(id);
        return total;
    }

    private static async Task AssertPointsAwardedOnceAsync(TestCluster cluster, string user, decimal total)
    {
        var account = await SiloGrains.Of(cluster).GetGrain<IPointsAccountGrain>(user).GetAsync();
        Assert.Equal((decimal.Floor(total), 1L), (account.Balance, account.Entries));
    }

    private static Orleans.Serialization.Serializer SerializerOf(TestCluster cluster) =>
        ((InProcessSiloHandle)cluster.Primary!).SiloHost.Services.GetRequiredService<Orleans.Serialization.Serializer>();

    /// <summary>What storage (not an activation) says a subscriber applied for an order; 0 when it stored nothing.</summary>
    private static long StoredAppliedSequence(TestCluster cluster, string subscriber, string orderId) =>
        SurvivingGrainStorage.Peek<SubscriberState>(SerializerOf(cluster), StorageNames.Subscribers, subscriber, GrainId.Create(subscriber, orderId))?.AppliedSequence ?? 0;

    private static string Describe(OrderReport report, string subscriber) =>
        $"order {report.Order.OrderId}: {report.Subscribers.Single(s => s.Subscriber == subscriber)}";

    private static Task<TestCluster> StartAsync<TConfigurator>() where TConfigurator : ISiloConfigurator, new() =>
        SurvivingCluster.StartAsync<TConfigurator>();

    private static void ConfigureDurable(ISiloBuilder silo)
    {
        SurvivingCluster.Configure(silo);
        silo.Services.Configure<OrderMessagingOptions>(o => o.Retry = new RetryPolicy
        {
            MaxAttempts = 20,
            InitialBackoff = TimeSpan.FromMilliseconds(200),
            MaxBackoff = TimeSpan.FromSeconds(1),
        });
    }

    private sealed class FailingPointsSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<DrillOptions>(d => d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid" });
        }
    }

    private sealed class NoPublishSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Replace(ServiceDescriptor.Singleton<IOrderEventPublisher, RefusingPublisher>());
        }

        private sealed class RefusingPublisher : IOrderEventPublisher
        {
            public Task PublishAsync(Orleans.Streams.IAsyncStream<OrderEvent> stream, OrderEvent evt) =>
                throw new InvalidOperationException("the transport is down (test)");
        }
    }

    /// <summary>A transport that accepts every order's event 2 and never delivers it; the relay stays quiet.</summary>
    private sealed class DropSecondEventSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Replace(ServiceDescriptor.Singleton<IOrderEventPublisher, DroppingPublisher>());
            siloBuilder.Services.Configure<OrderRelayOptions>(o => o.Period = TimeSpan.FromHours(1));
        }

        private sealed class DroppingPublisher : IOrderEventPublisher
        {
            public Task PublishAsync(Orleans.Streams.IAsyncStream<OrderEvent> stream, OrderEvent evt) =>
                evt.Sequence == 2 ? Task.CompletedTask : stream.OnNextAsync(evt);
        }
    }

    /// <summary>The relay looks only after an hour: what storage shows is then exactly what the crash left.</summary>
    private sealed class NoRelaySilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<OrderRelayOptions>(o => o.Period = TimeSpan.FromHours(1));
        }
    }

    private sealed class HealthySilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => ConfigureDurable(siloBuilder);
    }

    private sealed class ParkingPointsSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<DrillOptions>(d => d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid" });
            siloBuilder.Services.Configure<OrderMessagingOptions>(o => o.SubscriberRetry["points"] = new RetryPolicy
            {
                MaxAttempts = 2,
                InitialBackoff = TimeSpan.FromMilliseconds(100),
                MaxBackoff = TimeSpan.FromMilliseconds(200),
            });
        }
    }

    /// <summary>
    /// Only an activation's own catch-up can move an inbox here: gap repair waits 10 minutes, and the relay looks only
    /// after an hour — a relay shard whose lazily written "settled" was lost with the crash would otherwise settle the
    /// order at start-up and bring every inbox to the end, which is what these tests must see happen without it.
    /// </summary>
    private sealed class NoGapRepairSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<OrderMessagingOptions>(o => o.GapRepairAfter = TimeSpan.FromMinutes(10));
            siloBuilder.Services.Configure<OrderRelayOptions>(o => o.Period = TimeSpan.FromHours(1));
        }
    }
}
