using OrderFlow.Contracts;
using OrderFlow.Grains.Subscribers;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class OrderSyncTests(PipelineFixture fixture)
{
    /// <summary>An event kind added to the order later, which today's order-sync does not know.</summary>
    private sealed record OrderNoted(Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt)
        : OrderEvent(EventId, OrderId, Sequence, OccurredAt);

    [Fact]
    public async Task An_event_kind_order_sync_does_not_know_moves_only_the_replica_version_and_parks_nothing()
    {
        var id = OrderDriver.NewId("unknown-kind-");
        var unknown = OrderSyncSubscriber.ChangeFor(new OrderNoted(Guid.NewGuid(), id, 2, DateTimeOffset.UtcNow));
        Assert.Equal((ReplicaOperation.Skip, 2L), (unknown.Operation, unknown.Version));

        var replica = fixture.Grains.GetGrain<IOrderReplicaGrain>(id);
        await replica.ApplyAsync(new ReplicaChange(ReplicaOperation.Insert, 1, OrderStatus.Placed, 5m));
        await replica.ApplyAsync(unknown);
        var row = await replica.ApplyAsync(new ReplicaChange(ReplicaOperation.Update, 3, OrderStatus.Paid, 5m));
        Assert.Equal(new ReplicaRow(true, OrderStatus.Paid, 5m, 3, 0, 3), row);
    }
}
