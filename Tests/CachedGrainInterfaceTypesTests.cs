using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;
using Orleans.Metadata;
using Orleans.Serialization.TypeSystem;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// The silo's cache of grain interface types answers exactly what Orleans' own providers answer without it, for
/// interfaces with and without an alias, and keeps answering after the first question.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class CachedGrainInterfaceTypesTests(PipelineFixture fixture)
{
    private IServiceProvider Silo => ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services;

    [Fact]
    public void The_cache_is_asked_first_and_answers_as_Orleans_own_providers_do()
    {
        var providers = Silo.GetServices<IGrainInterfaceTypeProvider>().ToArray();
        Assert.IsType<CachedGrainInterfaceTypes>(providers[0]);
        var withCache = Silo.GetRequiredService<GrainInterfaceTypeResolver>();
        var withoutCache = new GrainInterfaceTypeResolver(providers.Skip(1), Silo.GetRequiredService<TypeConverter>());

        Type[] interfaces =
        [
            typeof(IOrderGrain), typeof(IOrderSubscriberGrain), typeof(IOrderRelayGrain), typeof(IStockReservationsGrain),
            typeof(IFlashSaleGrain), typeof(IManagementGrain),
        ];
        foreach (var type in interfaces)
        {
            var expected = withoutCache.GetGrainInterfaceType(type);
            Assert.Equal(expected, withCache.GetGrainInterfaceType(type));
            Assert.Equal(expected, withCache.GetGrainInterfaceType(type)); // from the cache now
            Assert.True(providers[0].TryGetGrainInterfaceType(type, out var cached));
            Assert.Equal(expected, cached);
        }
    }

    [Fact]
    public async Task Grains_reached_through_cached_references_answer()
    {
        var order = fixture.Grains.GetGrain<IOrderGrain>("cache-ref-1");
        Assert.Equal(order.GetGrainId(), fixture.Grains.GetGrain<IOrderGrain>("cache-ref-1").GetGrainId());
        Assert.Empty(await order.GetEventsAsync(0));
    }
}
