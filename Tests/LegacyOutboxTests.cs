using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>What happens to events that were accepted before every field had a bound and still sit in an outbox.</summary>
[Collection(PipelineCollection.Name)]
public sealed class LegacyOutboxTests(PipelineFixture fixture)
{
    [Fact]
    public async Task An_unpublished_cancellation_with_an_oversized_reason_is_cut_to_the_bound_and_published_on_activation()
    {
        var id = OrderDriver.NewId("legacy-");
        var now = DateTimeOffset.UtcNow;
        var items = OrderDriver.Items(($"sku-{id}", 1, 3m));
        // As an older version stored it: accepted, written, never published (the 60,000-character reason did not fit a queue message).
        var state = new OrderState
        {
            Status = OrderStatus.Cancelled, UserId = $"user-{id}", Items = items.ToList(), Total = 3m,
            Events =
            [
                new OrderPlaced(Guid.NewGuid(), id, 1, now, $"user-{id}", items, 3m, null, null),
                new OrderCancelled(Guid.NewGuid(), id, 2, now, $"user-{id}", false, 0m, items, null, null, new string('r', 60_000)),
            ],
            Commands = { ["p"] = new ProcessedCommand("PlaceOrder", 1, OrderStatus.Placed), ["c"] = new ProcessedCommand("CancelOrder", 2, OrderStatus.Cancelled) },
        };
        var silo = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost.Services;
        await silo.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders).WriteStateAsync("order", GrainId.Create("order", id), new GrainState<OrderState>(state));

        // Any activation (here an operator's look) cuts the reason and publishes; storage then shows the order finished everywhere.
        await fixture.Grains.GetGrain<IOperationsGrain>(0).InspectAsync(id);
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal((OrderStatus.Cancelled, 2L), (done[0].Status, done[0].LastSequence));
        var cancelled = Assert.IsType<OrderCancelled>((await fixture.Grains.GetGrain<IOrderGrain>(id).GetEventsAsync(1)).Single());
        Assert.Equal(TextLimits.MaxReasonLength, cancelled.Reason!.Length);
    }
}
