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
        // Four commands, four stream deliveries to the order's dispatcher, each handed to all six subscribers.
        Assert.True(added.GetValueOrDefault("order") >= 4, $"order: {added.GetValueOrDefault("order")}");
        foreach (var target in new[] { "order-dispatch", "coupon", "points", "sms", "activity-gmv", "inventory", "order-sync" })
        {
            Assert.True(added.GetValueOrDefault(target) >= 4, $"{target}: {added.GetValueOrDefault(target)}");
        }
    }

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
