using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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

    /// <summary>
    /// The embedded profile: in-memory grain storage, memory streams and in-memory reminders. Nothing to install,
    /// nothing survives the silo. Use the durable profile for anything that must outlive a process.
    /// </summary>
    public static ISiloBuilder UseEmbeddedOrderStorage(this ISiloBuilder builder)
    {
        builder.AddMemoryGrainStorage(StorageNames.Orders)
            .AddMemoryGrainStorage(StorageNames.Subscribers)
            .AddMemoryGrainStorage(StorageNames.Ledgers)
            .AddMemoryGrainStorage(StorageNames.PubSub)
            .AddMemoryStreams(OrderStreams.ProviderName)
            .UseInMemoryReminderService();
        return builder;
    }
}
