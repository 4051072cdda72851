using OrderFlow.Contracts;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>Places and moves test orders, and waits for the subscribers to catch up.</summary>
public sealed class OrderDriver(IGrainFactory grains)
{
    public static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Units a test SKU gets when a test first places an order on it (<see cref="Inventory.EnsureAsync"/>).</summary>
    public const long StockPerSku = 1_000;

    /// <summary>Uses a test coupon is issued with when a test first places an order with it.</summary>
    public const long UsesPerCoupon = 1_000;

    public static IReadOnlyList<OrderLine> Items(params (string Sku, int Quantity, decimal Price)[] lines) =>
        lines.Select(l => new OrderLine(l.Sku, l.Quantity, l.Price)).ToArray();

    public IGrainFactory Grains => grains;

    public IOrderGrain Order(string orderId) => grains.GetGrain<IOrderGrain>(orderId);

    public IOperationsGrain Operations => grains.GetGrain<IOperationsGrain>(0);

    public static string NewId(string prefix) => $"{prefix}{Guid.NewGuid():N}";

    /// <summary>Stock for each SKU of <paramref name="items"/> and uses of <paramref name="coupon"/>, if they have none yet.</summary>
    public Task EnsureInventoryAsync(IReadOnlyList<OrderLine> items, string? coupon = null) => Inventory.EnsureAsync(grains, items, coupon);

    public async Task<decimal> PlaceAsync(string orderId, string userId, IReadOnlyList<OrderLine> items, string? coupon = null, string? activity = null)
    {
        await EnsureInventoryAsync(items, coupon);
        var result = await Order(orderId).PlaceAsync(new PlaceOrder($"{orderId}-place", userId, items, coupon, activity));
        result.EnsureAccepted();
        return items.Sum(i => i.Quantity * i.UnitPrice);
    }

    public async Task PayAsync(string orderId, decimal amount) =>
        (await Order(orderId).PayAsync(new PayOrder($"{orderId}-pay", $"pay-{orderId}", amount))).EnsureAccepted();

    public async Task ShipAsync(string orderId) => (await Order(orderId).ShipAsync(new ShipOrder($"{orderId}-ship"))).EnsureAccepted();

    public async Task ReceiveAsync(string orderId) => (await Order(orderId).ConfirmReceiptAsync(new ConfirmReceipt($"{orderId}-receive"))).EnsureAccepted();

    public async Task CancelAsync(string orderId) => (await Order(orderId).CancelAsync(new CancelOrder($"{orderId}-cancel"))).EnsureAccepted();

    /// <summary>Place, pay, ship, receive: events 1 to 4.</summary>
    public async Task<decimal> FullLifecycleAsync(string orderId, string userId, IReadOnlyList<OrderLine> items, string? coupon = null, string? activity = null)
    {
        var total = await PlaceAsync(orderId, userId, items, coupon, activity);
        await PayAsync(orderId, total);
        await ShipAsync(orderId);
        await ReceiveAsync(orderId);
        return total;
    }

    /// <summary>Waits until every subscriber has applied the order's last event (or, if allowed, parked on it).</summary>
    public Task<OrderReport> WaitCaughtUpAsync(string orderId, bool allowParked = false) =>
        Eventually.Until(
            () => Operations.InspectAsync(orderId),
            report => report.Order.LastSequence > 0 && report.Subscribers.All(s => s.AppliedSequence == report.Order.LastSequence || (allowParked && s.Parked)),
            CatchUpTimeout,
            report => $"order {orderId} at {report.Order.LastSequence}; subscribers " +
                      string.Join(", ", report.Subscribers.Select(s => $"{s.Subscriber}={s.AppliedSequence}{(s.Parked ? " parked" : "")} [{string.Join(",", s.BufferedSequences)}]")));

    public async Task<IReadOnlyList<OrderReport>> WaitCaughtUpAsync(IReadOnlyList<string> orderIds)
    {
        var reports = new List<OrderReport>();
        foreach (var batch in orderIds.Chunk(100))
        {
            var ready = await Eventually.Until(
                () => Operations.InspectManyAsync(batch),
                all => all.All(r => r.Subscribers.All(s => s.AppliedSequence == r.Order.LastSequence)),
                CatchUpTimeout,
                all => string.Join("; ", all.Where(r => r.Subscribers.Any(s => s.AppliedSequence != r.Order.LastSequence)).Take(3)
                    .Select(r => $"order {r.Order.OrderId} at {r.Order.LastSequence}: " +
                                 string.Join(", ", r.Subscribers.Select(s => $"{s.Subscriber}={s.AppliedSequence}{(s.Parked ? " parked" : "")}")))));
            reports.AddRange(ready);
        }

        return reports;
    }
}
