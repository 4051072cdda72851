using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;

namespace OrderFlow.Tests;

/// <summary>
/// A grain never serves changes from a write that failed. After a failed write it re-reads; when the re-read fails
/// too, that activation serves nothing more and writes nothing more, and the next one starts from storage.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class FailedWriteTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task A_ledger_whose_write_and_reread_both_fail_applies_the_key_when_it_is_sent_again()
    {
        var user = OrderDriver.NewId("user-");
        var ledger = fixture.Grains.GetGrain<IPointsAccountGrain>(user);
        Assert.Equal(0m, (await ledger.GetAsync()).Balance); // activated: its first read is behind it

        Exception error;
        using (var faults = FailNextWriteAndReread("ledger-points", user))
        {
            error = await Assert.ThrowsAnyAsync<Exception>(() => ledger.ApplyAsync("k", 5m));
            faults.AssertEachHitOnce();
        }

        var retried = await ledger.ApplyAsync("k", 5m);
        Assert.Equal(new LedgerResult(true, 5m), retried);
        var stored = await ledger.GetAsync();
        Assert.Equal((5m, 1L, 5m), (stored.Balance, stored.Entries, await ledger.GetEntryAsync("k")));
        AssertRetriable(error);
    }

    [Fact]
    public async Task An_order_whose_write_and_reread_both_fail_accepts_the_retried_command_as_new_with_the_next_sequence()
    {
        var id = OrderDriver.NewId("untrusted-");
        var user = $"user-{id}";
        var total = await _orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", 2, 6.5m)));
        var order = _orders.Order(id);
        var pay = new PayOrder("pay-1", $"payment-{id}", total);

        Exception error;
        using (var faults = FailNextWriteAndReread("order", id))
        {
            error = await Assert.ThrowsAnyAsync<Exception>(() => order.PayAsync(pay));
            faults.AssertEachHitOnce();
        }

        var snapshot = await order.GetAsync();
        Assert.Equal((OrderStatus.Placed, 1L), (snapshot.Status, snapshot.LastSequence));

        var retried = await order.PayAsync(pay);
        Assert.Equal((true, false, 2L, OrderStatus.Paid), (retried.Accepted, retried.Repeated, retried.Sequence, retried.Status));
        Assert.Equal([1L, 2L], (await order.GetEventsAsync(0)).Select(e => e.Sequence));

        // Event 2 is the payment, published once: every subscriber applies it, and the points are awarded once.
        await _orders.WaitCaughtUpAsync(id);
        var points = await fixture.Grains.GetGrain<IPointsAccountGrain>(user).GetAsync();
        Assert.Equal((decimal.Floor(total), 1L, decimal.Floor(total)),
            (points.Balance, points.Entries, await fixture.Grains.GetGrain<IPointsAccountGrain>(user).GetEntryAsync($"{id}:award")));
        AssertRetriable(error);
    }

    [Fact]
    public async Task An_order_write_that_lands_and_then_fails_is_answered_as_a_repeat_when_retried_and_applied_once()
    {
        var id = OrderDriver.NewId("landed-");
        var total = await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 9m)));
        var order = _orders.Order(id);
        var pay = new PayOrder("pay-1", $"payment-{id}", total);

        using (var fault = fixture.Faults.Fail(new StorageFault
               {
                   Operations = StorageOperations.Write, GrainType = "order", KeyPrefix = id, Times = 1, Mode = StorageFaultMode.AfterCall,
               }))
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => order.PayAsync(pay));
            Assert.Contains(error.Chain(), e => e is StorageFaultException { Mode: StorageFaultMode.AfterCall });
            Assert.Equal(1, fault.Hits);
        }

        // The re-read after the failed write found the payment in storage: the retry gets the first answer.
        var retried = await order.PayAsync(pay);
        Assert.Equal((true, true, 2L, OrderStatus.Paid), (retried.Accepted, retried.Repeated, retried.Sequence, retried.Status));
        var events = await order.GetEventsAsync(0);
        Assert.Equal([1L, 2L], events.Select(e => e.Sequence));
        Assert.Single(events.OfType<OrderPaid>());
        Assert.Equal((OrderStatus.Paid, 2L), ((await order.GetAsync()).Status, (await order.GetAsync()).LastSequence));
    }

    [Fact]
    public async Task A_final_event_whose_write_landed_but_failed_is_published_without_any_retry_of_the_command()
    {
        var id = OrderDriver.NewId("landed-final-");
        var total = await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 9m)));
        await _orders.PayAsync(id, total);
        await _orders.ShipAsync(id);

        using (fixture.Faults.Fail(new StorageFault
               {
                   Operations = StorageOperations.Write, GrainType = "order", KeyPrefix = id, Times = 1, Mode = StorageFaultMode.AfterCall,
               }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => _orders.ReceiveAsync(id));
        }

        // Nobody retries the command and nobody looks at the order: the stored event must still reach every subscriber
        // (verified from storage only, so the check itself activates nothing).
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal((OrderStatus.Received, 4L), (done[0].Status, done[0].LastSequence));
    }

    [Fact]
    public async Task A_subscriber_whose_inbox_write_and_reread_both_fail_starts_again_from_storage_and_applies_the_effect_once()
    {
        var id = OrderDriver.NewId("inbox-");
        var user = $"user-{id}";
        var total = await _orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", 3, 4m)));
        await _orders.PayAsync(id, total);
        // Points has keyed effects: the award is kept by the ledger's processed key, and the inbox's progress is in
        // memory only until the order's last event.
        await Eventually.Until(() => _orders.Operations.InspectAsync(id), r => r.Subscribers.Single(s => s.Subscriber == "points").AppliedSequence == 2,
            OrderDriver.CatchUpTimeout, r => $"points of {id} at {r.Subscribers.Single(s => s.Subscriber == "points").AppliedSequence}, expected 2");

        using (var faults = FailNextWriteAndReread("points", id))
        {
            await _orders.CancelAsync(id);
            await Eventually.Until(() => Task.FromResult(faults.Handles.Sum(f => f.Hits)), hits => hits == 2, OrderDriver.CatchUpTimeout,
                hits => $"points inbox of {id}: {hits} of its 2 storage faults met");
        }

        // The next activation starts from storage (nothing stored), reads the order's log and runs award and revoke
        // again: both already done at the ledger. Waited for from stored state only (asking the inboxes would activate
        // them, and an activation catches up by itself).
        var stored = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.All(stored[0].Subscribers, s => Assert.Equal(3, s.AppliedSequence));
        var points = fixture.Grains.GetGrain<IPointsAccountGrain>(user);
        Assert.Equal((0m, 2L, decimal.Floor(total), -decimal.Floor(total)),
            ((await points.GetAsync()).Balance, (await points.GetAsync()).Entries, await points.GetEntryAsync($"{id}:award"), await points.GetEntryAsync($"{id}:revoke")));
    }

    /// <summary>The failed call, and any call that met the activation after it, tell the caller to try again.</summary>
    private static void AssertRetriable(Exception error)
    {
        Assert.IsType<InconsistentStateException>(error);
        Assert.Contains(error.Chain(), e => e is StorageFaultException { Operation: StorageOperations.Write });
    }

    private Faults FailNextWriteAndReread(string grainType, string key) => new(
        fixture.Faults.Fail(new StorageFault { Operations = StorageOperations.Write, GrainType = grainType, KeyPrefix = key, Times = 1 }),
        fixture.Faults.Fail(new StorageFault { Operations = StorageOperations.Read, GrainType = grainType, KeyPrefix = key, Times = 1 }));

    private sealed class Faults(params StorageFaultHandle[] handles) : IDisposable
    {
        public IReadOnlyList<StorageFaultHandle> Handles => handles;

        public void AssertEachHitOnce() => Assert.All(handles, handle => Assert.True(handle.Hits == 1, $"{handle.Fault} met {handle.Hits} calls, expected 1"));

        public void Dispose()
        {
            foreach (var handle in handles)
            {
                handle.Dispose();
            }
        }
    }
}
