using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Takes sold quantities off each SKU's stock when an order is paid; puts them back when a paid order is cancelled.</summary>
[GrainType("inventory"), ImplicitStreamSubscription(OrderStreams.Namespace)]
public sealed class InventorySubscriber(
    [PersistentState("inventory", StorageNames.Subscribers)] IPersistentState<SubscriberState> inbox,
    SubscriberServices services) : OrderSubscriberGrain(inbox, services), IInventorySubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid paid => Move(paid.Items, "sold", -1),
        OrderCancelled { WasPaid: true } cancelled => Move(cancelled.Items, "restock", +1),
        _ => NothingToDo(),
    };

    // One ledger entry per SKU; if one SKU fails the retry re-sends all and the others' ledgers drop the repeat.
    private Task Move(IReadOnlyList<OrderLine> items, string scenario, int sign) =>
        Task.WhenAll(items
            .GroupBy(line => line.Sku, StringComparer.Ordinal)
            .Select(sku => GrainFactory.GetGrain<IStockGrain>(sku.Key)
                .ApplyAsync($"{OrderId}:{scenario}", sign * sku.Sum(line => line.Quantity))));
}
