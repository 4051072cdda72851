using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Providers;
using Orleans.Providers.Streams.Common;
using Orleans.Streams;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// The embedded profile's in-memory order stream: Orleans' <see cref="MemoryAdapterFactory{TSerializer}"/> with two
/// changes to its queue caches, both about what an idle silo keeps.
/// <list type="bullet">
/// <item>An event leaves the cache once it has been cached <c>DataMaxAgeInCache</c> (<see cref="AgeBoundPurge"/>; all
/// but the newest), not only once it is that much older than the newest event: Orleans' rule purges nothing while no
/// new event arrives, so a silo that went quiet kept its last window of traffic for as long as it stayed quiet.</item>
/// <item>The cache's blocks come from <see cref="OrderStreamBlockPool"/>, which keeps a few spare blocks and lets the
/// rest go; Orleans' pool keeps every block it ever made, so the peak's blocks stayed after the cache had emptied.</item>
/// </list>
/// Everything else (the queue grains, receivers, queue mapping, cursors) is Orleans' own.
/// </summary>
internal sealed class OrderMemoryAdapterFactory : MemoryAdapterFactory<DefaultMemoryMessageBodySerializer>, IQueueAdapterCache
{
    private readonly StreamCacheEvictionOptions cacheOptions;
    private readonly StreamStatisticOptions statisticOptions;
    private readonly ILoggerFactory loggerFactory;
    private readonly DefaultMemoryMessageBodySerializer serializer;
    private readonly OrderStreamBlockPool blocks;
    private readonly int blockBytes;
    private readonly int maxAddCount;

    public OrderMemoryAdapterFactory(
        string providerName,
        StreamCacheEvictionOptions cacheOptions,
        StreamStatisticOptions statisticOptions,
        HashRingStreamQueueMapperOptions queueMapperOptions,
        MemoryStreamCacheOptions memoryCacheOptions,
        OrderStreamBlockPool blocks,
        IOptions<OrderStreamBlockPoolOptions> blockOptions,
        IServiceProvider serviceProvider,
        IGrainFactory grainFactory,
        ILoggerFactory loggerFactory)
        : base(providerName, cacheOptions, statisticOptions, queueMapperOptions, serviceProvider, grainFactory, loggerFactory)
    {
        this.cacheOptions = cacheOptions;
        this.statisticOptions = statisticOptions;
        this.loggerFactory = loggerFactory;
        this.blocks = blocks;
        blockBytes = blockOptions.Value.BlockBytes;
        maxAddCount = memoryCacheOptions.MaxAddCount;
        // As Orleans' factory finds its serializer (its own lookup is internal).
        serializer = serviceProvider.GetService<DefaultMemoryMessageBodySerializer>()
            ?? ActivatorUtilities.CreateInstance<DefaultMemoryMessageBodySerializer>(serviceProvider);
    }

    /// <summary>Builds the factory for the stream provider <paramref name="name"/> from its named options, as Orleans' own <c>Create</c> does.</summary>
    public static new OrderMemoryAdapterFactory Create(IServiceProvider services, string name)
    {
        var factory = ActivatorUtilities.CreateInstance<OrderMemoryAdapterFactory>(services, name,
            services.GetOptionsByName<StreamCacheEvictionOptions>(name),
            services.GetOptionsByName<StreamStatisticOptions>(name),
            services.GetOptionsByName<HashRingStreamQueueMapperOptions>(name),
            services.GetOptionsByName<MemoryStreamCacheOptions>(name),
            services.GetRequiredService<OrderStreamBlockPool>());
        factory.Init();
        return factory;
    }

    /// <summary>
    /// Orleans' cache (<see cref="MemoryPooledCache{TSerializer}"/>) over this silo's <see cref="OrderStreamBlockPool"/>,
    /// purging by <see cref="AgeBoundPurge"/>. (This class lists <see cref="IQueueAdapterCache"/> again, so the pulling
    /// agents, which call through the interface, reach this method rather than the base class's.)
    /// </summary>
    IQueueCache IQueueAdapterCache.CreateQueueCache(QueueId queueId)
    {
        blocks.AttachOnce(() => new ObjectPoolMonitorBridge(BlockPoolMonitorFactory!(new BlockPoolMonitorDimensions(OrderStreamBlockPool.Id)), blockBytes));
        var logger = loggerFactory.CreateLogger($"{typeof(MemoryPooledCache<DefaultMemoryMessageBodySerializer>).FullName}.{Name}.{queueId}");
        var monitor = CacheMonitorFactory!(new CacheMonitorDimensions(queueId.ToString(), OrderStreamBlockPool.Id));
        return new MemoryPooledCache<DefaultMemoryMessageBodySerializer>(
            blocks, new AgeBoundPurge(cacheOptions.DataMinTimeInCache, cacheOptions.DataMaxAgeInCache), logger, serializer, monitor,
            statisticOptions.StatisticMonitorWriteInterval, cacheOptions.MetadataMinTimeInCache, maxAddCount);
    }
}

/// <summary>
/// Orleans' time rule (an event is purged once cached <c>minTimeInCache</c> and <c>maxAge</c> older than the newest
/// event), plus: an event cached longer than both is purged whatever came after it, except the newest (and any enqueued
/// at the same instant). The cache purges oldest first on every read of its queue (every pull period), so an idle
/// queue's cache holds only its newest event <c>maxAge</c> after it, in the one block that event lives in. It is never
/// emptied by age: Orleans' cache (10.4.2) does not expect to become empty under a consumer's cursor, and its next move
/// throws into the consumer (review finding), where under Orleans' own rule the newest event is never purged.
/// </summary>
public sealed class AgeBoundPurge : TimePurgePredicate
{
    private readonly TimeSpan minTimeInCache;
    private readonly TimeSpan maxAge;

    public AgeBoundPurge(TimeSpan minTimeInCache, TimeSpan maxAge)
        : base(minTimeInCache, maxAge)
    {
        this.minTimeInCache = minTimeInCache;
        this.maxAge = maxAge;
    }

    public override bool ShouldPurgeFromTime(TimeSpan timeInCache, TimeSpan relativeAge) =>
        timeInCache > minTimeInCache && (relativeAge > maxAge || (timeInCache > maxAge && relativeAge > TimeSpan.Zero));
}

/// <summary>The order stream's block pool (section <c>OrderStreams:BlockPool</c>).</summary>
public sealed class OrderStreamBlockPoolOptions
{
    public const string SectionName = "OrderStreams:BlockPool";

    /// <summary>
    /// Bytes of one block of serialized events (Orleans: 1 MiB). Keep it well above the largest event (about 20 KB: a
    /// 100-line order with 128-character ids): the cache refuses an event larger than a block, and the relay then has to
    /// deliver it. Default 1 MiB.
    /// </summary>
    [Range(4_096, 64 << 20)]
    public int BlockBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Blocks kept for reuse once the caches have let them go; a block freed beyond these is left to the garbage
    /// collector. Under steady traffic the caches free about as many blocks as they take, so a few spares make new ones
    /// rare. Default 4 (4 MiB).
    /// </summary>
    [Range(0, 1_024)]
    public int SpareBlocks { get; set; } = 4;
}

/// <summary>
/// The blocks the order stream's queue caches write events into (shared by the silo's queues). Unlike Orleans'
/// <c>ObjectPool</c>, which keeps every block it ever made for good, it keeps at most
/// <see cref="OrderStreamBlockPoolOptions.SpareBlocks"/> spare: memory after a burst returns to what the caches hold.
/// It reports to Orleans' block-pool meters (<c>orleans-streams-block-pool-*</c>) once the stream's factory attaches them.
/// </summary>
public sealed class OrderStreamBlockPool(OrderStreamBlockPoolOptions options) : IObjectPool<FixedSizeBuffer>
{
    internal const string Id = "order-stream-blocks";

    private readonly Stack<FixedSizeBuffer> spare = new();
    private IObjectPoolMonitor? monitor;
    private long inUse;
    private long made;

    /// <summary>
    /// Blocks handed out and not yet given back: what the caches hold (a cache that is dropped when its queue moves to
    /// another silo leaves its blocks to the garbage collector without giving them back, and they stay counted here).
    /// </summary>
    public long InUse => Interlocked.Read(ref inUse);

    /// <summary>Blocks kept for reuse.</summary>
    public int Spare
    {
        get
        {
            lock (spare)
            {
                return spare.Count;
            }
        }
    }

    /// <summary>Blocks made since the silo started (a block reused from the spares is not counted again).</summary>
    public long Made => Interlocked.Read(ref made);

    /// <summary>
    /// Reports to the meters <paramref name="create"/> makes, made on the first call only: every queue's cache shares this
    /// pool, and each monitor Orleans makes registers its own instruments.
    /// </summary>
    internal void AttachOnce(Func<IObjectPoolMonitor> create)
    {
        lock (spare)
        {
            monitor ??= create();
        }
    }

    public FixedSizeBuffer Allocate()
    {
        FixedSizeBuffer? block = null;
        int spares;
        lock (spare)
        {
            spare.TryPop(out block);
            spares = spare.Count;
        }

        if (block is null)
        {
            block = new FixedSizeBuffer(options.BlockBytes);
            Interlocked.Increment(ref made);
            Volatile.Read(ref monitor)?.TrackObjectAllocated();
        }

        Interlocked.Increment(ref inUse);
        block.Pool = this;
        Report(spares);
        return block;
    }

    public void Free(FixedSizeBuffer resource)
    {
        Interlocked.Decrement(ref inUse);
        bool kept;
        int spares;
        lock (spare)
        {
            kept = spare.Count < options.SpareBlocks;
            if (kept)
            {
                spare.Push(resource);
            }

            spares = spare.Count;
        }

        if (!kept)
        {
            Volatile.Read(ref monitor)?.TrackObjectReleased();
        }

        Report(spares);
    }

    private void Report(int spares)
    {
        var claimed = Interlocked.Read(ref inUse);
        Volatile.Read(ref monitor)?.Report(claimed + spares, spares, claimed);
    }
}
