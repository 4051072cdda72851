using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Subscribers;

/// <summary>Texts the buyer when the order is paid and when it ships (weak dedupe at the gateway).</summary>
[GrainType("sms"), ImplicitStreamSubscription(OrderStreams.Namespace)]
[HandlesOnly(typeof(OrderPaid), typeof(OrderShipped))]
public sealed class SmsSubscriber(
    [PersistentState("sms", StorageNames.Subscribers)] IPersistentState<SubscriberState> inbox,
    SubscriberServices services) : OrderSubscriberGrain(inbox, services), ISmsSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => evt switch
    {
        OrderPaid paid => Gateway(paid.UserId).SendAsync(OrderId, "paid", $"Order {OrderId}: payment of {paid.Amount:0.00} received."),
        OrderShipped shipped => Gateway(shipped.UserId).SendAsync(OrderId, "shipped", $"Order {OrderId} is on its way."),
        _ => NothingToDo(),
    };

    private ISmsGatewayGrain Gateway(string userId) => GrainFactory.GetGrain<ISmsGatewayGrain>(userId);
}
