using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Awards one point per whole unit paid; revokes the same points when a paid order is cancelled.</summary>
[GrainType("points"), ImplicitStreamSubscription(OrderStreams.Namespace), KeyedEffects("points", StorageNames.Subscribers)]
[HandlesOnly(typeof(OrderPaid), typeof(OrderCancelled))]
public sealed class PointsSubscriber(SubscriberServices services) : OrderSubscriberGrain(services), IPointsSubscriberGrain
{
    public static decimal PointsFor(decimal amount) => decimal.Floor(amount);

    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid paid => Account(paid.UserId).ApplyAsync($"{OrderId}:award", PointsFor(paid.Amount)),
        OrderCancelled { WasPaid: true } cancelled => TakeBackAsync(Account(cancelled.UserId), $"{OrderId}:award", $"{OrderId}:revoke", -PointsFor(cancelled.RefundAmount)),
        _ => NothingToDo(),
    };

    private IPointsAccountGrain Account(string userId) => GrainFactory.GetGrain<IPointsAccountGrain>(userId);
}
