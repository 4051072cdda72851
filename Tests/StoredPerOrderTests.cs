using OrderFlow.Client.Bench;
using OrderFlow.Contracts;

namespace OrderFlow.Tests;

/// <summary>The bench's breakdown of memory per order: what a phase added to the embedded store, divided by its orders.</summary>
public sealed class StoredPerOrderTests
{
    [Fact]
    public void Only_what_the_phase_added_is_counted_per_order_largest_first()
    {
        IReadOnlyList<StoredRecordGroup> before =
        [
            new("orders", "order", "order", 10, 6_000, 200),
            new("ledgers", "stock-level", "stock", 5, 500, 50),
        ];
        IReadOnlyList<StoredRecordGroup> after =
        [
            new("orders", "order", "order", 110, 66_000, 2_200),
            new("ledgers", "stock-level", "stock", 5, 500, 50),
            new("subscribers", "sms", "sms", 100, 4_400, 2_000),
        ];

        var perOrder = StoredPerOrder.Between(before, after, orders: 100);

        Assert.Equal(
            [new StoredPerOrder("orders/order/order", 1.0, 600, 20), new StoredPerOrder("subscribers/sms/sms", 1.0, 44, 20)],
            perOrder);
    }
}
