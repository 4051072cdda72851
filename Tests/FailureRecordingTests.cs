using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// A failed attempt is recorded by the inbox write that follows it; when that write fails too, the record is dropped
/// (the grain re-reads its state) and the event comes back — never lost, and never counted twice.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class FailureRecordingTests(PipelineFixture fixture)
{
    [Theory]
    [InlineData(StorageFaultMode.BeforeCall)]
    [InlineData(StorageFaultMode.AfterCall)]
    public async Task When_the_inbox_write_after_a_failed_attempt_fails_the_attempt_is_counted_once_and_the_order_still_parks_in_order(StorageFaultMode mode)
    {
        // points always fails OrderPaid for poison- orders; its inbox writes for this order fail twice.
        var id = OrderDriver.NewId("poison-record-");
        var orders = new OrderDriver(fixture.Grains);
        using var fault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, Operations = StorageOperations.Write, GrainType = "points", KeyPrefix = id, Times = 2, Mode = mode,
        });
        var total = await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
        await orders.PayAsync(id, total);
        await orders.ShipAsync(id);
        await orders.ReceiveAsync(id);

        var stored = await Eventually.Until(() => fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([id]),
            all => all[0].Subscribers.Single(s => s.Subscriber == "points").Parked && all[0].Subscribers.Where(s => s.Subscriber != "points").All(s => s.Finished),
            OrderDriver.CatchUpTimeout, all => StoredProgress.Describe(all[0]));

        Assert.Equal(2, fault.Hits);
        var points = stored[0].Subscribers.Single(s => s.Subscriber == "points");
        Assert.True(points is { Attempts: PipelineFixture.MaxAttempts, FailedAttempts: PipelineFixture.MaxAttempts, AppliedSequence: 1 }, points.ToString());
        // Shipped (3) has nothing for points: not handed by the dispatcher, held only if the relay handed it the order's log.
        Assert.Equal([2L, 4], points.HeldSequences.Where(seq => seq != 3));
        // The dead-letter index hears of the park after the inbox stored it (a call of its own): waited for, not assumed.
        var letters = await Eventually.Until(() => orders.Operations.ListDeadLettersAsync("points"), all => all.Any(l => l.OrderId == id),
            OrderDriver.CatchUpTimeout, all => $"order {id} not listed as parked at points; listed: {all.Count}");
        Assert.Equal(PipelineFixture.MaxAttempts, Assert.Single(letters, l => l.OrderId == id).Attempts);
    }

    [Fact]
    public async Task A_park_whose_write_lands_but_answers_with_a_failure_still_reaches_the_dead_letter_index()
    {
        // points always fails OrderPaid for poison- orders: four retries, each written, then the fifth attempt parks. That
        // fifth write lands and answers with a failure.
        var id = OrderDriver.NewId("poison-landed-");
        var orders = new OrderDriver(fixture.Grains);
        using var fault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, Operations = StorageOperations.Write, GrainType = "points", KeyPrefix = id,
            Skip = PipelineFixture.MaxAttempts - 1, Times = 1, Mode = StorageFaultMode.AfterCall,
        });
        var total = await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
        await orders.PayAsync(id, total);

        await Eventually.Until(() => fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([id]),
            all => all[0].Subscribers.Single(s => s.Subscriber == "points").Parked, OrderDriver.CatchUpTimeout, all => StoredProgress.Describe(all[0]));
        Assert.Equal(1, fault.Hits);
        await Eventually.Until(() => orders.Operations.ListDeadLettersAsync("points"), all => all.Any(l => l.OrderId == id),
            TimeSpan.FromSeconds(20), all => $"order {id} not listed as parked at points; listed: {all.Count}");
    }
}
