using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// The in-memory order stream keeps events in its cache for a window (<see cref="OrderMessagingSiloBuilderExtensions.OrderStreamCacheWindow"/>,
/// 200 ms here) and purges on time alone: an event whose order's dispatcher is still busy with the one before it when the
/// window passes is dropped before it is delivered. The relay brings every subscriber to it anyway.
/// </summary>
[Collection(StreamCacheCollection.Name)]
public sealed class StreamCacheTests(StreamCacheFixture fixture)
{
    [Fact]
    public async Task An_event_the_stream_cache_purged_before_its_dispatcher_took_it_is_applied_through_the_relay()
    {
        var id = OrderDriver.NewId("purged-");
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);
        var total = await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
        var stored = fixture.Cluster.GrainFactory.GetGrain<IStoredStateGrain>(0);
        await Eventually.Until(async () => (await stored.ReadReplicasAsync([id]))[0], row => row is { Version: 1 },
            OrderDriver.CatchUpTimeout, row => $"replica of {id}: {row}");

        // Points takes 3 s over the payment, so the order's dispatcher holds the payment's delivery that long and its
        // cursor waits in front of the shipment.
        var drills = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<DrillBoard>();
        drills.Set("points", new SubscriberDrill { ExtraDelayMs = 3_000, OrderIdPrefix = id });
        try
        {
            await orders.PayAsync(id, total);
            await orders.ShipAsync(id);
            // Other orders' events behind it, on the same (only) queue, until the newest is more than the window (200 ms)
            // younger than the shipment: the cache lets the shipment go. Bounded: at most 200 placements.
            var since = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < 200 && since.Elapsed < TimeSpan.FromMilliseconds(800); i++)
            {
                var other = OrderDriver.NewId($"purged-other{i}-");
                await orders.PlaceAsync(other, $"user-{other}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
            }

            var points = SiloGrains.Of(fixture.Cluster).GetGrain<IOrderSubscriberGrain>(GrainId.Create("points", id));
            await Eventually.Until(() => points.GetStatusAsync(), s => s.AppliedSequence >= 2, OrderDriver.CatchUpTimeout, s => s.ToString());
        }
        finally
        {
            drills.Clear("points");
        }

        // The dispatcher took the payment and found the shipment gone from the cache: for 1.5 s the shipment reaches
        // order-sync through nobody (the relay waits 6 s after the order's last event, gap repair 10 minutes).
        await Eventually.Holds(async () => (await stored.ReadReplicasAsync([id]))[0], row => row is { Version: 2 }, TimeSpan.FromSeconds(1.5),
            row => $"replica of {id}: {row}");

        // Then the relay's settle hands every subscriber the order's log.
        await Eventually.Until(async () => (await stored.ReadReplicasAsync([id]))[0], row => row is { Version: 3 },
            OrderDriver.CatchUpTimeout, row => $"replica of {id}: {row}");
        // Read from storage: asking sms' grain could itself catch it up from the order's log.
        await Eventually.Until(async () => (await stored.ReadOrdersAsync([id]))[0].Subscribers.Single(s => s.Subscriber == "sms"),
            sms => sms.AppliedSequence == 3, OrderDriver.CatchUpTimeout, sms => $"sms of {id}: {sms}");
    }
}

public sealed class StreamCacheFixture : SiloFixture<StreamCacheFixture.Configurator>
{
    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging();
            // One queue, so the other orders' events share the shipment's cache.
            siloBuilder.Services.Configure<HashRingStreamQueueMapperOptions>(OrderStreams.ProviderName, o => o.TotalQueueCount = 1);
            siloBuilder.Services.Configure<StreamCacheEvictionOptions>(OrderStreams.ProviderName, o =>
            {
                o.DataMinTimeInCache = TimeSpan.FromMilliseconds(200);
                o.DataMaxAgeInCache = TimeSpan.FromMilliseconds(200);
            });
            siloBuilder.Services.Configure<OrderMessagingOptions>(o => o.GapRepairAfter = TimeSpan.FromMinutes(10));
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.SettleAfter = TimeSpan.FromSeconds(6);
                o.Period = TimeSpan.FromMilliseconds(200);
                o.MaxRecheck = TimeSpan.FromSeconds(1);
            });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class StreamCacheCollection : ICollectionFixture<StreamCacheFixture>
{
    public const string Name = "stream-cache";
}
