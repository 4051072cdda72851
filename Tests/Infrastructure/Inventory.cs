using System.Collections.Concurrent;
using OrderFlow.Contracts;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// Stock and coupons for test orders (issue 11: a placement reserves each line's SKU and one use of its coupon, and is
/// refused for a SKU without a stock record or a coupon never issued). Sets <see cref="OrderDriver.StockPerSku"/> units
/// on each SKU that has no stock record yet and issues <see cref="OrderDriver.UsesPerCoupon"/> uses of a coupon that was
/// never issued; what already exists is left alone, so tests sharing a SKU keep one record.
/// </summary>
public static class Inventory
{
    // Setting stock is absolute: two tests racing to create the same SKU must not both set it (the second would hand
    // back units the first one's order already reserved). One gate per SKU or coupon, for the whole test run.
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.Ordinal);

    public static async Task EnsureAsync(IGrainFactory grains, IReadOnlyList<OrderLine> items, string? coupon)
    {
        var skus = items.Select(line => line.Sku).Distinct(StringComparer.Ordinal).ToArray();
        await Task.WhenAll(skus.Select(sku => EnsureStockAsync(grains, sku)));
        if (coupon is not null)
        {
            await EnsureCouponAsync(grains, coupon);
        }
    }

    public static Task EnsureStockAsync(IGrainFactory grains, string sku) => Gated($"stock:{sku}", async () =>
    {
        var stock = grains.GetGrain<IStockGrain>(sku);
        if (!(await stock.GetAsync()).Exists)
        {
            var set = await stock.SetAvailableAsync(OrderDriver.StockPerSku);
            Assert.True(set.Accepted, $"stock set {sku} {OrderDriver.StockPerSku} refused: {set.Code} {set.Message}");
        }
    });

    public static Task EnsureCouponAsync(IGrainFactory grains, string coupon) => Gated($"coupon:{coupon}", async () =>
    {
        var uses = grains.GetGrain<ICouponGrain>(coupon);
        if (!(await uses.GetAsync()).Exists)
        {
            var issued = await uses.IssueAsync(OrderDriver.UsesPerCoupon);
            Assert.True(issued.Accepted, $"coupon issue {coupon} {OrderDriver.UsesPerCoupon} refused: {issued.Code} {issued.Message}");
        }
    });

    private static async Task Gated(string key, Func<Task> action)
    {
        var gate = Gates.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            await action();
        }
        finally
        {
            gate.Release();
        }
    }
}
