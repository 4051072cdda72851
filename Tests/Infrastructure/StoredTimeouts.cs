using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>What a cluster stores for payment timeouts, read from its first silo's storage: nothing is activated.</summary>
public static class StoredTimeouts
{
    /// <summary>The stored deadlines of a payment deadline shard, its open record's and its pages': order id → deadline.</summary>
    public static async Task<IReadOnlyDictionary<string, DateTimeOffset>> DeadlinesAsync(TestCluster cluster, int shard) =>
        (await DeadlineRecordsAsync(cluster, shard)).Merged();

    /// <summary>A payment deadline shard's stored records as they are: its open record, and each page it lists.</summary>
    public static Task<StoredShardPages<DateTimeOffset>> DeadlineRecordsAsync(TestCluster cluster, int shard)
    {
        var services = SiloServices(cluster);
        return StoredShardPages<DateTimeOffset>.ReadAsync<PaymentDeadlineShardState>(services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders),
            services.GetRequiredService<IGrainFactory>().GetGrain<IPaymentDeadlineShardGrain>(shard).GetGrainId(), "deadlines");
    }

    /// <summary>Whether a page record of a payment deadline shard exists, listed or not.</summary>
    public static async Task<bool> DeadlinePageExistsAsync(TestCluster cluster, int shard, long number)
    {
        var services = SiloServices(cluster);
        var page = new GrainState<ShardPage<DateTimeOffset>>();
        await services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders).ReadStateAsync($"deadlines.{number}",
            services.GetRequiredService<IGrainFactory>().GetGrain<IPaymentDeadlineShardGrain>(shard).GetGrainId(), page);
        return page.RecordExists;
    }

    /// <summary>The names of one order grain's stored reminders, from the silo's reminder table.</summary>
    public static async Task<IReadOnlyList<string>> OrderRemindersAsync(TestCluster cluster, string orderId) =>
        (await SiloServices(cluster).GetRequiredService<IReminderTable>().ReadRows(GrainId.Create("order", orderId)))
        .Reminders.Select(r => r.ReminderName).ToArray();

    private static IServiceProvider SiloServices(TestCluster cluster) => ((InProcessSiloHandle)cluster.GetActiveSilos().First()).SiloHost.Services;
}
