using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Client;
using OrderFlow.Contracts;
using OrderFlow.Grains.Backfill;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// A subscriber added to a running system: a first cluster without <c>audit-trail</c> places orders, then a cluster
/// with it backfills them from each order's own log. Storage outlives the clusters (<see cref="SurvivingGrainStorage"/>,
/// a scope per test, so the catalog holds only the test's own orders); everything is verified from stored state.
/// </summary>
public sealed class BackfillTests
{
    private const string Audit = "audit-trail";

    [Fact]
    public async Task A_subscriber_added_later_is_backfilled_from_each_order_log_every_event_once_and_in_order()
    {
        var scope = NewScope();
        var received = Ids("bf-received-", 4);
        var cancelled = Ids("bf-cancelled-", 4);
        var open = Ids("bf-open-", 6);
        var finished = received.Concat(cancelled).ToArray();
        var all = finished.Concat(open).ToArray();

        var first = await StartAsync<WithoutAuditTrailSilo>(scope);
        try
        {
            var orders = new OrderDriver(first.GrainFactory);
            Assert.DoesNotContain(Audit, await orders.Operations.GetSubscribersAsync());
            await PlaceAsync(orders, received, cancelled, open);
            await StoredProgress.WaitFinishedAsync(first.GrainFactory, finished, OrderDriver.CatchUpTimeout);
            // Every order settled and the relay stored that it holds nothing: the next cluster's relay asks no subscriber anything.
            await WaitRelayDrainedAsync(first, scope);
        }
        finally
        {
            await StopAsync(first);
        }

        var second = await StartAsync<SlowBackfillSilo>(scope);
        try
        {
            var stored = second.Client.GetGrain<IStoredStateGrain>(0);
            var ops = second.Client.GetGrain<IOperationsGrain>(0);
            var before = await stored.ReadOrdersAsync(all);
            Assert.All(before, order => Assert.False(AuditOf(order).Exists, $"audit-trail has a stored inbox for {order.OrderId} before any backfill"));
            // The issue, as storage says it: the six subscribers took every finished order to its end; for the new one,
            // every event of those orders is missing.
            Assert.All(before.Where(o => o.IsFinal), order =>
            {
                Assert.All(order.Subscribers.Where(s => s.Subscriber != Audit), s => Assert.Equal(DeliveryState.Finished, order.Delivery(s)));
                Assert.Equal((DeliveryState.Behind, order.LastSequence), (order.Delivery(AuditOf(order)), order.Missing(AuditOf(order))));
            });

            // A placement whose write failed leaves a catalog entry that names no order.
            var ghost = OrderDriver.NewId("bf-ghost-");
            await SiloGrains.Of(second).GetGrain<IOrderCatalogGrain>(IOrderRelayGrain.ShardOf(ghost)).AddAsync(ghost, DateTimeOffset.UtcNow);

            // The default leaves finished orders alone.
            var started = await ops.StartBackfillAsync(Audit, null, includeFinished: false);
            Assert.Equal(BackfillOutcome.Started, started.Outcome);
            Assert.Equal(all.Length + 1L, started.Progress!.Total);
            // Fifteen entries at two per 300 ms take seconds: the job is still running for these two.
            var again = await ops.StartBackfillAsync(Audit, null, includeFinished: false);
            var other = await ops.StartBackfillAsync(Audit, null, includeFinished: true);
            Assert.Equal((BackfillOutcome.Attached, started.Progress.Run), (again.Outcome, again.Progress!.Run));
            Assert.Equal((BackfillOutcome.Refused, started.Progress.Run), (other.Outcome, other.Progress!.Run));
            Assert.Contains("is running", other.Message);

            var openOnly = await WaitEndedAsync(ops);
            Assert.Equal((BackfillState.Done, all.Length + 1L, all.Length + 1L), (openOnly.State, openOnly.Processed, openOnly.Total));
            Assert.Equal(((long)finished.Length, (long)open.Length, 1L), (openOnly.SkippedFinished, openOnly.NeededWork, openOnly.Missing));
            var afterDefault = await stored.ReadOrdersAsync(all);
            Assert.All(afterDefault.Where(o => o.IsFinal), order => Assert.False(AuditOf(order).Exists, $"finished order {order.OrderId} was backfilled without --include-finished"));
            AssertAppliedOnceInOrder(afterDefault.Where(o => !o.IsFinal));

            // The operator's command: it starts the job with finished orders and watches it to the end.
            var (exitCode, text, errors) = await RunCliAsync(second, "subscribers", "backfill", Audit, "--include-finished");
            Assert.True(exitCode == 0, $"exit code {exitCode}: {text} {errors}");
            Assert.Contains($"backfill 2 of {Audit} done: {all.Length + 1} orders, {finished.Length} needed work", text);
            Assert.Matches(@"audit-trail \[#{20}\] 100 %", text);

            var after = await stored.ReadOrdersAsync(all);
            AssertAppliedOnceInOrder(after);
            Assert.All(after.Where(o => o.IsFinal), order => Assert.Equal(DeliveryState.Finished, order.Delivery(AuditOf(order))));
            // The six subscribers that were there all along still stand where they stood.
            Assert.All(after.Where(o => o.IsFinal), order => Assert.True(StoredProgress.IsFinished(order), StoredProgress.Describe(order)));

            Assert.Equal(BackfillOutcome.UnknownSubscriber, (await ops.StartBackfillAsync("nope", null, false)).Outcome);
            Assert.Equal(BackfillOutcome.UnknownSubscriber, (await ops.GetBackfillAsync("nope")).Outcome);
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Fact]
    public async Task A_backfill_cut_by_a_crash_resumes_by_itself_in_a_new_cluster_and_applies_nothing_twice()
    {
        var scope = NewScope();
        var received = Ids("bf-crash-received-", 10);
        var cancelled = Ids("bf-crash-cancelled-", 4);
        var open = Ids("bf-crash-open-", 6);
        var all = received.Concat(cancelled).Concat(open).ToArray();

        var first = await StartAsync<WithoutAuditTrailSilo>(scope);
        try
        {
            await PlaceAsync(new OrderDriver(first.GrainFactory), received, cancelled, open);
            await StoredProgress.WaitFinishedAsync(first.GrainFactory, [.. received, .. cancelled], OrderDriver.CatchUpTimeout);
            await WaitRelayDrainedAsync(first, scope);
        }
        finally
        {
            await StopAsync(first);
        }

        // Two orders a batch, one batch every 300 ms: the kill finds the job part-way.
        var second = await StartAsync<SlowBackfillSilo>(scope);
        try
        {
            var started = await second.Client.GetGrain<IOperationsGrain>(0).StartBackfillAsync(Audit, null, includeFinished: true);
            Assert.Equal(BackfillOutcome.Started, started.Outcome);
            await Eventually.Until(() => Task.FromResult(StoredJob(second, scope)), job => job?.Processed >= 6, OrderDriver.CatchUpTimeout,
                job => $"stored job of {Audit}: {job?.Processed} processed");
        }
        finally
        {
            await second.KillSiloAsync(second.Primary!);
            await second.DisposeAsync();
        }

        var third = await StartAsync<SlowBackfillSilo>(scope);
        try
        {
            var atStart = StoredJob(third, scope)!;
            Assert.True(atStart.State == BackfillState.Running && atStart.Processed < all.Length,
                $"the crash should leave the job running part-way: {atStart.State}, {atStart.Processed} of {all.Length}");

            // Nobody calls the job: the silo's start-up wakes it (reminders were in memory and died with the cluster).
            var done = await Eventually.Until(() => Task.FromResult(StoredJob(third, scope)!), job => job.State != BackfillState.Running,
                OrderDriver.CatchUpTimeout, job => $"stored job of {Audit}: {job.State}, {job.Processed} of {job.Total}, last error {job.LastError}");
            Assert.Equal((BackfillState.Done, (long)all.Length, (long)all.Length), (done.State, done.Processed, done.Total));
            Assert.Equal((0L, 0L, 0L, 0L), (done.Missing, done.SkippedFinished, done.Behind, done.Parked));

            var after = await third.Client.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync(all);
            AssertAppliedOnceInOrder(after);
            Assert.All(after.Where(o => o.IsFinal), order => Assert.Equal(DeliveryState.Finished, order.Delivery(AuditOf(order))));
        }
        finally
        {
            await StopAsync(third);
        }
    }

    [Fact]
    public async Task The_catalog_keeps_segments_of_at_most_SegmentSize_orders_sorted_by_creation_time_and_each_order_once()
    {
        var scope = NewScope();
        var cluster = await StartAsync<WithAuditTrailSilo>(scope);
        try
        {
            var grains = SiloGrains.Of(cluster);
            const int Shard = 7;
            var head = grains.GetGrain<IOrderCatalogGrain>(Shard);
            var t0 = new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.Zero);
            // Arrival order is not creation order (silos' clocks differ); each segment sorts what it holds.
            var minutes = new[] { 5, 1, 3, 2, 7, 4, 6 };
            foreach (var m in minutes)
            {
                await head.AddAsync($"cat-{m}", t0.AddMinutes(m));
            }

            // A retried placement whose order is in the open segment adds nothing.
            await head.AddAsync("cat-6", t0.AddMinutes(6));

            var segments = await head.GetSegmentsAsync();
            Assert.Equal([(0, 3, false), (1, 3, false), (2, 1, true)], segments.Select(s => (s.Number, s.Count, s.Open)));
            Assert.Equal((t0.AddMinutes(1), t0.AddMinutes(5)), (segments[0].FirstCreatedAt, segments[0].LastCreatedAt));
            var segment = (int number) => grains.GetGrain<IOrderCatalogSegmentGrain>(IOrderCatalogSegmentGrain.KeyOf(Shard, number));
            Assert.Equal(["cat-1", "cat-3", "cat-5"], (await segment(0).ReadAsync(null, null, 10)).Select(e => e.OrderId));
            Assert.Equal(["cat-2", "cat-4", "cat-7"], (await segment(1).ReadAsync(null, null, 10)).Select(e => e.OrderId));
            Assert.Equal(["cat-6"], (await segment(2).ReadAsync(null, null, 10)).Select(e => e.OrderId));

            // Paging by key, and from a time.
            var firstTwo = await segment(1).ReadAsync(null, null, 2);
            Assert.Equal(["cat-7"], (await segment(1).ReadAsync(firstTwo[^1], null, 10)).Select(e => e.OrderId));
            Assert.Equal(["cat-4", "cat-7"], (await segment(1).ReadAsync(null, t0.AddMinutes(3), 10)).Select(e => e.OrderId));

            // A real order is in its shard's catalog with the time of its OrderPlaced event, before anything else happens to it.
            var id = OrderDriver.NewId("bf-cat-");
            await new OrderDriver(cluster.GrainFactory).PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 1m)));
            var placedAt = (await cluster.GrainFactory.GetGrain<IOrderGrain>(id).GetEventsAsync(0))[0].OccurredAt;
            var shardOf = IOrderRelayGrain.ShardOf(id);
            var open = (await grains.GetGrain<IOrderCatalogGrain>(shardOf).GetSegmentsAsync())[^1];
            var entries = await grains.GetGrain<IOrderCatalogSegmentGrain>(IOrderCatalogSegmentGrain.KeyOf(shardOf, open.Number)).ReadAsync(null, null, 10);
            Assert.Contains(new CatalogEntry(id, placedAt), entries);
        }
        finally
        {
            await StopAsync(cluster);
        }
    }

    private static void AssertAppliedOnceInOrder(IEnumerable<StoredOrder> orders) => Assert.All(orders, order =>
    {
        var audit = AuditOf(order);
        // The inbox applies only applied + 1, so applied = last with nothing held, skipped or failed means 1 … last in
        // order; one handler run per event means none was applied twice.
        var describe = $"order {order.OrderId} at {order.LastSequence}: audit-trail applied {audit.AppliedSequence}, handler runs {audit.HandlerRuns}, " +
                       $"held [{string.Join(",", audit.HeldSequences)}], skipped [{string.Join(",", audit.SkippedSequences)}], failed {audit.FailedAttempts}";
        Assert.True(audit.Exists && audit.AppliedSequence == order.LastSequence && audit.HandlerRuns == order.LastSequence
                    && audit.HeldSequences.Count == 0 && audit.SkippedSequences.Count == 0 && audit.FailedAttempts == 0 && !audit.Parked, describe);
    });

    private static StoredSubscriber AuditOf(StoredOrder order) => order.Subscribers.Single(s => s.Subscriber == Audit);

    private static async Task PlaceAsync(OrderDriver orders, string[] received, string[] cancelled, string[] open)
    {
        foreach (var id in received)
        {
            await orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 2, 3.5m)));
        }

        foreach (var id in cancelled)
        {
            await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
            await orders.CancelAsync(id);
        }

        // Open at every stage: placed, paid, shipped.
        for (var i = 0; i < open.Length; i++)
        {
            var total = await orders.PlaceAsync(open[i], $"user-{open[i]}", OrderDriver.Items(($"sku-{open[i]}", 1, 2m)));
            if (i % 3 >= 1)
            {
                await orders.PayAsync(open[i], total);
            }

            if (i % 3 == 2)
            {
                await orders.ShipAsync(open[i]);
            }
        }
    }

    private static async Task<BackfillProgress> WaitEndedAsync(IOperationsGrain ops)
    {
        var ended = await Eventually.Until(() => ops.GetBackfillAsync(Audit), reply => reply.Progress?.State != BackfillState.Running,
            OrderDriver.CatchUpTimeout, reply => $"backfill of {Audit}: {reply.Outcome} {reply.Progress}");
        return ended.Progress!;
    }

    /// <summary>Until every relay shard's stored state holds no order: then no relay of a later cluster calls a subscriber.</summary>
    private static Task WaitRelayDrainedAsync(TestCluster cluster, string scope)
    {
        var serializer = SerializerOf(cluster);
        var grains = SiloGrains.Of(cluster);
        var shards = Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => grains.GetGrain<IOrderRelayGrain>(shard).GetGrainId()).ToArray();
        return Eventually.Until(
            () => Task.FromResult(shards.Sum(shard => SurvivingGrainStorage.Peek<RelayShardState>(serializer, StorageNames.Orders, "relay", shard, scope)?.Pending.Count ?? 0)),
            pending => pending == 0, OrderDriver.CatchUpTimeout, pending => $"{pending} orders still held by the stored relay shards");
    }

    /// <summary>The audit-trail job as storage holds it: reading it activates nothing (a call to the job would wake it).</summary>
    private static BackfillJobState? StoredJob(TestCluster cluster, string scope) =>
        SurvivingGrainStorage.Peek<BackfillJobState>(SerializerOf(cluster), StorageNames.Ledgers, "backfill", GrainId.Create("backfill-job", Audit), scope);

    private static async Task<(int ExitCode, string Output, string Error)> RunCliAsync(TestCluster cluster, params string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var exitCode = await Cli.RunAsync(args, output, error, (_, work) => work(cluster.Client));
        return (exitCode, output.ToString(), error.ToString());
    }

    private static string[] Ids(string prefix, int count) => Enumerable.Range(0, count).Select(_ => OrderDriver.NewId(prefix)).ToArray();

    private static string NewScope() => $"backfill-{Guid.NewGuid():N}";

    private static Orleans.Serialization.Serializer SerializerOf(TestCluster cluster) =>
        ((InProcessSiloHandle)cluster.Primary!).SiloHost.Services.GetRequiredService<Orleans.Serialization.Serializer>();

    private static Task<TestCluster> StartAsync<TConfigurator>(string scope) where TConfigurator : ISiloConfigurator, new() =>
        SurvivingCluster.StartAsync<TConfigurator>(scope);

    private static Task StopAsync(TestCluster cluster) => SurvivingCluster.StopAsync(cluster);

    private static void ConfigureDurable(ISiloBuilder silo)
    {
        SurvivingCluster.Configure(silo);
        // Small segments: the walk crosses segments, not only shards.
        silo.Services.Configure<OrderCatalogOptions>(o => o.SegmentSize = 3);
        silo.Services.Configure<BackfillOptions>(o =>
        {
            o.BatchSize = 4;
            o.Period = TimeSpan.FromMilliseconds(100);
        });
    }

    /// <summary>The system before <c>audit-trail</c> was deployed: its class is not in the silo's grain class list.</summary>
    private sealed class WithoutAuditTrailSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.PostConfigure<GrainTypeOptions>(o => o.Classes.Remove(typeof(AuditTrailSubscriber)));
        }
    }

    private sealed class WithAuditTrailSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => ConfigureDurable(siloBuilder);
    }

    private sealed class SlowBackfillSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<BackfillOptions>(o =>
            {
                o.BatchSize = 2;
                o.Period = TimeSpan.FromMilliseconds(300);
            });
        }
    }
}
