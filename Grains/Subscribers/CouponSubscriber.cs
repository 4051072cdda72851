using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Redeems the order's coupon when it is paid; restores it when a paid order is cancelled.</summary>
[GrainType("coupon"), ImplicitStreamSubscription(OrderStreams.Namespace)]
public sealed class CouponSubscriber(
    [PersistentState("coupon", StorageNames.Subscribers)] IPersistentState<SubscriberState> inbox,
    SubscriberServices services) : OrderSubscriberGrain(inbox, services), ICouponSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid { CouponId: { } coupon } => Coupon(coupon).ApplyAsync($"{OrderId}:redeem", 1),
        OrderCancelled { WasPaid: true, CouponId: { } coupon } => Coupon(coupon).ApplyAsync($"{OrderId}:restore", -1),
        _ => NothingToDo(),
    };

    private ICouponGrain Coupon(string couponId) => GrainFactory.GetGrain<ICouponGrain>(couponId);
}
