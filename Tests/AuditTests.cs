using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// The audit against a running silo: zero discrepancies for orders that are caught up, exactly the order and area of a
/// discrepancy planted in storage, and nothing repaired or activated by auditing.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class AuditTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    private IStoredStateGrain Stored => fixture.Grains.GetGrain<IStoredStateGrain>(0);

    private IAuditGrain Audit => fixture.Grains.GetGrain<IAuditGrain>(0);

    private ILedgerEntryStore EntryStore =>
        ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<ILedgerEntryStore>();

    private sealed record Placed(string[] Ids, string User, string Sku, string Coupon, string Activity, decimal Total)
    {
        public string Received => Ids[0];
        public string PaidCancelled => Ids[1];
        public string UnpaidCancelled => Ids[2];
        public string LeftPlaced => Ids[3];
    }

    /// <summary>Four orders on one SKU and coupon: received, paid then cancelled, cancelled unpaid, left placed.</summary>
    private async Task<Placed> PlaceAsync(string prefix)
    {
        var tag = OrderDriver.NewId(prefix);
        var (user, sku, coupon, activity) = ($"user-{tag}", $"sku-{tag}", $"coupon-{tag}", $"activity-{tag}");
        Assert.True((await fixture.Grains.GetGrain<IStockGrain>(sku).SetAvailableAsync(1000)).Accepted);
        Assert.True((await fixture.Grains.GetGrain<ICouponGrain>(coupon).IssueAsync(1000)).Accepted);
        var ids = Enumerable.Range(0, 4).Select(i => $"{tag}-{i}").ToArray();
        var lines = OrderDriver.Items((sku, 2, 4.25m), ($"{sku}-b", 1, 1m));
        Assert.True((await fixture.Grains.GetGrain<IStockGrain>($"{sku}-b").SetAvailableAsync(1000)).Accepted);

        var total = await _orders.FullLifecycleAsync(ids[0], user, lines, coupon, activity);
        await _orders.PlaceAsync(ids[1], user, lines, coupon, activity);
        await _orders.PayAsync(ids[1], total);
        await _orders.CancelAsync(ids[1]);
        await _orders.PlaceAsync(ids[2], user, lines, coupon, activity);
        await _orders.CancelAsync(ids[2]);
        await _orders.PlaceAsync(ids[3], user, lines, coupon, activity);

        await StoredProgress.WaitFinishedAsync(fixture.Grains, ids[..3], OrderDriver.CatchUpTimeout);
        // The placed order is not final: wait until nothing of it is in flight any more.
        await Eventually.Until(() => Audit.AuditOrdersAsync([ids[3]]), r => r.Notes.Count == 0, OrderDriver.CatchUpTimeout, Describe);
        return new Placed(ids, user, sku, coupon, activity, total);
    }

    [Fact]
    public async Task Orders_that_are_caught_up_audit_with_no_discrepancy_and_their_segments_sum_to_the_heads()
    {
        var placed = await PlaceAsync("audit-ok-");
        var report = await Audit.AuditOrdersAsync(placed.Ids);
        Assert.True(report.Discrepancies.Count == 0, Describe(report));
        Assert.Equal(4, report.Checked);
        Assert.Empty(report.Notes);

        // The checker reads a catalog head under the grain id the catalog grain of that shard has (its head row is
        // written only when a segment closes, so comparing the lists below alone would not show a wrong key).
        foreach (var shard in Enumerable.Range(0, IOrderRelayGrain.Shards))
        {
            Assert.Equal(fixture.Grains.GetGrain<IOrderCatalogGrain>(shard).GetGrainId(),
                GrainId.Create(GrainType.Create("order-catalog"), GrainIdKeyExtensions.CreateIntegerKey(shard)));
        }

        // The segments of the orders' shards, as the catalog grain itself lists them and as storage holds them.
        var sums = new Dictionary<string, (long Reserved, long Committed)>();
        foreach (var shard in placed.Ids.Select(IOrderRelayGrain.ShardOf).Distinct())
        {
            var fromGrain = await fixture.Grains.GetGrain<IOrderCatalogGrain>(shard).GetSegmentsAsync();
            var fromStorage = await Stored.ReadCatalogHeadAsync(shard);
            Assert.Equal(fromGrain.Select(s => (s.Number, s.Count, s.Open, s.FirstCreatedAt, s.LastCreatedAt)),
                fromStorage.Select(s => (s.Number, s.Count, s.Open, s.FirstCreatedAt, s.LastCreatedAt)));
            Assert.True(fromStorage[^1].Count > 0, $"shard {shard}: no order found in its open segment");

            foreach (var segment in fromStorage)
            {
                var audited = await Audit.AuditSegmentAsync(shard, segment.Number);
                Assert.True(audited.Checked > 0);
                // Other tests share this silo (parked orders among them): only these orders' findings must be empty.
                Assert.DoesNotContain(audited.Discrepancies, d => placed.Ids.Contains(d.OrderId));
                foreach (var note in audited.Notes.Where(n => n.Area == "sum"))
                {
                    var parts = note.Detail.Split(' ');
                    if (parts[1] == placed.Sku || parts[1] == placed.Coupon)
                    {
                        var (r, c) = sums.GetValueOrDefault(parts[1]);
                        sums[parts[1]] = (r + long.Parse(parts[2]["reserved=".Length..]), c + long.Parse(parts[3]["committed=".Length..]));
                    }
                }
            }
        }

        // Two units of the SKU and a coupon use held by the placed order; those of the received one sold and redeemed.
        Assert.Equal((2L, 2L), sums[placed.Sku]);
        Assert.Equal((1L, 1L), sums[placed.Coupon]);
        var stock = (await Stored.ReadLedgersAsync(LedgerKind.Stock, [placed.Sku]))[0];
        var coupon = (await Stored.ReadLedgersAsync(LedgerKind.Coupon, [placed.Coupon]))[0];
        Assert.Equal(sums[placed.Sku], (stock.Reserved, stock.Committed));
        Assert.Equal(sums[placed.Coupon], (coupon.Reserved, coupon.Committed));
    }

    [Fact]
    public async Task A_discrepancy_planted_in_storage_is_reported_with_its_order_and_area_and_auditing_repairs_nothing()
    {
        var placed = await PlaceAsync("audit-bad-");

        // A points entry with a wrong amount, and a reservation set back, written straight to storage.
        var award = await PlantAsync("ledger-points", LedgerStateNames.Points, placed.User, $"{placed.Received}:award",
            e => e.Amount += 1);
        await PlantAsync("stock", LedgerStateNames.Stock, placed.Sku, placed.LeftPlaced,
            e => e.Reservation = e.Reservation! with { State = ReservationState.Released });

        var report = await Audit.AuditOrdersAsync(placed.Ids);
        Assert.Equal(4, report.Checked);
        Assert.Equal(
            [(placed.Received, "points"), (placed.LeftPlaced, "stock")],
            report.Discrepancies.Select(d => (d.OrderId, d.Area)).Order());
        Assert.Contains($"{decimal.Floor(placed.Total) + 1}", report.Discrepancies.Single(d => d.Area == "points").Detail);

        // Auditing again finds the same: nothing was repaired, and storage still holds the planted record.
        var again = await Audit.AuditOrdersAsync(placed.Ids);
        Assert.Equal(report.Discrepancies, again.Discrepancies);
        Assert.Equal(award.Amount, (await ReadEntryAsync("ledger-points", LedgerStateNames.Points, placed.User, $"{placed.Received}:award")).Amount);
    }

    [Fact]
    public async Task Auditing_an_order_activates_none_of_its_grains()
    {
        var id = OrderDriver.NewId("audit-absent-");
        var report = await Audit.AuditOrdersAsync([id]);
        Assert.Equal(0, report.Checked);
        Assert.Empty(report.Discrepancies);
        Assert.Equal("order", Assert.Single(report.Notes).Area);

        // Every activation in the silo keyed by an order id, of the order's grain types (order, subscribers, replica).
        var management = fixture.Grains.GetGrain<IManagementGrain>(0);
        string[] types = ["order", "inventory", "points", "order-sync", "order-replica", "coupon", "sms", "activity-gmv"];
        async Task<string[]> ActiveAsync(string orderId) =>
            (await management.GetDetailedGrainStatistics())
            .Where(g => g.GrainId.Key.ToString() == orderId && types.Contains(g.GrainId.Type.ToString()))
            .Select(g => g.GrainId.ToString()).ToArray();

        // The check sees an activation at all: another order's grain, woken by a read, is there.
        var control = OrderDriver.NewId("audit-control-");
        await fixture.Grains.GetGrain<IOrderGrain>(control).GetAsync();
        Assert.Contains($"order/{control}", await ActiveAsync(control));
        Assert.Empty(await ActiveAsync(id));

        await Assert.ThrowsAsync<ArgumentException>(() => Audit.AuditOrdersAsync(Enumerable.Range(0, IStoredStateGrain.MaxBatch + 1).Select(i => $"o{i}").ToArray()));
    }

    private static LedgerEntries EntriesOf(string ledgerType, string stateName, string ledgerKey) =>
        BalanceLedgerGrain.EntriesOf(GrainId.Create(ledgerType, ledgerKey), stateName);

    private async Task<LedgerEntry> ReadEntryAsync(string ledgerType, string stateName, string ledgerKey, string entryKey)
    {
        var record = (await EntryStore.ReadAsync(EntriesOf(ledgerType, stateName, ledgerKey), [entryKey]))[0];
        Assert.True(record.RecordExists, $"{ledgerType} {ledgerKey}: no record of {entryKey}");
        return record.State!;
    }

    /// <summary>Changes one ledger entry's record in storage (its version kept, so the checker takes it over the head's journal).</summary>
    private async Task<LedgerEntry> PlantAsync(string ledgerType, string stateName, string ledgerKey, string entryKey, Action<LedgerEntry> change)
    {
        var ledger = EntriesOf(ledgerType, stateName, ledgerKey);
        var record = (await EntryStore.ReadAsync(ledger, [entryKey]))[0];
        Assert.True(record.RecordExists, $"{ledgerType} {ledgerKey}: no record of {entryKey}");
        change(record.State!);
        await EntryStore.WriteAsync(ledger, [record]);
        return record.State!;
    }

    private static string Describe(AuditReport report) =>
        $"checked {report.Checked}; discrepancies: {string.Join("; ", report.Discrepancies.Select(d => $"{d.OrderId} {d.Area}: {d.Detail}"))}; " +
        $"notes: {string.Join("; ", report.Notes.Take(10).Select(n => $"{n.OrderId} {n.Area}: {n.Detail}"))}";
}
