using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// One-silo clusters over <see cref="SurvivingGrainStorage"/>: a test starts one, kills it, and starts another over
/// the same records, as a process restart over a real database would. Streams and reminders stay in memory (they die
/// with the silo); the relay looks 1 s after a mark, every 200 ms.
/// </summary>
public static class SurvivingCluster
{
    public static async Task<TestCluster> StartAsync<TConfigurator>(string? scope = null) where TConfigurator : ISiloConfigurator, new()
    {
        var builder = new TestClusterBuilder(1);
        if (scope is not null)
        {
            builder.Properties[SurvivingGrainStorage.ScopeKey] = scope;
        }

        builder.AddSiloBuilderConfigurator<TConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    public static async Task StopAsync(TestCluster cluster)
    {
        await cluster.StopAllSilosAsync();
        await cluster.DisposeAsync();
    }

    /// <summary>The configuration every such silo shares; a test's configurator adds its own settings after it.</summary>
    public static void Configure(ISiloBuilder silo)
    {
        SurvivingGrainStorage.AddTo(silo, StorageNames.Orders, StorageNames.Subscribers, StorageNames.Ledgers, StorageNames.FlashSales);
        silo.AddMemoryGrainStorage(StorageNames.PubSub)
            .AddMemoryStreams(OrderStreams.ProviderName)
            .UseInMemoryReminderService()
            .AddOrderMessaging();
        silo.Services.Configure<OrderRelayOptions>(o =>
        {
            o.SettleAfter = TimeSpan.FromSeconds(1);
            o.Period = TimeSpan.FromMilliseconds(200);
        });
    }
}
