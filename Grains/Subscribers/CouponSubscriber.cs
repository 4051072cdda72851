using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Redeems the use the order reserved on its coupon when it is paid; gives it back when the order is cancelled.</summary>
[GrainType("coupon"), ImplicitStreamSubscription(OrderStreams.Namespace), KeyedEffects("coupon", StorageNames.Subscribers)]
[HandlesOnly(typeof(OrderPaid), typeof(OrderCancelled))]
public sealed class CouponSubscriber(SubscriberServices services) : OrderSubscriberGrain(services), ICouponSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid { CouponId: { } coupon } => Change(coupon, uses => uses.CommitAsync(OrderId)),
        OrderCancelled { CouponId: { } coupon } => Change(coupon, uses => uses.ReleaseAsync(OrderId)),
        _ => NothingToDo(),
    };

    private async Task Change(string couponId, Func<ICouponReservationsGrain, Task<ReservationResult>> change) =>
        ReservationFailure.ThrowUnlessDone(await change(GrainFactory.GetGrain<ICouponReservationsGrain>(couponId)), "coupon", couponId);
}
