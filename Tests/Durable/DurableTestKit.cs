using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Durable;

/// <summary>What every effect grain holds for one order of the durable tests (one user, SKU, coupon and activity per order).</summary>
public sealed record OrderEffects(decimal Points, int PointsEntries, decimal Coupon, decimal Gmv, decimal Stock, ReplicaRow Replica)
{
    /// <summary>Read from storage (<see cref="IStoredStateGrain"/>): no effect grain is activated to answer.</summary>
    public static async Task<OrderEffects> ReadAsync(IGrainFactory grains, string orderId)
    {
        var stored = grains.GetGrain<IStoredStateGrain>(0);
        async Task<StoredLedger> Ledger(LedgerKind kind, string key) => (await stored.ReadLedgersAsync(kind, [key]))[0];
        var points = await Ledger(LedgerKind.Points, UserOf(orderId));
        return new OrderEffects(
            points.Balance,
            points.Entries,
            (await Ledger(LedgerKind.Coupon, CouponOf(orderId))).Balance,
            (await Ledger(LedgerKind.Gmv, ActivityOf(orderId))).Balance,
            (await Ledger(LedgerKind.Stock, SkuOf(orderId))).Balance,
            (await stored.ReadReplicasAsync([orderId]))[0] ?? new ReplicaRow(false, OrderStatus.None, 0, 0, 0, 0));
    }

    /// <summary>The effects of a placed → paid → shipped → received order of <paramref name="quantity"/> at <paramref name="price"/>, each applied once.</summary>
    public static OrderEffects OfReceivedOrder(int quantity, decimal price) => new(
        decimal.Floor(quantity * price), 1, 1m, quantity * price, -quantity,
        new ReplicaRow(true, OrderStatus.Received, quantity * price, 4, 0, 4));

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
