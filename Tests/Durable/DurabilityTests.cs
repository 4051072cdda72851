using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Effects;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;
using Xunit.Abstractions;
using static OrderFlow.Tests.Durable.OrderEffects;

namespace OrderFlow.Tests.Durable;

[Collection(DurableCollection.Name)]
public sealed class DurabilityTests(DurableClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(90);

    private OrderDriver Orders => new(fixture.Grains);

    [Fact]
    public async Task Orders_subscriber_progress_ledgers_and_a_pending_retry_survive_a_crash_of_every_silo()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var finished = Enumerable.Range(0, 3).Select(i => $"keep-{run}-{i}").ToArray();
        var halfway = $"half-{run}";
        var stuck = $"stuck-{run}";
        foreach (var id in finished.Append(stuck))
        {
            await Orders.FullLifecycleAsync(id, UserOf(id), Items(id, 2, 10.50m), CouponOf(id), ActivityOf(id));
        }

        var total = await Orders.PlaceAsync(halfway, UserOf(halfway), Items(halfway, 2, 10.50m), CouponOf(halfway), ActivityOf(halfway));
        await Orders.PayAsync(halfway, total);

        var before = await Orders.WaitCaughtUpAsync([.. finished, halfway]);
        // points keeps failing OrderPaid of the stuck- order: event 2 waits in its inbox with a retry pending.
        var stuckBefore = await Eventually.Until(() => Orders.Operations.InspectAsync(stuck),
            r => r.Subscribers.All(s => s.Subscriber == "points" ? s.AppliedSequence == 1 && s.Attempts >= 1 && s.NextAttemptAt is not null : s.AppliedSequence == 4),
            CatchUp, Describe);
        var effectsBefore = await Task.WhenAll(finished.Select(id => ReadAsync(fixture.Grains, id)));
        Assert.All(effectsBefore, e => Assert.Equal(OfReceivedOrder(2, 10.50m), e));
        Assert.Equal(0m, (await SiloGrains.Of(fixture.Cluster).GetGrain<IPointsAccountGrain>(UserOf(stuck)).GetAsync()).Balance);

        await fixture.CrashAndRestartEverySiloAsync();
        foreach (var drills in fixture.DrillBoards)
        {
            drills.Clear("points");
        }

        // Nothing calls the stuck order's points subscriber: only its reminder, stored in Azure Table before the
        // crash, can wake it. Its inbox (events 2-4) and retry state come back from storage.
        var awarded = await Eventually.Until(() => SiloGrains.Of(fixture.Cluster).GetGrain<IPointsAccountGrain>(UserOf(stuck)).GetAsync(),
            l => l.Balance > 0, TimeSpan.FromSeconds(150), l => $"points of {UserOf(stuck)} still {l.Balance} after the restart");
        Assert.Equal(21m, awarded.Balance);

        var stuckAfter = await Orders.WaitCaughtUpAsync(stuck);
        var pointsBefore = stuckBefore.Subscribers.Single(s => s.Subscriber == "points");
        var pointsAfter = stuckAfter.Subscribers.Single(s => s.Subscriber == "points");
        Assert.True(pointsAfter.FailedAttempts >= pointsBefore.FailedAttempts, $"failed attempts went from {pointsBefore.FailedAttempts} to {pointsAfter.FailedAttempts}");
        Assert.Equal(OfReceivedOrder(2, 10.50m), await ReadAsync(fixture.Grains, stuck));

        // Finished orders: same order state, same progress, not one handler run again, same ledgers.
        var after = await Orders.Operations.InspectManyAsync(finished);
        foreach (var (old, now) in before.Where(r => r.Order.OrderId != halfway).Zip(after))
        {
            Assert.Equal((old.Order.Status, old.Order.LastSequence, old.Order.Total, old.Order.PaidAmount),
                (now.Order.Status, now.Order.LastSequence, now.Order.Total, now.Order.PaidAmount));
            Assert.Equal(old.Subscribers.Select(s => (s.Subscriber, s.AppliedSequence, s.HandlerRuns)),
                now.Subscribers.Select(s => (s.Subscriber, s.AppliedSequence, s.HandlerRuns)));
        }

        Assert.Equal(effectsBefore, await Task.WhenAll(finished.Select(id => ReadAsync(fixture.Grains, id))));

        // The half-way order goes on from where its subscribers were: events 3 and 4 only, once each (each handler runs
        // for the events of the kinds it handles: HandlesOnly).
        await Orders.ShipAsync(halfway);
        await Orders.ReceiveAsync(halfway);
        var resumed = await Orders.WaitCaughtUpAsync(halfway);
        Assert.All(resumed.Subscribers, s => Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns));
        Assert.Equal(OfReceivedOrder(2, 10.50m), await ReadAsync(fixture.Grains, halfway));
        output.WriteLine($"after the crash of every silo: stuck order's points retried by its reminder ({pointsAfter.FailedAttempts} failed attempts in all)");
    }

    [Fact]
    public async Task A_write_to_a_ledger_behind_the_grains_back_is_detected_and_never_overwritten()
    {
        var user = $"etag-{Guid.NewGuid():N}";
        var account = SiloGrains.Of(fixture.Cluster).GetGrain<IPointsAccountGrain>(user);
        await account.ApplyAsync("first", 10m);

        // A second writer with its own ETag (as another process with the same provider would be) changes the head row,
        // and records its entry as the ledger would (through the ledgers' entry store: a row of the ledger's partition).
        var storage = StorageOf(StorageNames.Ledgers);
        var grainId = GrainId.Create("ledger-points", user);
        var intruder = new GrainState<BalanceHead>();
        await storage.ReadStateAsync(LedgerStateNames.Points, grainId, intruder);
        intruder.State!.Balance += 1000m;
        intruder.State.Entries++;
        intruder.State.Version++;
        var intruderEntry = new GrainState<LedgerEntry>(new LedgerEntry { Key = "intruder", Amount = 1000m, Version = intruder.State.Version });
        await ServiceOf<ILedgerEntryStore>().WriteAsync(BalanceLedgerGrain.EntriesOf(grainId, LedgerStateNames.Points), [intruderEntry]);
        await storage.WriteStateAsync(LedgerStateNames.Points, grainId, intruder);

        // The grain still holds the old ETag: its write is refused (the table provider throws a subclass of
        // InconsistentStateException), and it re-reads instead of trusting memory.
        await Assert.ThrowsAnyAsync<InconsistentStateException>(() => account.ApplyAsync("second", 5m));
        var stored = fixture.Grains.GetGrain<IStoredStateGrain>(0);
        var head = (await stored.ReadLedgersAsync(LedgerKind.Points, [user]))[0];
        Assert.Equal((1010m, 2L), (head.Balance, head.Entries));
        var entries = await stored.ReadEntriesAsync(new[] { "first", "intruder", "second" }.Select(key => new EntryRef(LedgerKind.Points, user, key)).ToArray());
        Assert.Equal([(true, 10m), (true, 1000m), (false, 0m)], entries.Select(e => (e.Exists, e.Amount)));
        Assert.Equal(new LedgerSnapshot(1010m, 2), await account.GetAsync());

        // Retried, the same processed key lands once, on top of the other writer's change.
        var retried = await account.ApplyAsync("second", 5m);
        Assert.Equal(new LedgerResult(true, 1015m), retried);
        Assert.Equal(new LedgerResult(false, 1015m), await account.ApplyAsync("second", 5m));
        head = (await stored.ReadLedgersAsync(LedgerKind.Points, [user]))[0];
        Assert.Equal((1015m, 3L), (head.Balance, head.Entries));
        Assert.Equal(5m, await account.GetEntryAsync("second"));
    }

    [Fact]
    public async Task A_write_to_an_order_behind_its_back_fails_the_command_and_its_retry_with_the_same_command_id_lands_once()
    {
        var id = $"etag-{Guid.NewGuid():N}";
        var total = await Orders.PlaceAsync(id, UserOf(id), Items(id, 1, 3m));
        var storage = StorageOf(StorageNames.Orders);
        var grainId = GrainId.Create("order", id);
        var intruder = new GrainState<OrderState>();
        await storage.ReadStateAsync("order", grainId, intruder);
        await storage.WriteStateAsync("order", grainId, intruder);

        var pay = new PayOrder($"{id}-pay", $"pay-{id}", total);
        await Assert.ThrowsAnyAsync<InconsistentStateException>(() => Orders.Order(id).PayAsync(pay));
        Assert.Equal((OrderStatus.Placed, 1L), await StatusAsync());

        var retried = await Orders.Order(id).PayAsync(pay);
        Assert.Equal((true, 2L, false), (retried.Accepted, retried.Sequence, retried.Repeated));
        var again = await Orders.Order(id).PayAsync(pay);
        Assert.Equal((true, 2L, true), (again.Accepted, again.Sequence, again.Repeated));
        Assert.Equal((OrderStatus.Paid, 2L), await StatusAsync());

        async Task<(OrderStatus, long)> StatusAsync()
        {
            var order = await Orders.Order(id).GetAsync();
            return (order.Status, order.LastSequence);
        }
    }

    private T ServiceOf<T>() where T : notnull =>
        ((InProcessSiloHandle)fixture.Cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredService<T>();

    private IGrainStorage StorageOf(string name) =>
        ((InProcessSiloHandle)fixture.Cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(name);
}
