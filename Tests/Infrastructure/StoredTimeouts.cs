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
    /// <summary>The stored record of a payment deadline shard: order id → deadline.</summary>
    public static async Task<IReadOnlyDictionary<string, DateTimeOffset>> DeadlinesAsync(TestCluster cluster, int shard)
    {
        var services = SiloServices(cluster);
        var record = new GrainState<PaymentDeadlineShardState>();
        await services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders)
            .ReadStateAsync("deadlines", services.GetRequiredService<IGrainFactory>().GetGrain<IPaymentDeadlineShardGrain>(shard).GetGrainId(), record);
        return record.State?.Due ?? [];
    }

    /// <summary>The names of one order grain's stored reminders, from the silo's reminder table.</summary>
    public static async Task<IReadOnlyList<string>> OrderRemindersAsync(TestCluster cluster, string orderId) =>
        (await SiloServices(cluster).GetRequiredService<IReminderTable>().ReadRows(GrainId.Create("order", orderId)))
        .Reminders.Select(r => r.ReminderName).ToArray();

    private static IServiceProvider SiloServices(TestCluster cluster) => ((InProcessSiloHandle)cluster.GetActiveSilos().First()).SiloHost.Services;
}
