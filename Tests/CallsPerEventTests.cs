using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Client.Bench;
using OrderFlow.Contracts;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>The brokers bench's grain calls per event: what the silo's counter added over the phase, divided by its events.</summary>
public sealed class CallsPerEventTests
{
    [Fact]
    public void Only_the_calls_a_phase_added_count_per_event_most_first()
    {
        IReadOnlyList<GrainCallCount> before = [new("order", 400), new("bench-echo", 90_000), new("stock", 10)];
        IReadOnlyList<GrainCallCount> after = [new("bench-echo", 90_000), new("order", 800), new("stock", 310), new("order-dispatch", 400)];

        var perEvent = CallsPerEvent.Between(before, after, events: 400);

        Assert.Equal([new CallsPerEvent("order", 1.0), new CallsPerEvent("order-dispatch", 1.0), new CallsPerEvent("stock", 0.75)], perEvent);
    }
}

/// <summary>The call counter is in the call path of a bench silo only, and there it counts every call by target type.</summary>
[Collection(BenchSiloFixture.Name)]
public sealed class BenchCallCounterTests(BenchSiloFixture fixture)
{
    [Fact]
    public async Task A_bench_silo_counts_each_grain_call_of_an_order_by_target_grain_type()
    {
        var control = fixture.Cluster.Client.GetGrain<IBenchControlGrain>(0);
        var orders = new OrderDriver(fixture.Cluster.Client);
        var id = OrderDriver.NewId("calls-");
        var items = OrderDriver.Items(($"sku-{id}", 1, 10m));
        await orders.EnsureInventoryAsync(items);
        var before = await control.GetGrainCallsAsync();

        await orders.FullLifecycleAsync(id, $"user-{id}", items);
        await orders.WaitCaughtUpAsync(id);

        var added = CallsPerEvent.Between(before, await control.GetGrainCallsAsync(), events: 1).ToDictionary(c => c.GrainType, c => c.Calls);
        // Four commands and four stream deliveries to the order's dispatcher, which hands each subscriber the events it
        // handles and the last one (HandlesOnly); status reads while waiting for the catch-up may add calls, never remove.
        Assert.True(added.GetValueOrDefault("order") >= 4, $"order: {added.GetValueOrDefault("order")}");
        Assert.True(added.GetValueOrDefault("order-dispatch") >= 4, $"order-dispatch: {added.GetValueOrDefault("order-dispatch")}");
        foreach (var target in new[] { "coupon", "points", "sms", "activity-gmv", "inventory", "order-sync" })
        {
            Assert.True(added.GetValueOrDefault(target) >= Handed.Runs(target, Handed.FullLifecycle), $"{target}: {added.GetValueOrDefault(target)}");
        }
    }

    [Fact]
    public async Task A_subscriber_is_handed_only_the_events_it_handles_and_the_order_s_last_one()
    {
        var (orders, id, items) = await NewOrderAsync("handed-");
        var before = await Control.GetGrainCallsAsync();

        await orders.FullLifecycleAsync(id, $"user-{id}", items);
        await FinishedInStorageAsync(id);

        var added = await AddedSinceAsync(before);
        Assert.True(added.GetValueOrDefault("order-dispatch") >= 4); // four deliveries and the stream's handshake
        Assert.Equal(4, added.GetValueOrDefault("order-sync")); // every kind
        Assert.Equal(3, added.GetValueOrDefault("sms")); // paid, shipped, and received (the last)
        foreach (var paidOrCancelled in new[] { "coupon", "points", "activity-gmv", "inventory" })
        {
            Assert.Equal(2, added.GetValueOrDefault(paidOrCancelled)); // paid, and received (the last)
        }
    }

    [Fact]
    public async Task An_order_awaiting_payment_activates_only_the_subscriber_that_handles_placed_and_its_cancellation_reaches_all()
    {
        var (orders, id, items) = await NewOrderAsync("awaiting-");
        var before = await Control.GetGrainCallsAsync();

        await orders.PlaceAsync(id, $"user-{id}", items);
        var placed = await Eventually.Until(() => AddedSinceAsync(before), added => added.GetValueOrDefault("order-sync") >= 1,
            TimeSpan.FromSeconds(10), added => string.Join(", ", added));
        foreach (var name in new[] { "coupon", "points", "activity-gmv", "inventory", "sms" })
        {
            Assert.Equal(0, placed.GetValueOrDefault(name));
        }

        await orders.CancelAsync(id);
        await FinishedInStorageAsync(id);
        var added = await AddedSinceAsync(before);
        Assert.Equal(2, added.GetValueOrDefault("order-sync"));
        foreach (var name in new[] { "coupon", "points", "activity-gmv", "inventory", "sms" })
        {
            Assert.Equal(1, added.GetValueOrDefault(name)); // the cancellation, the order's last event
        }
    }

    [Fact]
    public async Task A_dispatcher_activated_mid_order_hands_a_later_event_to_subscribers_it_did_not_see_take_the_earlier_ones()
    {
        var (orders, id, items) = await NewOrderAsync("midway-");
        var start = await Control.GetGrainCallsAsync();
        var total = await orders.PlaceAsync(id, $"user-{id}", items);
        await orders.PayAsync(id, total);
        await Eventually.Until(() => AddedSinceAsync(start),
            calls => calls.GetValueOrDefault("order-sync") >= 2 && new[] { "coupon", "points", "activity-gmv", "inventory", "sms" }.All(name => calls.GetValueOrDefault(name) >= 1),
            TimeSpan.FromSeconds(10), calls => string.Join(", ", calls));
        // Every idle activation goes, the order's dispatcher among them (checked: one still finishing its turn is not
        // idle yet, so collect again): the next one never saw the subscribers take placed and paid.
        var management = fixture.Cluster.Client.GetGrain<IManagementGrain>(0);
        var dispatcher = GrainId.Create("order-dispatch", id);
        await Eventually.Until(async () =>
            {
                await management.ForceActivationCollection(TimeSpan.Zero);
                return await management.GetActiveGrains(dispatcher.Type);
            },
            active => !active.Contains(dispatcher), TimeSpan.FromSeconds(10), _ => $"{dispatcher} is still active");
        var before = await Control.GetGrainCallsAsync();

        await orders.ShipAsync(id);

        // Shipped has nothing for coupon, points, activity-gmv or inventory, but this dispatcher cannot vouch that they
        // took the payment: it hands them shipped (they step over it) rather than leave the order to its relay shard's
        // settle, 10 s later.
        var added = await Eventually.Until(() => AddedSinceAsync(before),
            calls => new[] { "coupon", "points", "activity-gmv", "inventory", "sms", "order-sync" }.All(name => calls.GetValueOrDefault(name) >= 1),
            TimeSpan.FromSeconds(5), calls => string.Join(", ", calls));
        Assert.True(added.GetValueOrDefault("coupon") <= 2, $"coupon: {added.GetValueOrDefault("coupon")}"); // the delivery, and a wake-up tick at most
    }

    private IBenchControlGrain Control => fixture.Cluster.Client.GetGrain<IBenchControlGrain>(0);

    private async Task<(OrderDriver Orders, string Id, IReadOnlyList<OrderLine> Items)> NewOrderAsync(string prefix)
    {
        var orders = new OrderDriver(fixture.Cluster.Client);
        var id = OrderDriver.NewId(prefix);
        var items = OrderDriver.Items(($"sku-{id}", 1, 10m));
        await orders.EnsureInventoryAsync(items);
        return (orders, id, items);
    }

    private async Task<Dictionary<string, double>> AddedSinceAsync(IReadOnlyList<GrainCallCount> before) =>
        CallsPerEvent.Between(before, await Control.GetGrainCallsAsync(), events: 1).ToDictionary(c => c.GrainType, c => c.Calls);

    // From storage, so that waiting calls no subscriber (an inspection would add calls of its own).
    private Task FinishedInStorageAsync(string orderId) => Eventually.Until(
        () => fixture.Cluster.Client.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([orderId]),
        stored => stored[0].IsFinal && stored[0].Subscribers.Count >= 6 && stored[0].Subscribers.All(s => s.Finished),
        TimeSpan.FromSeconds(30),
        stored => string.Join(", ", stored[0].Subscribers.Select(s => $"{s.Subscriber}={s.AppliedSequence}{(s.Finished ? " finished" : "")}")));

    [Fact]
    public void The_bench_silo_has_the_counter_in_its_call_path()
    {
        var filters = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetServices<IIncomingGrainCallFilter>();
        Assert.Single(filters.OfType<BenchCallCounter>());
    }
}

/// <summary>A silo started with <c>Benchmarks:Enabled=true</c>, the way <c>./bench.sh</c> starts one.</summary>
public sealed class BenchSiloFixture : SiloFixture<BenchSiloFixture.Configurator>
{
    public const string Name = "bench-silo";

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Configuration[$"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.Enabled)}"] = "true";
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging();
        }
    }
}

[CollectionDefinition(BenchSiloFixture.Name)]
public sealed class BenchSiloCollection : ICollectionFixture<BenchSiloFixture>;
