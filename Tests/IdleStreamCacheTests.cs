using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;
using Orleans.Configuration;
using Orleans.Providers.Streams.Common;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// What the embedded order stream keeps once the silo goes quiet: its caches empty a window after their last event
/// (<see cref="AgeBoundPurge"/>), and their blocks go back to a pool that keeps only a few spares
/// (<see cref="OrderStreamBlockPool"/>).
/// </summary>
[Collection(IdleStreamCacheCollection.Name)]
public sealed class IdleStreamCacheTests(IdleStreamCacheFixture fixture)
{
    [Fact]
    public async Task A_quiet_silos_stream_cache_lets_its_events_and_blocks_go_after_the_window()
    {
        var pool = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<OrderStreamBlockPool>();
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);
        var stored = fixture.Cluster.GrainFactory.GetGrain<IStoredStateGrain>(0);

        // 96 placements, 16 at a time: their events (~300 B each in the cache) fill several 4 KB blocks of the only
        // queue's cache, well inside one window (10 s). Orleans' own rule purges an event only once it is a window older
        // than the newest: nothing newer comes after these, so under that rule all of them would stay.
        var ids = new List<string>();
        for (var batch = 0; batch < 6; batch++)
        {
            var placing = Enumerable.Range(0, 16).Select(_ => OrderDriver.NewId("idle-")).ToList();
            await Task.WhenAll(placing.Select(id => orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)))));
            ids.AddRange(placing);
        }

        // Every placement reached its subscribers (order-sync's replica, read from storage), so the pulling agent has
        // taken every event into its cache.
        await Eventually.Until(() => stored.ReadReplicasAsync(ids), rows => rows.All(row => row is { Version: 1 }),
            OrderDriver.CatchUpTimeout, rows => $"{rows.Count(row => row is { Version: 1 })} of {ids.Count} replicas at version 1");
        Assert.True(pool.Made >= 4, $"{ids.Count} placements made {pool.Made} blocks");

        // Quiet now: a window later the cache holds only its newest event, in one block; the pool keeps its one spare
        // and the other blocks are gone.
        await Eventually.Until(() => Task.FromResult((pool.InUse, pool.Spare)), blocks => blocks == (1, 1),
            TimeSpan.FromSeconds(60), blocks => $"blocks in use {blocks.InUse}, spare {blocks.Spare}, made {pool.Made}");
    }
}

public sealed class IdleStreamCacheFixture : SiloFixture<IdleStreamCacheFixture.Configurator>
{
    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging();
            siloBuilder.Services.Configure<HashRingStreamQueueMapperOptions>(OrderStreams.ProviderName, o => o.TotalQueueCount = 1);
            siloBuilder.Services.Configure<StreamCacheEvictionOptions>(OrderStreams.ProviderName, o =>
            {
                o.DataMinTimeInCache = TimeSpan.FromSeconds(10);
                o.DataMaxAgeInCache = TimeSpan.FromSeconds(10);
            });
            siloBuilder.Services.Configure<OrderStreamBlockPoolOptions>(o =>
            {
                o.BlockBytes = 4_096;
                o.SpareBlocks = 1;
            });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class IdleStreamCacheCollection : ICollectionFixture<IdleStreamCacheFixture>
{
    public const string Name = "idle-stream-cache";
}

public sealed class StreamCacheRulesTests
{
    [Theory]
    [InlineData(3_000, 1, true)] // cached longer than the window, nothing a window newer: Orleans keeps it, this purges it
    [InlineData(3_000, 0, false)] // the newest event stays: Orleans' cache does not expect to become empty under a cursor
    [InlineData(3_000, 2_500, true)] // and a window older than the newest: both purge
    [InlineData(1_500, 5_000, false)] // not yet cached the minimum time
    [InlineData(1_500, 0, false)]
    public void An_event_cached_longer_than_the_window_is_purged_whatever_came_after_it_unless_it_is_the_newest(int cachedMs, int olderThanNewestMs, bool purged)
    {
        var rule = new AgeBoundPurge(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));

        Assert.Equal(purged, rule.ShouldPurgeFromTime(TimeSpan.FromMilliseconds(cachedMs), TimeSpan.FromMilliseconds(olderThanNewestMs)));
    }

    [Fact]
    public void Orleans_rule_alone_keeps_an_idle_caches_events()
    {
        var orleans = new TimePurgePredicate(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));

        Assert.False(orleans.ShouldPurgeFromTime(TimeSpan.FromHours(1), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void The_block_pool_keeps_only_its_spares_and_reuses_them()
    {
        var pool = new OrderStreamBlockPool(new OrderStreamBlockPoolOptions { BlockBytes = 4_096, SpareBlocks = 2 });
        var blocks = Enumerable.Range(0, 5).Select(_ => pool.Allocate()).ToList();
        Assert.Equal((5L, 0, 5L), (pool.InUse, pool.Spare, pool.Made));

        // A block goes back to its pool when the cache disposes it (Orleans' PooledResource), written or not.
        Assert.True(blocks[0].TryGetSegment(4_000, out _));
        foreach (var block in blocks)
        {
            block.Dispose();
        }

        Assert.Equal((0L, 2, 5L), (pool.InUse, pool.Spare, pool.Made));
        var again = new[] { pool.Allocate(), pool.Allocate(), pool.Allocate() };
        Assert.Equal((3L, 0, 6L), (pool.InUse, pool.Spare, pool.Made));
        Assert.Contains(blocks[0], again);
        // blocks[0] was nearly full when it went back: reused, it has its whole size again.
        Assert.True(blocks[0].TryGetSegment(4_096, out var segment) && segment.Count == 4_096, "a reused block starts empty");
    }

    [Fact]
    public void The_block_pool_keeps_4_spare_1_MiB_blocks_unless_the_order_streams_section_says_otherwise()
    {
        var defaults = TransientRetryOptionsTests.Resolve<OrderStreamBlockPoolOptions>([], silo => silo.UseEmbeddedOrderStorage(singleSilo: true), Options.DefaultName);
        Assert.Equal((1 << 20, 4), (defaults.BlockBytes, defaults.SpareBlocks));

        var set = TransientRetryOptionsTests.Resolve<OrderStreamBlockPoolOptions>(new()
        {
            ["OrderStreams:BlockPool:BlockBytes"] = "65536",
            ["OrderStreams:BlockPool:SpareBlocks"] = "0",
        }, silo => silo.UseEmbeddedOrderStorage(singleSilo: true), Options.DefaultName);
        Assert.Equal((65_536, 0), (set.BlockBytes, set.SpareBlocks));
    }

    [Theory]
    [InlineData("BlockBytes", "100")]
    [InlineData("SpareBlocks", "-1")]
    public void An_unusable_block_pool_setting_fails_when_the_options_are_first_read(string setting, string value)
    {
        var error = Assert.Throws<OptionsValidationException>(() => TransientRetryOptionsTests.Resolve<OrderStreamBlockPoolOptions>(
            new() { [$"OrderStreams:BlockPool:{setting}"] = value }, silo => silo.UseEmbeddedOrderStorage(singleSilo: true), Options.DefaultName));
        Assert.Contains(setting, error.Message);
    }
}
