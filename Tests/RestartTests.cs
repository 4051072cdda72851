using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// A pending retry is part of the subscriber's durable state: it survives the silo dying and resumes, with the
/// attempts already made, in a new cluster that reads the same storage.
/// </summary>
public sealed class RestartTests
{
    [Fact]
    public async Task A_pending_retry_survives_a_silo_crash_and_resumes_after_restart_applying_the_effect_once()
    {
        var id = OrderDriver.NewId("restart-");
        var user = $"user-{id}";
        decimal total;

        var first = await StartAsync<FailingPointsSilo>();
        try
        {
            var orders = new OrderDriver(first.GrainFactory);
            total = await orders.PlaceAsync(id, user, OrderDriver.Items(("sku-restart", 2, 21.5m)));
            await orders.PayAsync(id, total);
            var pending = await Eventually.Until(() => orders.Operations.InspectAsync(id),
                r => r.Subscribers.Single(s => s.Subscriber == "points").Attempts >= 2,
                OrderDriver.CatchUpTimeout, r => Describe(r, "points"));
            var points = pending.Subscribers.Single(s => s.Subscriber == "points");
            Assert.Equal(1, points.AppliedSequence);
            Assert.Contains(2L, points.BufferedSequences);
            Assert.NotNull(points.NextAttemptAt);
        }
        finally
        {
            await first.KillSiloAsync(first.Primary!);
            await first.DisposeAsync();
        }

        var second = await StartAsync<HealthySilo>();
        try
        {
            var orders = new OrderDriver(second.GrainFactory);
            var resumed = await orders.Operations.InspectAsync(id);
            var points = resumed.Subscribers.Single(s => s.Subscriber == "points");
            Assert.Equal(OrderStatus.Paid, resumed.Order.Status);
            Assert.True(points.Attempts >= 2, $"the new cluster lost the retry count: {Describe(resumed, "points")}");
            Assert.Equal(1, points.AppliedSequence);

            var done = await orders.WaitCaughtUpAsync(id);
            Assert.Equal(0, done.Subscribers.Single(s => s.Subscriber == "points").Attempts);
            var account = await second.GrainFactory.GetGrain<IPointsAccountGrain>(user).GetAsync();
            Assert.Equal(decimal.Floor(total), account.Balance);
            Assert.Single(account.Entries);
        }
        finally
        {
            await second.StopAllSilosAsync();
            await second.DisposeAsync();
        }
    }

    private static string Describe(OrderReport report, string subscriber) =>
        $"order {report.Order.OrderId}: {report.Subscribers.Single(s => s.Subscriber == subscriber)}";

    private static async Task<TestCluster> StartAsync<TConfigurator>() where TConfigurator : ISiloConfigurator, new()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static void ConfigureDurable(ISiloBuilder silo)
    {
        SurvivingGrainStorage.AddTo(silo, StorageNames.Orders, StorageNames.Subscribers, StorageNames.Ledgers);
        silo.AddMemoryGrainStorage(StorageNames.PubSub)
            .AddMemoryStreams(OrderStreams.ProviderName)
            .UseInMemoryReminderService()
            .AddOrderMessaging();
        silo.Services.Configure<OrderMessagingOptions>(o => o.Retry = new RetryPolicy
        {
            MaxAttempts = 20,
            InitialBackoff = TimeSpan.FromMilliseconds(200),
            MaxBackoff = TimeSpan.FromSeconds(1),
        });
    }

    private sealed class FailingPointsSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ConfigureDurable(siloBuilder);
            siloBuilder.Services.Configure<DrillOptions>(d => d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid" });
        }
    }

    private sealed class HealthySilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => ConfigureDurable(siloBuilder);
    }
}
