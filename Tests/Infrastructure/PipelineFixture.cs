using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// One embedded-profile silo shared by the pipeline tests, with fast retries (so parking takes about a second),
/// a one-second gap repair, the chaos transport, and drills scoped by order-id prefix so tests don't meet:
/// <c>slow-</c> (sms +200 ms per event), <c>broken-</c> (inventory always fails), <c>flaky-</c> (coupon and
/// activity-gmv fail 20 % of attempts), <c>poison-</c> (points always fails OrderPaid). Its grain storage can be made to
/// fail on demand (<see cref="Faults"/>); a test filters its faults on its own grains' keys.
/// </summary>
public sealed class PipelineFixture : IAsyncLifetime
{
    public const int MaxAttempts = 5;

    public TestCluster Cluster { get; private set; } = null!;

    /// <summary>The relay's page size here (<see cref="OrderRelayOptions.PageSize"/>).</summary>
    public const int RelayPageSize = 4;

    /// <summary>
    /// Grains as the silo itself reaches them (its hosted client): internal grains (ledgers, replicas, inboxes) answer
    /// here, while the external <c>Cluster.Client</c> may call only the client-callable interfaces.
    /// </summary>
    public IGrainFactory Grains => SiloGrains.Of(Cluster);

    public DrillBoard Drills => ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredService<DrillBoard>();

    public StorageFaults Faults => ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredService<StorageFaults>();

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            // Fault injection last: it wraps the storage providers registered before it.
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection();
            siloBuilder.Services.Replace(ServiceDescriptor.Singleton<IOrderEventPublisher, ChaosPublisher>());
            siloBuilder.Services.Configure<OrderMessagingOptions>(o =>
            {
                o.GapRepairAfter = TimeSpan.FromSeconds(1);
                // Small, so a test can build an event larger than the transport is allowed to carry.
                o.MaxEventBytes = 8 * 1024;
                o.Retry = new RetryPolicy
                {
                    MaxAttempts = MaxAttempts,
                    InitialBackoff = TimeSpan.FromMilliseconds(20),
                    MaxBackoff = TimeSpan.FromMilliseconds(300),
                };
                // The flaky subscribers get the production attempt count: at 20 % failures, 5 attempts would
                // park about one event in 3,000, which is the drill working as designed but not what that test checks.
                foreach (var flaky in new[] { "coupon", "activity-gmv" })
                {
                    o.SubscriberRetry[flaky] = new RetryPolicy
                    {
                        MaxAttempts = 10,
                        InitialBackoff = TimeSpan.FromMilliseconds(20),
                        MaxBackoff = TimeSpan.FromMilliseconds(300),
                    };
                }
            });
            // The relay looks 2 s after a mark, every 200 ms: tests of lost events finish in seconds.
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.SettleAfter = TimeSpan.FromSeconds(2);
                o.Period = TimeSpan.FromMilliseconds(200);
                o.MaxRecheck = TimeSpan.FromSeconds(2);
                o.PageSize = RelayPageSize; // small, so that every pipeline test runs across sealed relay pages too
                // Long enough that a test's deliveries are still waiting when its next mark goes (RelayBatcherTests).
                o.DeliveredDelay = TimeSpan.FromSeconds(1);
            });
            siloBuilder.Services.Configure<DrillOptions>(d =>
            {
                d["sms"] = new SubscriberDrill { ExtraDelayMs = 200, OrderIdPrefix = "slow-" };
                d["inventory"] = new SubscriberDrill { FailureRate = 1.0, OrderIdPrefix = "broken-" };
                d["coupon"] = new SubscriberDrill { FailureRate = 0.2, OrderIdPrefix = "flaky-" };
                d["activity-gmv"] = new SubscriberDrill { FailureRate = 0.2, OrderIdPrefix = "flaky-" };
                d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid", OrderIdPrefix = "poison-" };
            });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PipelineCollection : ICollectionFixture<PipelineFixture>
{
    public const string Name = "pipeline";
}
