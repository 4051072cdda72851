using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// A silo whose handler retries run out fast — 3 attempts, about 50 ms apart, so a failing handler parks within a
/// fraction of a second — while transient failures are retried every ~100 ms for up to a minute, with fault-injecting
/// storage, so a test can make storage fail for far longer than the handler's schedule. Tests filter their faults on
/// their own grains' keys, or run alone in this collection.
/// </summary>
public sealed class StorageOutageFixture : SiloFixture<StorageOutageFixture.Configurator>
{
    public const int MaxAttempts = 3;

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => ConfigureOutageSilo(siloBuilder, giveUpAfter: TimeSpan.FromMinutes(1));
    }

    /// <summary>The configuration both outage fixtures share; they differ in how long transient failures are waited out.</summary>
    internal static void ConfigureOutageSilo(ISiloBuilder siloBuilder, TimeSpan giveUpAfter)
    {
        // Fault injection last: it wraps the storage providers registered before it.
        siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
        siloBuilder.Services.Configure<OrderMessagingOptions>(o =>
        {
            o.GapRepairAfter = TimeSpan.FromSeconds(1);
            o.OutboxRetryPeriod = TimeSpan.FromMilliseconds(250);
            o.Retry = new RetryPolicy
            {
                MaxAttempts = MaxAttempts,
                InitialBackoff = TimeSpan.FromMilliseconds(50),
                MaxBackoff = TimeSpan.FromMilliseconds(50),
            };
        });
        siloBuilder.Services.Configure<TransientRetryOptions>(o =>
        {
            o.InitialBackoff = TimeSpan.FromMilliseconds(100);
            o.MaxBackoff = TimeSpan.FromMilliseconds(100);
            o.GiveUpAfter = giveUpAfter;
        });
    }
}

/// <summary>As <see cref="StorageOutageFixture"/>, but transient failures are waited out for only half a second.</summary>
public sealed class TransientGiveUpFixture : SiloFixture<TransientGiveUpFixture.Configurator>
{
    public static readonly TimeSpan GiveUpAfter = TimeSpan.FromMilliseconds(500);

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => StorageOutageFixture.ConfigureOutageSilo(siloBuilder, GiveUpAfter);
    }
}

[CollectionDefinition(Name)]
public sealed class StorageOutageCollection : ICollectionFixture<StorageOutageFixture>
{
    public const string Name = "storage-outage";
}

[CollectionDefinition(Name)]
public sealed class TransientGiveUpCollection : ICollectionFixture<TransientGiveUpFixture>
{
    public const string Name = "transient-give-up";
}
