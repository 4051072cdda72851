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
        OrderCancelled { WasPaid: true } cancelled => RevokeAsync(Account(cancelled.UserId), cancelled),
        _ => NothingToDo(),
    };

    /// <summary>
    /// Takes back only points that were awarded: an operator who skipped the parked payment skipped its points, and a
    /// revoke then would take points the user never had (red-team finding). Events apply in order, so the award is
    /// applied (or skipped) before the cancellation is handled.
    /// </summary>
    private async Task RevokeAsync(IPointsAccountGrain account, OrderCancelled cancelled)
    {
        if (await account.GetEntryAsync($"{OrderId}:award") is null)
        {
            await NothingToDo();
            return;
        }

        await account.ApplyAsync($"{OrderId}:revoke", -PointsFor(cancelled.RefundAmount));
    }

    private IPointsAccountGrain Account(string userId) => GrainFactory.GetGrain<IPointsAccountGrain>(userId);
}
