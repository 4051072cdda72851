using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// The bench's orders: every one goes the whole way, place → pay → ship → receive (four events, each applied by
/// every subscriber), except in the scale phase, whose orders are placed and cancelled (two events) so that 100,000 of
/// them fit in the bench's time budget. Keys downstream grow with the order count — a user per 10 orders, a SKU per 50, an activity
/// per 250 — so a ledger holds about the same number of processed keys at 1,000 and at 100,000 orders and the scale
/// phase measures the cost of many orders, not of a few ever-growing accounts. Before each phase the bench sets each
/// SKU's stock to exactly the units its orders take and issues each coupon (one per two orders) with one use
/// (<see cref="InventoryNeeds"/>), outside the measurement: a placement reserves them, and is refused without them.
/// </summary>
public static class BenchOrders
{
    public const int EventsPerOrder = (int)BenchEvent.LastSequence;

    public static OrderPlan[] Create(string runId, int count, OrderPlan.Fate fate = OrderPlan.Fate.Received)
    {
        var users = Math.Max(1, count / 10);
        var skus = Math.Max(20, count / 50);
        var activities = Math.Max(4, count / 250);
        var plans = new OrderPlan[count];
        for (var i = 0; i < count; i++)
        {
            var items = Enumerable.Range(0, 1 + i % 3)
                .Select(k => new OrderLine($"{runId}-sku{(i * 7 + k * 13) % skus}", 1 + (i + k) % 3, 10m + (i * 13 + k * 7) % 9000 / 100m))
                .ToArray();
            plans[i] = new OrderPlan($"{runId}-o{i}", $"{runId}-u{i % users}", items,
                i % 2 == 0 ? $"{runId}-c{i}" : null, i % 3 != 2 ? $"{runId}-a{i % activities}" : null,
                fate, RepeatPayment: false);
        }

        return plans;
    }

    /// <summary>Events the plans produce (one per command: the bench repeats no command).</summary>
    public static long Events(IReadOnlyList<OrderPlan> plans) => plans.Sum(p => (long)p.CommandCount);
}
