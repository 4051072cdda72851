using System.Diagnostics;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// The payment timeout on the durable profile: an order's deadline is in its deadline shard's Azure Table row, so an
/// order placed just before every silo dies is still cancelled, once, by a cluster started afterwards — with no client
/// call touching it.
/// </summary>
[Collection(PaymentTimeoutDurableCollection.Name)]
public sealed class PaymentTimeoutDurableTests(PaymentTimeoutDurableFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task An_unpaid_order_placed_before_every_silo_died_is_cancelled_once_by_the_restarted_cluster_and_a_paid_one_never()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var unpaid = $"pt-unpaid-{run}";
        var paid = $"pt-paid-{run}";
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);
        var clock = Stopwatch.StartNew();
        await orders.PlaceAsync(unpaid, "user-pt", OrderDriver.Items(("sku-pt", 1, 5m)));
        var total = await orders.PlaceAsync(paid, "user-pt", OrderDriver.Items(("sku-pt", 2, 5m)));
        await orders.PayAsync(paid, total);

        await fixture.CrashAndRestartAsync();
        var crashedAfter = clock.Elapsed;
        // Otherwise the first cluster could have cancelled it and the test would prove nothing about the restart.
        Assert.True(crashedAfter < PaymentTimeoutDurableFixture.Timeout, $"the crash took {crashedAfter}, past the {PaymentTimeoutDurableFixture.Timeout} timeout");
        Assert.Equal(OrderStatus.Placed, (await fixture.ReadStoredAsync(unpaid)).Status);

        var stored = fixture.Cluster.GrainFactory.GetGrain<IStoredStateGrain>(0);
        var cancelled = await Eventually.Until(async () => (await stored.ReadOrdersAsync([unpaid])).Single(),
            o => o.Status == OrderStatus.Cancelled, TimeSpan.FromSeconds(120),
            o => $"order {unpaid}: expected Cancelled by the payment timeout after the restart, stored {o.Status} at {o.LastSequence}");
        var cancelledAfter = clock.Elapsed;

        // Once, and the paid order never: both hold past a few more retry periods.
        await Eventually.Holds(async () => await stored.ReadOrdersAsync([unpaid, paid]),
            all => (all[0].Status, all[0].LastSequence, all[1].Status, all[1].LastSequence) == (OrderStatus.Cancelled, 2, OrderStatus.Paid, 2),
            PaymentTimeoutDurableFixture.RetryPeriod * 4,
            all => $"order {unpaid}: {all[0].Status} at {all[0].LastSequence} (expected Cancelled at 2); order {paid}: {all[1].Status} at {all[1].LastSequence} (expected Paid at 2)");

        var state = await fixture.ReadStoredAsync(unpaid);
        var cancel = Assert.IsType<OrderCancelled>(state.Events[1]);
        Assert.Equal("payment timeout", cancel.Reason);
        Assert.Equal(2L, cancelled.LastSequence);
        output.WriteLine($"placed, crashed at {crashedAfter.TotalSeconds:0.0} s, cancelled by the new cluster by {cancelledAfter.TotalSeconds:0.0} s (timeout {PaymentTimeoutDurableFixture.Timeout.TotalSeconds} s)");
    }

    /// <summary>
    /// What the timeout costs in Orleans' reminder table: nothing per order. Forty orders of one deadline shard (twenty
    /// paid, twenty timed out) leave no reminder of their own; the shard's record holds each deadline before its
    /// placement is answered. The counter sees the whole reminder table, so the shard's, the relay shard's and the stock
    /// key's reminders are counted too: with one reminder per order, as before, there would be at least a registration
    /// and a removal per order (80 of them).
    /// </summary>
    [Fact]
    public async Task Paid_and_timed_out_orders_of_one_shard_register_no_reminder_of_their_own()
    {
        const int count = 20;
        var run = Guid.NewGuid().ToString("N")[..8];
        var shard = IOrderRelayGrain.ShardOf($"pt-cost-{run}");
        var ids = Enumerable.Range(0, 10_000).Select(i => $"pt-cost-{run}-{i}").Where(id => IOrderRelayGrain.ShardOf(id) == shard).Take(2 * count).ToArray();
        var (paid, unpaid) = (ids[..count], ids[count..]);
        var orders = new OrderDriver(fixture.Cluster.GrainFactory);

        var before = fixture.ReminderRequests();
        foreach (var id in paid)
        {
            var total = await orders.PlaceAsync(id, "user-pt", OrderDriver.Items(("sku-pt", 1, 5m)));
            Assert.True((await fixture.ReadStoredDeadlinesAsync(shard)).ContainsKey(id), $"order {id}: its deadline is not in the shard's stored record");
            await orders.PayAsync(id, total);
        }

        foreach (var id in unpaid)
        {
            await orders.PlaceAsync(id, "user-pt", OrderDriver.Items(("sku-pt", 1, 5m)));
        }

        // Twenty unpaid deadlines of one shard do not fit its open record: pages were sealed, none over the page size.
        var sealedPages = (await fixture.ReadDeadlineRecordsAsync(shard)).Pages;
        Assert.True(sealedPages.Count(page => page.Entries.Keys.Any(unpaid.Contains)) >= 2, $"{sealedPages.Count} pages stored");
        Assert.All(sealedPages, page => Assert.True(page.Exists && page.Entries.Count <= PaymentTimeoutDurableFixture.PageSize));

        await Eventually.Until(() => fixture.Cluster.GrainFactory.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync(unpaid),
            all => all.All(o => o.Status == OrderStatus.Cancelled), TimeSpan.FromSeconds(90),
            all => $"{all.Count(o => o.Status != OrderStatus.Cancelled)} of {count} orders not yet cancelled, e.g. {all.First(o => o.Status != OrderStatus.Cancelled).OrderId}");
        var requests = Difference(fixture.ReminderRequests(), before);

        // Every order of those pages was cancelled and disarmed: their records are deleted and no longer listed.
        var ours = sealedPages.Where(page => page.Entries.Keys.All(ids.Contains)).Select(page => page.Number).ToArray();
        Assert.NotEmpty(ours);
        await Eventually.Until(() => fixture.ReadDeadlineRecordsAsync(shard), r => !r.Pages.Any(page => ours.Contains(page.Number)),
            TimeSpan.FromSeconds(30), r => $"pages {string.Join(", ", r.Pages.Select(p => p.Number))} listed");
        // Deleted rows, not emptied ones left behind (the orders table deletes on clear): read the table itself.
        var table = new TableServiceClient(Azurite.ConnectionString).GetTableClient("OrderFlowOrders");
        var shardKey = $"payment-deadlines_{shard:X}";
        foreach (var number in ours)
        {
            var rows = await table.QueryAsync<TableEntity>(e => e.RowKey == $"deadlines.{number}").ToListAsync();
            Assert.DoesNotContain(rows, row => row.PartitionKey.EndsWith(shardKey, StringComparison.Ordinal));
        }

        output.WriteLine($"reminder table requests for {count} paid and {count} timed-out orders of one shard: {Describe(requests)}");
        foreach (var id in ids)
        {
            Assert.Empty(await fixture.RemindersOfAsync(id));
        }

        var registrations = requests.GetValueOrDefault("replace") + requests.GetValueOrDefault("insert") + requests.GetValueOrDefault("merge");
        Assert.True(registrations < count / 2 && requests.GetValueOrDefault("delete") < count / 2, Describe(requests));
    }

    private static Dictionary<string, long> Difference(IReadOnlyDictionary<string, long> after, IReadOnlyDictionary<string, long> before) =>
        after.ToDictionary(pair => pair.Key, pair => pair.Value - before.GetValueOrDefault(pair.Key));

    private static string Describe(IReadOnlyDictionary<string, long> requests) =>
        string.Join(", ", requests.Where(pair => pair.Value != 0).OrderBy(pair => pair.Key).Select(pair => $"{pair.Key} {pair.Value}"));
}

/// <summary>
/// One silo on the durable profile (Azure Table state and reminders, Azure Queue streams) with a 10 s payment timeout
/// and unpaid orders asked again after 1 s. Its own cluster, because a short timeout would cancel the unpaid orders of the other
/// durable tests.
/// </summary>
public sealed class PaymentTimeoutDurableFixture : IAsyncLifetime
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan RetryPeriod = TimeSpan.FromSeconds(1);

    /// <summary>Small, so that the shards seal and delete page records in Azure Table storage.</summary>
    public const int PageSize = 8;

    private readonly string _id = $"pt-{Guid.NewGuid():N}"[..20];

    public TestCluster Cluster { get; private set; } = null!;

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
    public async Task CrashAndRestartAsync()
    {
        foreach (var silo in Cluster.Silos.ToArray())
        {
            await Cluster.KillSiloAsync(silo);
        }

        await Cluster.KillClientAsync();
        await Cluster.DisposeAsync();
        Cluster = await DeployAsync();
    }

    /// <summary>The order's stored record, read from the silo's grain storage: the order grain is not activated.</summary>
    public async Task<OrderState> ReadStoredAsync(string orderId)
    {
        var storage = ((InProcessSiloHandle)Cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders);
        var record = new GrainState<OrderState>();
        await storage.ReadStateAsync("order", GrainId.Create("order", orderId), record);
        return record.State ?? new OrderState();
    }

    /// <summary>The stored record of a payment deadline shard, read from the silo's grain storage (nothing activated).</summary>
    public Task<IReadOnlyDictionary<string, DateTimeOffset>> ReadStoredDeadlinesAsync(int shard) => StoredTimeouts.DeadlinesAsync(Cluster, shard);

    public Task<StoredShardPages<DateTimeOffset>> ReadDeadlineRecordsAsync(int shard) => StoredTimeouts.DeadlineRecordsAsync(Cluster, shard);

    /// <summary>The stored reminders of one order grain, from the silo's reminder table (the order is not activated).</summary>
    public Task<IReadOnlyList<string>> RemindersOfAsync(string orderId) => StoredTimeouts.OrderRemindersAsync(Cluster, orderId);

    /// <summary>Requests the silo made to Orleans' reminder table so far, by operation (insert, replace, delete, read row, query).</summary>
    public IReadOnlyDictionary<string, long> ReminderRequests() =>
        ((InProcessSiloHandle)Cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredService<StorageOperationCounter>().Snapshot()
            .Where(c => c.Resource == "OrleansReminders")
            .SelectMany(c => new[] { (Key: c.Operation, Count: c.Requests), (Key: $"{c.Operation} failed", Count: c.Failed) })
            .GroupBy(c => c.Key)
            .ToDictionary(g => g.Key, g => g.Sum(c => c.Count));

    private async Task<TestCluster> DeployAsync()
    {
        _ = Azurite.ConnectionString;
        var builder = new TestClusterBuilder(1);
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
            siloBuilder.Services.Configure<OrderTimeoutOptions>(o =>
            {
                o.PaymentTimeout = Timeout;
                o.RetryPeriod = RetryPeriod;
                o.DeadlinePageSize = PageSize;
            });
        }
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder clientBuilder)
        {
            clientBuilder.UseAzureStorageClustering(o => o.TableServiceClient = new TableServiceClient(Azurite.ConnectionString));
            clientBuilder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
            clientBuilder.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PaymentTimeoutDurableCollection : ICollectionFixture<PaymentTimeoutDurableFixture>
{
    public const string Name = "payment-timeout-durable";
}
