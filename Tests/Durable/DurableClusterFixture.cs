using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// Two silos on the durable profile against the Azurite of <c>./test.sh</c>: Azure Table grain state, Azure Queue
/// streams, Azure Table membership (not the test cluster's in-memory one, so any silo can die) and Azure Table
/// reminders. Cluster and service ids are unique per run, so queues and rows of earlier runs are never read.
/// Drills: <c>points</c> always fails <c>OrderPaid</c> of <c>stuck-</c> orders (a retry that stays pending);
/// <c>sms</c> takes 1.5 s per event of <c>kill-</c> orders, so a silo crash finds events in inboxes, not yet applied.
/// </summary>
public sealed class DurableClusterFixture : IAsyncLifetime
{
    public const int Silos = 2;

    private readonly string _id = $"durable-{Guid.NewGuid():N}"[..20];

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public string ServiceId => _id;

    public async Task InitializeAsync() => Cluster = await DeployAsync();

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
    }

    /// <summary>Every silo dies at once (no graceful shutdown), then a new cluster with the same ids starts on the same storage.</summary>
    public async Task CrashAndRestartEverySiloAsync()
    {
        foreach (var silo in Cluster.Silos.ToArray())
        {
            await Cluster.KillSiloAsync(silo);
        }

        await Cluster.KillClientAsync();
        await Cluster.DisposeAsync();
        Cluster = await DeployAsync();
    }

    /// <summary>Brings the cluster back to <see cref="Silos"/> silos after a test took one away.</summary>
    public async Task RestoreSilosAsync()
    {
        var missing = Silos - Cluster.GetActiveSilos().Count();
        if (missing > 0)
        {
            await Cluster.StartAdditionalSilosAsync(missing);
        }
    }

    public IEnumerable<DrillBoard> DrillBoards => Cluster.GetActiveSilos()
        .Select(silo => ((InProcessSiloHandle)silo).SiloHost.Services.GetRequiredService<DrillBoard>());

    private async Task<TestCluster> DeployAsync()
    {
        _ = Azurite.ConnectionString; // fail with the "run ./test.sh" message before building anything
        var builder = new TestClusterBuilder(Silos);
        builder.Options.ClusterId = _id;
        builder.Options.ServiceId = _id;
        builder.Options.UseTestClusterMembership = false;
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseAzureOrderStorage(new AzureOrderStorageOptions { ConnectionString = Azurite.ConnectionString })
                .AddOrderMessaging();
            siloBuilder.Services.Configure<OrderMessagingOptions>(o =>
            {
                o.OutboxRetryPeriod = TimeSpan.FromSeconds(1);
                o.GapRepairAfter = TimeSpan.FromSeconds(10);
                // Keeps a failing stuck- order retrying (never parked) with a short backoff, so its retry is
                // pending whenever the test looks, and resumes within seconds once the drill is cleared.
                o.SubscriberRetry["points"] = new RetryPolicy
                {
                    MaxAttempts = 100,
                    InitialBackoff = TimeSpan.FromSeconds(2),
                    MaxBackoff = TimeSpan.FromSeconds(4),
                };
            });
            siloBuilder.Services.Configure<DrillOptions>(d =>
            {
                d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid", OrderIdPrefix = "stuck-" };
                d["sms"] = new SubscriberDrill { ExtraDelayMs = 1500, OrderIdPrefix = "kill-" };
            });
        }
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder clientBuilder)
        {
            // The test client reads the gateways from the membership table, so it follows silos that die and new
            // ones that join. A call stuck on a dead silo gives up after 10 s (default 30 s) and is retried; 5 s was tried and
            // under load on 2 cores it timed out healthy calls too, which retried and added load.
            clientBuilder.UseAzureStorageClustering(o => o.TableServiceClient = new TableServiceClient(Azurite.ConnectionString));
            clientBuilder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
            // Re-read the gateway list every 2 s (default 1 min), so a gateway the cluster declared dead is dropped
            // quickly even when its connection does not break.
            clientBuilder.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
        }
    }
}

[CollectionDefinition(Name)]
public sealed class DurableCollection : ICollectionFixture<DurableClusterFixture>
{
    public const string Name = "durable";
}
