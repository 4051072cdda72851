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
    public static async Task<IReadOnlyDictionary<string, DateTimeOffset>> DeadlinesAsync(TestCluster cluster, int shard)
    {
        var (open, pages) = await DeadlineRecordsAsync(cluster, shard);
        return pages.SelectMany(page => page.Due).Concat(open).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Last().Value);
    }

    /// <summary>
    /// A payment deadline shard's stored records as they are: its open record's deadlines, and each page it lists with
    /// the page record's deadlines (empty if the record is missing).
    /// </summary>
    public static async Task<(IReadOnlyDictionary<string, DateTimeOffset> Open, IReadOnlyList<(long Number, bool Exists, IReadOnlyDictionary<string, DateTimeOffset> Due)> Pages)>
        DeadlineRecordsAsync(TestCluster cluster, int shard)
    {
        var services = SiloServices(cluster);
        var storage = services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders);
        var grainId = services.GetRequiredService<IGrainFactory>().GetGrain<IPaymentDeadlineShardGrain>(shard).GetGrainId();
        var open = new GrainState<PaymentDeadlineShardState>();
        await storage.ReadStateAsync("deadlines", grainId, open);
        var pages = new List<(long, bool, IReadOnlyDictionary<string, DateTimeOffset>)>();
        foreach (var number in open.State?.Pages ?? [])
        {
            var page = new GrainState<ShardPage<DateTimeOffset>>();
            await storage.ReadStateAsync($"deadlines.{number}", grainId, page);
            pages.Add((number, page.RecordExists, page.State?.Entries ?? []));
        }

        return (open.State?.Due ?? [], pages);
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
