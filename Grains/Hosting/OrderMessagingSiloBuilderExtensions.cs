using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.Streams;
using OrderFlow.Contracts;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Hosting;

public static class OrderMessagingSiloBuilderExtensions
{
    /// <summary>
    /// Adds the order messaging pipeline's services and options (sections <c>OrderMessaging</c>, <c>Drills</c> and
    /// <c>Benchmarks</c>).
    /// Storage and stream providers come from a profile, e.g. <see cref="UseEmbeddedOrderStorage"/>.
    /// </summary>
    public static ISiloBuilder AddOrderMessaging(this ISiloBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<OrderMessagingOptions>()
            .BindConfiguration(OrderMessagingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<DrillOptions>()
            .BindConfiguration(DrillOptions.SectionName)
            .Validate(drills => drills.Values.All(d => d.FailureRate is >= 0 and <= 1 && d.ExtraDelayMs is >= 0 and <= 600_000),
                "Drills: FailureRate must be between 0 and 1 and ExtraDelayMs between 0 and 600000")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IOrderEventPublisher, StreamOrderEventPublisher>();
        services.TryAddSingleton<DrillBoard>();
        services.TryAddSingleton<SubscriberMetrics>();
        services.TryAddSingleton<SubscriberServices>();
        services.TryAddSingleton<SubscriberCatalog>();
        services.AddOptions<BenchmarkOptions>().BindConfiguration(BenchmarkOptions.SectionName);
        services.TryAddSingleton<BenchDeliveryCounter>();
        return builder;
    }

    /// <summary>Configuration section of the order stream provider's own Orleans options (see <see cref="UseEmbeddedOrderStorage"/>).</summary>
    public const string StreamsSectionName = "OrderStreams";

    /// <summary>
    /// The embedded profile: in-memory grain storage, memory streams and in-memory reminders. Nothing to install,
    /// nothing survives the silo. Use the durable profile for anything that must outlive a process.
    /// <para>
    /// Tuned from the bench (docs/BENCHMARKS.md): grain state is stored with Orleans' binary serializer rather than
    /// the storage default (Newtonsoft JSON with type names, which dominated the silo's CPU profile), and the order
    /// stream resolves its subscribers from implicit subscriptions only, so a new order stream no longer activates a
    /// pub-sub rendezvous grain and writes its state. The stream provider's Orleans options can be set from the
    /// <c>OrderStreams</c> section: <c>PullingAgent</c> (<see cref="StreamPullingAgentOptions"/>),
    /// <c>CacheEviction</c> (<see cref="StreamCacheEvictionOptions"/>) and <c>Partitioning</c>
    /// (<see cref="HashRingStreamQueueMapperOptions"/>).
    /// </para>
    /// </summary>
    public static ISiloBuilder UseEmbeddedOrderStorage(this ISiloBuilder builder)
    {
        foreach (var store in new[] { StorageNames.Orders, StorageNames.Subscribers, StorageNames.Ledgers, StorageNames.PubSub })
        {
            builder.AddMemoryGrainStorage(store);
            builder.Services.AddOptions<MemoryGrainStorageOptions>(store)
                .Configure<Serializer>((options, serializer) => options.GrainStorageSerializer ??= new OrleansGrainStorageSerializer(serializer));
        }

        builder.AddMemoryStreams(OrderStreams.ProviderName, streams =>
            {
                // Only implicit subscriptions exist for orders (and the bench namespace).
                streams.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                streams.ConfigurePullingAgent(options => options.BindConfiguration($"{StreamsSectionName}:PullingAgent"));
                streams.ConfigureCacheEviction(options => options.BindConfiguration($"{StreamsSectionName}:CacheEviction"));
                streams.Configure<HashRingStreamQueueMapperOptions>(options => options.BindConfiguration($"{StreamsSectionName}:Partitioning"));
            })
            .UseInMemoryReminderService();
        return builder;
    }
}
