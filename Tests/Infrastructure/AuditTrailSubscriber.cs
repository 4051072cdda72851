using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Tests.Infrastructure;

[Alias("tests.IAuditTrailSubscriberGrain")]
public interface IAuditTrailSubscriberGrain : IOrderSubscriberGrain;

/// <summary>
/// A seventh subscriber that lives only in the test assembly: one class, no change to the order code or the
/// silo wiring. It must receive every event of every order, in order, like the six built-in ones.
/// </summary>
[GrainType("audit-trail"), ImplicitStreamSubscription(OrderStreams.Namespace)]
public sealed class AuditTrailSubscriber(
    [PersistentState("audit-trail", StorageNames.Subscribers)] IPersistentState<SubscriberState> inbox,
    SubscriberServices services) : OrderSubscriberGrain(inbox, services), IAuditTrailSubscriberGrain
{
    protected override Task HandleAsync(OrderEvent evt) => Task.CompletedTask;
}
