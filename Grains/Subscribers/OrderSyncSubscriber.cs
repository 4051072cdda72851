using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>
/// Keeps a replica row per order in a downstream table: insert on placed, update on each change, delete on
/// cancel — the seed's data-sync example, where the same changes applied out of order corrupt the row.
/// </summary>
[GrainType("order-sync"), ImplicitStreamSubscription(OrderStreams.Namespace), KeyedEffects("order-sync", StorageNames.Subscribers)]
public sealed class OrderSyncSubscriber(SubscriberServices services) : OrderSubscriberGrain(services), IOrderSyncSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => Replica.ApplyAsync(ChangeFor(evt));

    /// <summary>
    /// The row change of an event. An event kind this subscriber does not know only moves the row's version
    /// (<see cref="ReplicaOperation.Skip"/>): a new event type added to the order must not park every order here, and
    /// the next known change must still fit the row in sequence.
    /// </summary>
    public static ReplicaChange ChangeFor(OrderEvent evt) => evt switch
    {
        OrderPlaced placed => new ReplicaChange(ReplicaOperation.Insert, evt.Sequence, OrderStatus.Placed, placed.Total),
        OrderPaid paid => new ReplicaChange(ReplicaOperation.Update, evt.Sequence, OrderStatus.Paid, paid.Amount),
        OrderShipped => new ReplicaChange(ReplicaOperation.Update, evt.Sequence, OrderStatus.Shipped, null),
        OrderReceived => new ReplicaChange(ReplicaOperation.Update, evt.Sequence, OrderStatus.Received, null),
        OrderCancelled => new ReplicaChange(ReplicaOperation.Delete, evt.Sequence, OrderStatus.Cancelled, null),
        _ => new ReplicaChange(ReplicaOperation.Skip, evt.Sequence, OrderStatus.None, null),
    };

    private IOrderReplicaGrain Replica => GrainFactory.GetGrain<IOrderReplicaGrain>(OrderId);
}
