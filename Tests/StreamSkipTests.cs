using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// Orleans skips an event for a subscriber whose <c>OnNextAsync</c> keeps failing past <c>MaxEventDeliveryTime</c>.
/// Here the subscriber's own inbox write fails for longer than that (its storage is down), so the stream gives up on
/// the order's final event; only the relay brings that subscriber to the end.
/// </summary>
[Collection(StreamSkipCollection.Name)]
public sealed class StreamSkipTests(StreamSkipFixture fixture)
{
    [Fact]
    public async Task An_event_the_stream_skipped_after_MaxEventDeliveryTime_is_applied_through_the_relay()
    {
        var id = OrderDriver.NewId("skip-");
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);
        await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
        var stored = fixture.Cluster.GrainFactory.GetGrain<IStoredStateGrain>(0);
        // Order-sync applied "placed" (the replica row exists); its inbox writes that progress lazily (keyed effects).
        await Eventually.Until(async () => (await stored.ReadReplicasAsync([id]))[0], row => row is { Version: 1 },
            OrderDriver.CatchUpTimeout, row => $"replica of {id}: {row}");
        // Every idle activation goes, order-sync's inbox of this order among them: the next delivery must load it.
        await fixture.Cluster.GrainFactory.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);

        // Its storage cannot be read or written: the inbox cannot even be activated, so the delivery keeps failing.
        using (var fault = fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.Subscribers, GrainType = "order-sync", KeyPrefix = id,
               }))
        {
            await orders.CancelAsync(id);
            // The stream retries the delivery for MaxEventDeliveryTime (1 s here), then skips it: the failures stop.
            await Eventually.Until(() => Task.FromResult(fault.Hits), hits => hits >= 2, OrderDriver.CatchUpTimeout, hits => $"{hits} failed inbox reads or writes");
            // For 2 s, past that, the cancellation reaches the replica row through nobody: the stream gave up on it.
            await Eventually.Holds(async () => (await stored.ReadReplicasAsync([id]))[0], row => row is { Version: 1 }, TimeSpan.FromSeconds(2),
                row => $"replica of {id}: {row}");
        }

        var done = await StoredProgress.WaitFinishedAsync(fixture.Cluster.GrainFactory, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal(2L, done[0].Subscribers.Single(s => s.Subscriber == "order-sync").AppliedSequence);
    }

    [Fact]
    public async Task A_subscriber_left_out_of_a_later_event_does_not_let_the_relay_forget_an_earlier_one_the_stream_skipped()
    {
        var id = OrderDriver.NewId("skip-left-");
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);
        var total = await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)), coupon: $"coupon-{id}");

        // Coupon's handler fails on the payment and its inbox cannot store that failure: the delivery keeps failing, and
        // the stream gives up on the payment for coupon (the others take it).
        var drills = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<DrillBoard>();
        drills.Set("coupon", new SubscriberDrill { FailEventKind = nameof(OrderPaid), OrderIdPrefix = id });
        try
        {
            using var fault = fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Subscribers, GrainType = "coupon", KeyPrefix = id });
            await orders.PayAsync(id, total);
            await Eventually.Until(() => Task.FromResult(fault.Hits), hits => hits >= 2, OrderDriver.CatchUpTimeout, hits => $"{hits} failed inbox reads or writes");
            await Task.Delay(TimeSpan.FromSeconds(1.5)); // past MaxEventDeliveryTime (1 s here): the stream skipped it
        }
        finally
        {
            drills.Clear("coupon");
        }

        // Shipped has nothing for coupon, which is left out of it. That must not count as coupon having taken everything
        // before it: the relay keeps the order, and its settle hands coupon the order's log (gap repair here waits 10 min).
        await orders.ShipAsync(id);
        var coupon = SiloGrains.Of(fixture.Cluster).GetGrain<IOrderSubscriberGrain>(GrainId.Create("coupon", id));
        var status = await Eventually.Until(() => coupon.GetStatusAsync(), s => s.AppliedSequence == 3, OrderDriver.CatchUpTimeout, s => s.ToString());
        Assert.Equal(1L, status.GapRepairs);
    }
}

public sealed class StreamSkipFixture : SiloFixture<StreamSkipFixture.Configurator>
{
    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
            siloBuilder.Services.Configure<StreamPullingAgentOptions>(OrderStreams.ProviderName, o => o.MaxEventDeliveryTime = TimeSpan.FromSeconds(1));
            siloBuilder.Services.Configure<OrderMessagingOptions>(o => o.GapRepairAfter = TimeSpan.FromMinutes(10));
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.SettleAfter = TimeSpan.FromSeconds(1);
                o.Period = TimeSpan.FromMilliseconds(200);
                o.MaxRecheck = TimeSpan.FromSeconds(1);
            });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class StreamSkipCollection : ICollectionFixture<StreamSkipFixture>
{
    public const string Name = "stream-skip";
}
