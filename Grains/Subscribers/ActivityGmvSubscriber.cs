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
        OrderCancelled { WasPaid: true, ActivityId: { } activity } cancelled => RefundAsync(Gmv(activity), cancelled),
        _ => NothingToDo(),
    };

    /// <summary>Takes back only GMV that was added: an operator who skipped the parked payment skipped its GMV too.</summary>
    private async Task RefundAsync(IActivityGmvGrain gmv, OrderCancelled cancelled)
    {
        if (await gmv.GetEntryAsync($"{OrderId}:paid") is null)
        {
            await NothingToDo();
            return;
        }

        await gmv.ApplyAsync($"{OrderId}:refund", -cancelled.RefundAmount);
    }

    private IActivityGmvGrain Gmv(string activityId) => GrainFactory.GetGrain<IActivityGmvGrain>(activityId);
}
