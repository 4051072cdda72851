using OrderFlow.Contracts;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>Setting up a flash sale and reading what it did, from the sale's answers and from stored orders.</summary>
public static class FlashSaleKit
{
    public static FlashSaleSpec Spec(string sku, long stock, int rate, int perUserLimit = 1, int buffer = FlashSaleLimits.DefaultBuffer,
        DateTimeOffset? startsAt = null) =>
        new(sku, stock, rate, startsAt ?? DateTimeOffset.UtcNow.AddSeconds(-1), perUserLimit, buffer, 9.90m);

    /// <summary>Sets the SKU's stock to <paramref name="skuUnits"/> and creates the sale; returns the sale's grain.</summary>
    public static async Task<IFlashSaleGrain> CreateAsync(IGrainFactory grains, string saleId, FlashSaleSpec spec, long? skuUnits = null)
    {
        var stock = await grains.GetGrain<IStockGrain>(spec.Sku).SetAvailableAsync(skuUnits ?? spec.Stock);
        Assert.True(stock.Accepted, stock.Message);
        var sale = grains.GetGrain<IFlashSaleGrain>(saleId);
        var created = await sale.CreateAsync(spec);
        Assert.True(created.Accepted, created.Message);
        return sale;
    }

    /// <summary><paramref name="count"/> distinct user ids that all hash to <paramref name="shard"/>.</summary>
    public static IReadOnlyList<string> UsersOfShard(string prefix, int shard, int count) =>
        Enumerable.Range(0, int.MaxValue).Select(i => $"{prefix}-{i}").Where(u => FlashSaleLimits.ShardOf(u) == shard).Take(count).ToList();

    /// <summary>Waits until every accepted request has its final answer (backlog 0), as the shards' stored state says.</summary>
    public static Task<FlashSaleStatus> DrainedAsync(IFlashSaleGrain sale, TimeSpan timeout) =>
        Eventually.Until(sale.GetStatusAsync, s => s.Accepted > 0 && s.Backlog == 0 && s.Processed == s.Accepted, timeout,
            s => $"sale {s.SaleId}: accepted {s.Accepted}, processed {s.Processed}, won {s.Won}, backlog {s.Backlog}");

    /// <summary>When each of <paramref name="orderIds"/> was placed, from its stored <c>OrderPlaced</c> event (missing orders left out).</summary>
    public static async Task<IReadOnlyList<DateTimeOffset>> PlacedAtAsync(IGrainFactory siloGrains, IReadOnlyList<string> orderIds)
    {
        var stored = siloGrains.GetGrain<IStoredStateGrain>(0);
        var placed = new List<DateTimeOffset>();
        foreach (var chunk in orderIds.Chunk(100))
        {
            placed.AddRange((await stored.ReadOrderDetailsAsync(chunk)).Where(o => o.Exists)
                .Select(o => o.Events.OfType<OrderPlaced>().Single().OccurredAt));
        }

        placed.Sort();
        return placed;
    }

    /// <summary>The most placements inside any window of <paramref name="window"/> (sliding, from each placement on).</summary>
    public static int MaxInWindow(IReadOnlyList<DateTimeOffset> sorted, TimeSpan window)
    {
        var best = 0;
        var start = 0;
        for (var end = 0; end < sorted.Count; end++)
        {
            while (sorted[end] - sorted[start] >= window)
            {
                start++;
            }

            best = Math.Max(best, end - start + 1);
        }

        return best;
    }
}
