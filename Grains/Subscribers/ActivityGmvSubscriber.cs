using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Adds a paid order's amount to its marketing activity's GMV; takes it back when a paid order is cancelled.</summary>
[GrainType("activity-gmv"), ImplicitStreamSubscription(OrderStreams.Namespace), KeyedEffects("activity-gmv", StorageNames.Subscribers)]
[HandlesOnly(typeof(OrderPaid), typeof(OrderCancelled))]
public sealed class ActivityGmvSubscriber(SubscriberServices services) : OrderSubscriberGrain(services), IActivityGmvSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid { ActivityId: { } activity } paid => Gmv(activity).ApplyAsync($"{OrderId}:paid", paid.Amount),
        OrderCancelled { WasPaid: true, ActivityId: { } activity } cancelled => TakeBackAsync(Gmv(activity), $"{OrderId}:paid", $"{OrderId}:refund", -cancelled.RefundAmount),
        _ => NothingToDo(),
    };

    private IActivityGmvGrain Gmv(string activityId) => GrainFactory.GetGrain<IActivityGmvGrain>(activityId);
}
