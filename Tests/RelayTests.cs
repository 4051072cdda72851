using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>The outbox relay drives every order to its end at every subscriber, with no client touching the order.</summary>
[Collection(PipelineCollection.Name)]
public sealed class RelayTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task An_order_whose_final_event_the_transport_lost_reaches_its_end_at_every_subscriber_with_no_client_touching_it()
    {
        // drop- (ChaosPublisher): the transport accepts event 2 and never delivers it. Here event 2 is the last one,
        // so no later event reveals the gap: before the relay, only a client's look at the order could repair it.
        var id = OrderDriver.NewId("drop-");
        await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)));
        await _orders.CancelAsync(id);

        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal((OrderStatus.Cancelled, 2L), (done[0].Status, done[0].LastSequence));
        Assert.All(done[0].Subscribers, s => Assert.Equal(2L, s.AppliedSequence));

        // Settled: the relay forgets the order, so it holds only orders with undelivered work.
        var shard = fixture.Grains.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(id));
        await Eventually.Until(() => shard.FindAsync(id), entry => entry is null, OrderDriver.CatchUpTimeout, entry => $"relay still holds {entry}");
    }

    /// <summary>
    /// A shard holding more orders than a page (a backlog) writes no more than a page per mark: it keeps at most
    /// <see cref="OrderRelayOptions.PageSize"/> orders in its open record and seals the rest into page records; a mark of an
    /// order held in a page goes to the open record; a new activation serves every order again; once all are forgotten,
    /// their pages are deleted.
    /// </summary>
    [Fact]
    public async Task A_shard_holding_more_than_a_page_of_orders_keeps_each_write_to_a_page_and_deletes_pages_it_no_longer_needs()
    {
        const int PageSize = PipelineFixture.RelayPageSize;
        var id = OrderDriver.NewId("relay-paged-");
        var shard = IOrderRelayGrain.ShardOf(id);
        // Marks of orders never written: the relay holds them (a check finds nothing at or above the mark).
        var ids = Enumerable.Range(0, 100_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == shard).Take(3 * PageSize + 1).ToArray();
        var relay = fixture.Grains.GetGrain<IOrderRelayGrain>(shard);
        foreach (var order in ids)
        {
            await relay.MarkAsync(order, 1);
        }

        // (Other tests of this cluster may hold orders in the same shard: only these orders' records are looked at.)
        var (open, pages) = await StoredRelayAsync(shard);
        Assert.InRange(open.Count, 0, PageSize - 1);
        var ourPages = pages.Where(page => page.Entries.Keys.Any(ids.Contains)).ToArray();
        Assert.True(ourPages.Length >= 3, $"{ourPages.Length} pages hold these orders");
        Assert.All(ourPages, page => Assert.True(page.Exists && page.Entries.Count <= PageSize, $"page {page.Number}: {page.Entries.Count} orders"));
        var stored = new StoredShardPages<RelayRecord>(open, pages).Merged();
        Assert.All(ids, order => Assert.Equal(1L, stored[order].Sequence));
        var sealedOrder = ourPages[0].Entries.Keys.First(ids.Contains);

        // A later mark of an order held in a sealed page is stored in a later record, and counts.
        await relay.MarkAsync(sealedOrder, 2);
        var remarked = await StoredRelayAsync(shard);
        Assert.Equal(2L, remarked.Merged()[sealedOrder].Sequence);

        // A new activation serves every order again.
        var management = fixture.Cluster.Client.GetGrain<IManagementGrain>(0);
        await Eventually.Until(async () =>
            {
                await management.ForceActivationCollection(TimeSpan.Zero);
                return (await management.GetDetailedGrainStatistics()).Any(g => g.GrainId == relay.GetGrainId());
            }, active => !active, OrderDriver.CatchUpTimeout, _ => "the relay shard is still active");
        foreach (var order in ids)
        {
            Assert.Equal(order == sealedOrder ? 2L : 1L, (await relay.FindAsync(order))?.Sequence);
        }

        // All forgotten: the pages that held them are deleted and no longer listed.
        var ours = (await StoredRelayAsync(shard)).Pages.Where(page => page.Entries.Keys.All(ids.Contains)).Select(page => page.Number).ToArray();
        Assert.NotEmpty(ours);
        foreach (var order in ids)
        {
            await relay.DeliveredAsync(order, 2);
        }

        await Eventually.Until(() => StoredRelayAsync(shard), r => !r.Pages.Any(page => ours.Contains(page.Number)) && !r.Open.Keys.Any(ids.Contains),
            OrderDriver.CatchUpTimeout, r => $"pages {string.Join(", ", r.Pages.Select(p => p.Number))}, {r.Open.Count} open");
        var storage = SiloStorage();
        foreach (var number in ours)
        {
            var page = new GrainState<ShardPage<RelayRecord>>();
            await storage.ReadStateAsync($"relay.{number}", relay.GetGrainId(), page);
            Assert.False(page.RecordExists, $"page {number} still stored");
        }
    }

    /// <summary>
    /// A page whose orders are nearly all forgotten does not stay behind for the one held long: its remaining order moves
    /// into the open record and the page record is deleted, so pages do not pile up behind a few long-held orders.
    /// </summary>
    [Fact]
    public async Task A_page_left_with_one_long_held_order_is_folded_into_the_open_record_and_deleted()
    {
        const int PageSize = PipelineFixture.RelayPageSize;
        var id = OrderDriver.NewId("relay-compact-");
        var shard = IOrderRelayGrain.ShardOf(id);
        var ids = Enumerable.Range(0, 100_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == shard).Take(2 * PageSize).ToArray();
        var relay = fixture.Grains.GetGrain<IOrderRelayGrain>(shard);
        foreach (var order in ids)
        {
            await relay.MarkAsync(order, 1);
        }

        // A page holding only these orders: forget all of them but one.
        var page = (await StoredRelayAsync(shard)).Pages.First(p => p.Entries.Count == PageSize && p.Entries.Keys.All(ids.Contains));
        var kept = page.Entries.Keys.First();
        foreach (var order in page.Entries.Keys.Where(o => o != kept))
        {
            await relay.DeliveredAsync(order, 1);
        }

        var folded = await Eventually.Until(() => StoredRelayAsync(shard), r => r.Pages.All(p => p.Number != page.Number),
            OrderDriver.CatchUpTimeout, r => $"page {page.Number} still listed");
        Assert.Equal(1L, folded.Merged()[kept].Sequence);
        Assert.Equal(1L, (await relay.FindAsync(kept))?.Sequence);
        var record = new GrainState<ShardPage<RelayRecord>>();
        await SiloStorage().ReadStateAsync($"relay.{page.Number}", relay.GetGrainId(), record);
        Assert.False(record.RecordExists);
        foreach (var order in ids)
        {
            await relay.DeliveredAsync(order, 1);
        }
    }

    /// <summary>
    /// A mark taken back (<c>UnmarkAsync</c>) must be stored, or the order stays held for good. When the order is held in a
    /// sealed page and the page's write lands but answers with a failure, the shard learns the page's new ETag and
    /// writes it again: the order is no longer held, in memory or in storage.
    /// </summary>
    [Fact]
    public async Task A_mark_taken_back_from_a_sealed_page_is_stored_even_when_the_page_write_lands_but_answers_with_a_failure()
    {
        const int PageSize = PipelineFixture.RelayPageSize;
        var id = OrderDriver.NewId("relay-unmark-");
        // A shard holding nothing (so these orders fill exactly one page) with a two-digit key (so the fault names it alone).
        var shard = -1;
        for (var candidate = 16; candidate < IOrderRelayGrain.Shards && shard < 0; candidate++)
        {
            var (candidateOpen, candidatePages) = await StoredRelayAsync(candidate);
            shard = candidateOpen.Count == 0 && candidatePages.Count == 0 ? candidate : -1;
        }

        Assert.True(shard >= 0, "no empty relay shard among 16-63");
        var ids = Enumerable.Range(0, 100_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == shard).Take(PageSize).ToArray();
        var relay = fixture.Grains.GetGrain<IOrderRelayGrain>(shard);
        foreach (var order in ids)
        {
            await relay.MarkAsync(order, 1);
        }

        var page = Assert.Single((await StoredRelayAsync(shard)).Pages);
        Assert.Equal(ids.Order(), page.Entries.Keys.Order());

        using (var lost = fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.Orders, GrainType = "order-relay", KeyPrefix = relay.GetGrainId().Key.ToString(),
                   Operations = StorageOperations.Write, Times = 1, Mode = StorageFaultMode.AfterCall,
               }))
        {
            await relay.UnmarkAsync(ids[0], 1);
            Assert.Equal(1, lost.Hits);
        }

        Assert.Null(await relay.FindAsync(ids[0]));
        var stored = await StoredRelayAsync(shard);
        Assert.DoesNotContain(ids[0], stored.Merged().Keys);
        Assert.All(ids[1..], order => Assert.Contains(order, stored.Merged().Keys));
        foreach (var order in ids)
        {
            await relay.DeliveredAsync(order, 1);
        }
    }

    private IGrainStorage SiloStorage() =>
        ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders);

    /// <summary>A relay shard's stored records, read from storage (nothing activated): its open record, and each page it lists.</summary>
    private Task<StoredShardPages<RelayRecord>> StoredRelayAsync(int shard) =>
        StoredShardPages<RelayRecord>.ReadAsync<RelayShardState>(SiloStorage(), fixture.Grains.GetGrain<IOrderRelayGrain>(shard).GetGrainId(), "relay");

    [Fact]
    public async Task Order_show_says_whether_the_relay_holds_the_order_and_lag_counts_it_until_it_settles()
    {
        var id = OrderDriver.NewId("drop-");
        await _orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)));
        await _orders.CancelAsync(id);
        var report = await _orders.Operations.InspectAsync(id);
        // The mark is made before each event's write, so the order is held from its first command on.
        Assert.NotNull(report.Relay);
        Assert.Equal(2L, report.Relay!.Sequence);

        await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        await Eventually.Until(() => _orders.Operations.InspectAsync(id), r => r.Relay is null, OrderDriver.CatchUpTimeout, r => $"relay: {r.Relay}");
        var lag = await _orders.Operations.GetLagAsync();
        Assert.Contains(lag, l => l.Subscriber == "points");
    }

    [Fact]
    public async Task A_placement_whose_write_failed_takes_its_relay_mark_back_and_its_retry_marks_again()
    {
        var id = OrderDriver.NewId("unmark-");
        var items = OrderDriver.Items(($"sku-{id}", 1, 2m));
        await _orders.EnsureInventoryAsync(items);
        var place = new PlaceOrder($"{id}-place", $"user-{id}", items);
        using (fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Write, Times = 1,
        }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => _orders.Order(id).PlaceAsync(place));
        }

        // The re-read showed no event 1: the order took its mark back, so the relay does not wait for an event that
        // will never exist (it would otherwise hold the order, and fill its shard with such orders, for good).
        var shard = fixture.Grains.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(id));
        Assert.Null(await shard.FindAsync(id));

        // The caller's retry places the order, and its event reaches every subscriber as usual.
        (await _orders.Order(id).PlaceAsync(place)).EnsureAccepted();
        await _orders.CancelAsync(id);
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.All(done[0].Subscribers, s => Assert.Equal(2L, s.AppliedSequence));
    }

    [Fact]
    public void An_order_is_counted_as_possibly_behind_everywhere_until_a_check_answers_with_names()
    {
        Assert.Equal(["*"], OrderRelayGrain.RowsOf(new RelayRecord { Sequence = 2 }));
        // A check sent and not answered yet (or failed without a report): still unknown, not "nobody behind".
        Assert.Equal(["*"], OrderRelayGrain.RowsOf(new RelayRecord { Sequence = 2, Checks = 3 }));
        Assert.Equal(["sms", "outbox"], OrderRelayGrain.RowsOf(new RelayRecord { Sequence = 2, Checks = 1, Behind = ["sms", "outbox"], ReportedSequence = 2 }));
        // A new event marked since the check that named sms: sms, and anyone else may be behind on the new event (review finding).
        Assert.Equal(["sms", "*"], OrderRelayGrain.RowsOf(new RelayRecord { Sequence = 3, Checks = 1, Behind = ["sms"], ReportedSequence = 2 }));
    }

    [Fact]
    public void Shards_are_stable_across_processes_and_spread_orders()
    {
        Assert.Equal(IOrderRelayGrain.ShardOf("o-1"), IOrderRelayGrain.ShardOf("o-1"));
        var used = Enumerable.Range(0, 2_000).Select(i => IOrderRelayGrain.ShardOf($"order-{i}")).Distinct().Count();
        Assert.Equal(IOrderRelayGrain.Shards, used);
        // FNV-1a is fixed: the same id maps to the same shard in every silo and after every restart.
        Assert.Equal(IOrderRelayGrain.ShardOf("order-42"), (int)(Fnv("order-42") % IOrderRelayGrain.Shards));
    }

    private static uint Fnv(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
