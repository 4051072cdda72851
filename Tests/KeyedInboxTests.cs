using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Subscribers;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// Subscribers with keyed effects (every effect kept exactly once downstream under its own key: the ledgers, the
/// reservations, the replica): their inbox is not read for a new order and is written once per order, and losing that
/// lazily written progress only makes the handlers run again, which changes nothing twice. The SMS subscriber, whose
/// gateway cannot tell a repeated text from a new one, reads and writes as before. Storage calls are counted at the
/// silo's grain storage (<see cref="StorageFaultMode.CountOnly"/>), with a relay that checks no order for an hour, so
/// nothing but the deliveries touches the inboxes.
/// </summary>
[Collection(IdleRelayFixture.Name)]
public sealed class KeyedInboxCostTests(IdleRelayFixture fixture)
{
    private static readonly string[] Keyed = ["activity-gmv", "coupon", "inventory", "order-sync", "points"];

    [Fact]
    public async Task A_new_orders_subscribers_with_keyed_effects_never_read_their_inbox_and_write_it_once()
    {
        var grains = SiloGrains.Of(fixture.Cluster);
        var orders = new OrderDriver(grains);
        var id = OrderDriver.NewId("keyed-cost-");
        var subscribers = Keyed.Append("sms").ToArray();
        var reads = subscribers.ToDictionary(name => name, name => Probe(name, id, StorageOperations.Read));
        var writes = subscribers.ToDictionary(name => name, name => Probe(name, id, StorageOperations.Write));
        try
        {
            await orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 2, 10.50m)), $"coupon-{id}", $"activity-{id}");

            // Each inbox's last write is its Finished record: wait for them (counting only, nothing activated).
            await Eventually.Until(() => Task.FromResult(writes.ToDictionary(w => w.Key, w => w.Value.Hits)),
                hits => Keyed.All(name => hits[name] >= 1) && hits["sms"] >= 3,
                OrderDriver.CatchUpTimeout,
                hits => string.Join(", ", hits.Select(h => $"{h.Key} wrote {h.Value}")));
            var readCounts = reads.ToDictionary(r => r.Key, r => r.Value.Hits);
            var writeCounts = writes.ToDictionary(w => w.Key, w => w.Value.Hits);

            // Keyed: no read (a new order's inbox does not exist), one write (Finished). SMS: its activation's read, and
            // a write for each text (paid, shipped) and for the end.
            Assert.All(Keyed, name => Assert.Equal((name, 0, 1), (name, readCounts[name], writeCounts[name])));
            Assert.Equal((1, 3), (readCounts["sms"], writeCounts["sms"]));
        }
        finally
        {
            foreach (var probe in reads.Values.Concat(writes.Values))
            {
                probe.Dispose();
            }
        }

        var stored = await StoredProgress.WaitFinishedAsync(grains, [id], OrderDriver.CatchUpTimeout);
        Assert.All(stored[0].Subscribers, s => Assert.Equal(4L, s.AppliedSequence));
        await AuditCheck.AssertCleanAsync(grains, [id]);
    }

    [Fact]
    public async Task A_late_copy_of_an_orders_first_event_at_a_keyed_subscriber_changes_nothing_and_its_status_is_the_stored_one()
    {
        var grains = SiloGrains.Of(fixture.Cluster);
        var orders = new OrderDriver(grains);
        var id = OrderDriver.NewId("keyed-late-");
        var total = await orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4.00m)));
        await StoredProgress.WaitFinishedAsync(grains, [id], OrderDriver.CatchUpTimeout);
        var sync = grains.GetGrain<IOrderSyncSubscriberGrain>(id);
        // A finished inbox deactivates itself: wait until the order-sync activation is gone, so the copy meets a new one.
        await Eventually.Until(() => IsActiveAsync(sync.GetGrainId()), active => !active, TimeSpan.FromSeconds(30), _ => "order-sync is still active");

        var placed = (await orders.Order(id).GetEventsAsync(0))[0];
        using var reads = Probe("order-sync", id, StorageOperations.Read);
        var stored = await sync.DeliverAsync(placed);

        // The new activation took the first event for a new order's (no read) and applied it: its effects are kept by
        // key, so it reports it delivered...
        Assert.True(stored);
        Assert.Equal(0, reads.Hits);
        // ...and the replica, already at version 4, ignored the repeated insert.
        Assert.Equal(new ReplicaRow(true, OrderStatus.Received, total, 4, 0, 4), await grains.GetGrain<IOrderReplicaGrain>(id).GetAsync());
        // Asked for its status, it reads once and answers from what storage holds.
        var status = await sync.GetStatusAsync();
        Assert.Equal((4L, 1), (status.AppliedSequence, reads.Hits));
        await AuditCheck.AssertCleanAsync(grains, [id]);
    }

    private StorageFaultHandle Probe(string grainType, string keyPrefix, StorageOperations operation) =>
        fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, GrainType = grainType, KeyPrefix = keyPrefix, Operations = operation,
            Mode = StorageFaultMode.CountOnly,
        });

    private async Task<bool> IsActiveAsync(GrainId grain) =>
        (await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics())
        .Any(g => g.GrainId == grain);
}

/// <summary>Keyed effects make lost lazily written progress harmless: the handlers run again and change nothing twice.</summary>
[Collection(PipelineCollection.Name)]
public sealed class KeyedInboxRecoveryTests(PipelineFixture fixture)
{
    [Fact]
    public async Task A_keyed_subscriber_whose_progress_write_failed_runs_its_handlers_again_and_changes_nothing_twice()
    {
        var orders = new OrderDriver(fixture.Grains);
        var id = OrderDriver.NewId("keyed-lost-");
        var user = $"user-{id}";
        var sku = $"sku-{id}";
        // The inventory and points inboxes write nothing before the order's last event (keyed effects); that one write
        // fails, so both re-read an inbox that was never stored and must take the order from its first event again:
        // commit and restore the stock, award and revoke the points, each already done.
        using var inventoryFault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, Operations = StorageOperations.Write, GrainType = "inventory", KeyPrefix = id, Times = 1,
        });
        using var pointsFault = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Subscribers, Operations = StorageOperations.Write, GrainType = "points", KeyPrefix = id, Times = 1,
        });

        var total = await orders.PlaceAsync(id, user, OrderDriver.Items((sku, 3, 5.00m)));
        await orders.PayAsync(id, total);
        await orders.CancelAsync(id);
        await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);

        Assert.Equal((1, 1), (inventoryFault.Hits, pointsFault.Hits));
        var report = await orders.Operations.InspectAsync(id);
        foreach (var name in new[] { "inventory", "points" })
        {
            var inbox = report.Subscribers.Single(s => s.Subscriber == name);
            // The stored inbox is the second pass: the re-read found no record, so the redelivered last event read the
            // order's log (a gap repair) and the events it handles (paid, cancelled) were handled again; none failed, none parked.
            Assert.Equal((name, 3L, Handed.Runs(name, "PAC"), 1L, false, 0L), (name, inbox.AppliedSequence, inbox.HandlerRuns, inbox.GapRepairs, inbox.Parked, inbox.FailedAttempts));
        }

        Assert.Equal(ReservationState.Restored, (await fixture.Grains.GetGrain<IStockReservationsGrain>(sku).GetReservationAsync(id))?.State);
        Assert.Equal(0m, (await fixture.Grains.GetGrain<IPointsAccountGrain>(user).GetAsync()).Balance);
        await AuditCheck.AssertCleanAsync(fixture.Grains, [id]);
    }
}
