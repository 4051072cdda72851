using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>
/// Turns the order's stock reservations into sales when it is paid, and gives them back when it is cancelled (released
/// before payment, restocked after). Each call is idempotent at the SKU (one reservation record per order), so a
/// redelivered or re-run event changes nothing twice.
/// </summary>
[GrainType("inventory"), ImplicitStreamSubscription(OrderStreams.Namespace), KeyedEffects("inventory", StorageNames.Subscribers)]
[HandlesOnly(typeof(OrderPaid), typeof(OrderCancelled))]
public sealed class InventorySubscriber(SubscriberServices services) : OrderSubscriberGrain(services), IInventorySubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid paid => ForEachSku(paid.Items, stock => stock.CommitAsync(OrderId)),
        OrderCancelled cancelled => ForEachSku(cancelled.Items, stock => stock.ReleaseAsync(OrderId)),
        _ => NothingToDo(),
    };

    // If one SKU fails the retry runs all again, and the others answer "already done".
    private Task ForEachSku(IReadOnlyList<OrderLine> items, Func<IStockReservationsGrain, Task<ReservationResult>> change) =>
        Task.WhenAll(items.Select(line => line.Sku).Distinct(StringComparer.Ordinal).Select(async sku =>
            ReservationFailure.ThrowUnlessDone(await change(GrainFactory.GetGrain<IStockReservationsGrain>(sku)), "SKU", sku)));
}

/// <summary>A reservation call a subscriber cannot move past: a handler failure (retried, then parked for an operator).</summary>
public sealed class ReservationFailure(string message) : Exception(message)
{
    public static void ThrowUnlessDone(ReservationResult result, string what, string key)
    {
        if (!result.Succeeded)
        {
            throw new ReservationFailure($"{what} {key}: {result.Outcome}: {result.Message}");
        }
    }
}
