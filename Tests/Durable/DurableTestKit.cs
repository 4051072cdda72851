using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// What every effect grain holds for one order of the durable tests (one user, SKU, coupon and activity per order):
/// points and GMV balances with their processed-key counts, the coupon's redeemed and reserved uses, the SKU's sold,
/// reserved and available units, and the replica row.
/// </summary>
public sealed record OrderEffects(
    decimal Points, long PointsEntries, long CouponRedeemed, long CouponReserved, decimal Gmv, long GmvEntries,
    long StockSold, long StockReserved, long StockAvailable, ReplicaRow Replica)
{
    /// <summary>Read from storage (<see cref="IStoredStateGrain"/>): no effect grain is activated to answer.</summary>
    public static async Task<OrderEffects> ReadAsync(IGrainFactory grains, string orderId)
    {
        var stored = grains.GetGrain<IStoredStateGrain>(0);
        async Task<StoredLedger> Ledger(LedgerKind kind, string key) => (await stored.ReadLedgersAsync(kind, [key]))[0];
        var points = await Ledger(LedgerKind.Points, UserOf(orderId));
        var coupon = await Ledger(LedgerKind.Coupon, CouponOf(orderId));
        var gmv = await Ledger(LedgerKind.Gmv, ActivityOf(orderId));
        var stock = await Ledger(LedgerKind.Stock, SkuOf(orderId));
        return new OrderEffects(
            points.Balance, points.Entries,
            coupon.Committed, coupon.Reserved,
            gmv.Balance, gmv.Entries,
            stock.Committed, stock.Reserved, stock.Available,
            (await stored.ReadReplicasAsync([orderId]))[0] ?? new ReplicaRow(false, OrderStatus.None, 0, 0, 0, 0));
    }

    /// <summary>
    /// The effects of a placed → paid → shipped → received order of <paramref name="quantity"/> at <paramref name="price"/>,
    /// each applied once: its stock reservation sold, its coupon use redeemed, nothing left reserved.
    /// </summary>
    public static OrderEffects OfReceivedOrder(int quantity, decimal price) => new(
        decimal.Floor(quantity * price), 1, 1, 0, quantity * price, 1, quantity, 0, OrderDriver.StockPerSku - quantity,
        new ReplicaRow(true, OrderStatus.Received, quantity * price, 4, 0, 4));

    /// <summary>Stock and coupon for each of these orders (<see cref="Inventory"/>), before they are placed.</summary>
    public static Task EnsureInventoryAsync(IGrainFactory grains, IEnumerable<(string Id, int Quantity, decimal Price)> plans) =>
        Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (plan, _) =>
            await Inventory.EnsureAsync(grains, Items(plan.Id, plan.Quantity, plan.Price), CouponOf(plan.Id)));

    public static string UserOf(string orderId) => $"user-{orderId}";
    public static string SkuOf(string orderId) => $"sku-{orderId}";
    public static string CouponOf(string orderId) => $"coupon-{orderId}";
    public static string ActivityOf(string orderId) => $"activity-{orderId}";

    public static IReadOnlyList<OrderLine> Items(string orderId, int quantity, decimal price) => OrderDriver.Items((SkuOf(orderId), quantity, price));

    public static string Describe(OrderReport report) =>
        $"order {report.Order.OrderId} at {report.Order.LastSequence} (published {report.Order.PublishedSequence}): " +
        string.Join(", ", report.Subscribers.Select(s =>
            $"{s.Subscriber}={s.AppliedSequence}{(s.Parked ? " parked" : "")} runs {s.HandlerRuns} attempts {s.Attempts} [{string.Join(",", s.BufferedSequences)}]"));
}
