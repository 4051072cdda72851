using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// The two ways an order's events reach its subscriber grains (<see cref="OrderMessagingOptions.FanOut"/>). The rest of
/// the suite runs the default, the order's dispatcher; these tests run the per-subscriber stream subscriptions end to
/// end, and show that the dispatcher asks again only the subscriber that failed to store a delivery.
/// </summary>
[Collection(PerSubscriberFanOutFixture.Name)]
public sealed class PerSubscriberFanOutTests(PerSubscriberFanOutFixture fixture)
{
    private readonly OrderDriver _orders = new(SiloGrains.Of(fixture.Cluster));

    [Fact]
    public async Task Every_subscriber_applies_every_event_of_concurrent_orders_once_with_a_stream_subscription_each()
    {
        var ids = Enumerable.Range(0, 40).Select(_ => OrderDriver.NewId("fanout-direct-")).ToArray();
        var totals = await Task.WhenAll(ids.Select(id =>
            _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 2, 10.50m)), $"coupon-{id}", $"activity-{id}")));

        // Waited for from stored state only (nothing activated while waiting can repair what the streams did not deliver).
        await StoredProgress.WaitFinishedAsync(SiloGrains.Of(fixture.Cluster), ids, OrderDriver.CatchUpTimeout);
        var reports = await Task.WhenAll(ids.Select(id => _orders.Operations.InspectAsync(id)));

        Assert.All(totals, total => Assert.Equal(21.00m, total));
        Assert.All(reports.SelectMany(r => r.Subscribers), s =>
        {
            Assert.Equal((4L, Handed.Runs(s.Subscriber, Handed.FullLifecycle), false), (s.AppliedSequence, s.HandlerRuns, s.Parked));
            Assert.Empty(s.BufferedSequences);
        });
        Assert.Equal(7, reports[0].Subscribers.Count); // the six built-in and the test assembly's own
        var points = await Task.WhenAll(ids.Select(id => SiloGrains.Of(fixture.Cluster).GetGrain<IPointsAccountGrain>($"user-{id}").GetAsync()));
        Assert.All(points, p => Assert.Equal(21m, p.Balance));
    }
}

public sealed class PerSubscriberFanOutFixture : SiloFixture<PerSubscriberFanOutFixture.Configurator>
{
    public const string Name = "fan-out-per-subscriber";

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging();
            siloBuilder.Services.Configure<OrderMessagingOptions>(o => o.FanOut = OrderFanOut.PerSubscriber);
        }
    }
}

[CollectionDefinition(PerSubscriberFanOutFixture.Name)]
public sealed class PerSubscriberFanOutCollection : ICollectionFixture<PerSubscriberFanOutFixture>;

[Collection(PipelineCollection.Name)]
public sealed class DispatcherFanOutTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task A_subscriber_that_fails_to_store_a_delivery_is_asked_again_and_the_others_are_not()
    {
        var id = OrderDriver.NewId("fanout-retry-");
        var user = $"user-{id}";
        using var fault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, Operations = StorageOperations.Write, GrainType = "order-sync", KeyPrefix = id, Times = 1,
        });

        var total = await _orders.FullLifecycleAsync(id, user, OrderDriver.Items(($"sku-{id}", 3, 7.25m)), $"coupon-{id}", $"activity-{id}");
        await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        var report = await _orders.Operations.InspectAsync(id);

        // The one failed write made the stream deliver that event again; only the subscriber that failed was asked.
        Assert.Equal(1, fault.Hits);
        Assert.All(report.Subscribers, s => Assert.Equal((4L, false), (s.AppliedSequence, s.Parked)));
        Assert.All(report.Subscribers.Where(s => s.Subscriber != "order-sync"), s => Assert.Equal((Handed.Runs(s.Subscriber, Handed.FullLifecycle), 0L), (s.HandlerRuns, s.DuplicatesIgnored)));
        Assert.Equal(new ReplicaRow(true, OrderStatus.Received, total, 4, 0, 4), await fixture.Grains.GetGrain<IOrderReplicaGrain>(id).GetAsync());
    }
}

/// <summary>The dispatcher's report to the relay, with a relay that would not check an order for an hour.</summary>
[Collection(IdleRelayFixture.Name)]
public sealed class DispatcherRelayReportTests(IdleRelayFixture fixture)
{
    private readonly OrderDriver _orders = new(SiloGrains.Of(fixture.Cluster));

    private IOrderRelayGrain Relay(string orderId) => SiloGrains.Of(fixture.Cluster).GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(orderId));

    private async Task<bool> IsActiveAsync(GrainId grain) =>
        (await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics()).Any(g => g.GrainId == grain);

    [Fact]
    public async Task An_order_whose_latest_event_every_subscriber_applied_is_forgotten_by_the_relay_without_a_check()
    {
        var (done, open) = (OrderDriver.NewId("fanout-settled-"), OrderDriver.NewId("fanout-open-"));
        await _orders.FullLifecycleAsync(done, $"user-{done}", OrderDriver.Items(($"sku-{done}", 1, 3.00m)));
        await _orders.PlaceAsync(open, $"user-{open}", OrderDriver.Items(($"sku-{open}", 1, 3.00m)));
        await StoredProgress.WaitFinishedAsync(SiloGrains.Of(fixture.Cluster), [done], OrderDriver.CatchUpTimeout);

        // The finished order: every inbox stored its last event, so the dispatcher's report let the relay go.
        await Eventually.Until(() => Relay(done).FindAsync(done), entry => entry is null, TimeSpan.FromSeconds(10), entry => $"relay still holds {entry}");
        // The open order too, though most inboxes hold "placed" in memory only (nothing to do, or effects kept by key):
        // its effects are durable, so the relay forgets it at once instead of checking it after SettleAfter (an hour here).
        await Eventually.Until(() => Relay(open).FindAsync(open), entry => entry is null, TimeSpan.FromSeconds(10), entry => $"relay still holds {entry}");
    }

    [Fact]
    public async Task A_delivered_order_writes_no_published_mark_as_it_goes_idle_and_its_next_activation_publishes_nothing_again()
    {
        var grains = SiloGrains.Of(fixture.Cluster);
        var id = OrderDriver.NewId("fanout-idle-");
        using var orderWrites = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Write,
            Mode = StorageFaultMode.CountOnly,
        });
        await _orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 3.00m)));
        await StoredProgress.WaitFinishedAsync(grains, [id], OrderDriver.CatchUpTimeout);
        await Eventually.Until(() => Relay(id).FindAsync(id), entry => entry is null, TimeSpan.FromSeconds(10), entry => $"relay still holds {entry}");
        // The finished order lets its activation go at once; its last event's published mark is not written for that.
        await Eventually.Until(() => IsActiveAsync(GrainId.Create("order", id)), active => !active, TimeSpan.FromSeconds(30), _ => "the order is still active");
        Assert.Equal(4, orderWrites.Hits);
        var stored = (await grains.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([id]))[0];
        Assert.Equal((4L, 3L), (stored.LastSequence, stored.PublishedSequence));

        // Reactivated, it asks its relay shard, which no longer holds it: every stored event was delivered, none is
        // published again. A re-published final event would reach the order's dispatcher, then each subscriber as a duplicate.
        Assert.Equal(4L, (await _orders.Order(id).GetAsync()).PublishedSequence);
        await Eventually.Holds(() => IsActiveAsync(GrainId.Create("order-dispatch", id)), active => !active, TimeSpan.FromSeconds(2),
            _ => "the order's dispatcher was activated: the final event was published again");
        var report = await _orders.Operations.InspectAsync(id);
        Assert.All(report.Subscribers, s => Assert.Equal((4L, 0L), (s.AppliedSequence, s.DuplicatesIgnored)));
        Assert.Equal(4, orderWrites.Hits);
    }

    [Fact]
    public async Task An_order_a_subscriber_could_not_apply_stays_with_the_relay_for_its_check()
    {
        var open = OrderDriver.NewId("fanout-held-");
        // The order-sync subscriber's effect (the order's replica row) cannot be written: "placed" is not applied there.
        using var replicaDown = fixture.Faults.Fail(new StorageFault
        {
            Operations = StorageOperations.Write, GrainType = "order-replica", KeyPrefix = open,
        });
        await _orders.PlaceAsync(open, $"user-{open}", OrderDriver.Items(($"sku-{open}", 1, 3.00m)));

        // order-sync records its transient failures and does not apply "placed": every other subscriber applied it, but
        // not all, so no report, and the relay keeps the order for its own check.
        var stored = SiloGrains.Of(fixture.Cluster).GetGrain<IStoredStateGrain>(0);
        await Eventually.Until(async () => (await stored.ReadOrdersAsync([open]))[0].Subscribers.Single(s => s.Subscriber == "order-sync"),
            s => s.TransientFailures > 1 && s.AppliedSequence == 0, TimeSpan.FromSeconds(10), s => $"order-sync stored {s}");
        Assert.True(replicaDown.Hits > 0);
        var held = await Relay(open).FindAsync(open);
        Assert.NotNull(held);
        Assert.Equal((1L, 0), (held.Sequence, held.Checks));
    }

    [Fact]
    public async Task A_delivery_report_for_an_earlier_event_than_the_latest_mark_forgets_nothing()
    {
        var first = OrderDriver.NewId("fanout-marked-");
        var shard = IOrderRelayGrain.ShardOf(first);
        var second = Enumerable.Range(0, 10_000).Select(_ => OrderDriver.NewId("fanout-marked-")).First(id => IOrderRelayGrain.ShardOf(id) == shard);
        var relay = Relay(first);
        await relay.MarkAsync(first, 2);
        await relay.MarkAsync(second, 1);

        // Event 1 of the first order was delivered everywhere, but event 2 is marked: the relay keeps it. The report for
        // the second order, sent after it on the same path, shows the first report was handled by then.
        await relay.DeliveredAsync(first, 1);
        await relay.DeliveredAsync(second, 1);
        await Eventually.Until(() => relay.FindAsync(second), entry => entry is null, TimeSpan.FromSeconds(10), entry => $"relay still holds {entry}");
        Assert.Equal(2, (await relay.FindAsync(first))?.Sequence);

        await relay.DeliveredAsync(first, 2);
        await Eventually.Until(() => relay.FindAsync(first), entry => entry is null, TimeSpan.FromSeconds(10), entry => $"relay still holds {entry}");
    }
}

public sealed class IdleRelayFixture : SiloFixture<IdleRelayFixture.Configurator>
{
    public const string Name = "fan-out-idle-relay";

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            // Fault injection (count-only probes in KeyedInboxCostTests) last: it wraps the storage registered before it.
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
            siloBuilder.Services.Configure<OrderRelayOptions>(o => o.SettleAfter = TimeSpan.FromHours(1));
        }
    }
}

[CollectionDefinition(IdleRelayFixture.Name)]
public sealed class IdleRelayCollection : ICollectionFixture<IdleRelayFixture>;

