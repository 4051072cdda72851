using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Orders;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace OrderFlow.Tests;

/// <summary>
/// Unpaid orders cancel themselves: a silo whose payment timeout is 3 s, whose deadline shards look every 250 ms and
/// ask an unpaid order again after 1 s. The checks read stored state through <see cref="IStoredStateGrain"/> and the
/// silo's grain storage, which activate no order, so looking never wakes an order that its shard should have asked.
/// </summary>
[Collection(PaymentTimeoutCollection.Name)]
public sealed class PaymentTimeoutTests(PaymentTimeoutFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private OrderDriver Orders => new(fixture.Grains);

    private IStoredStateGrain Stored => fixture.Grains.GetGrain<IStoredStateGrain>(0);

    [Fact]
    public async Task An_unpaid_order_is_cancelled_with_reason_payment_timeout_once_without_any_call()
    {
        var id = OrderDriver.NewId("unpaid-");
        var clock = Stopwatch.StartNew();
        await Orders.PlaceAsync(id, "user-pt", OrderDriver.Items(($"sku-{id}", 2, 4.50m)));
        // Armed durably before the placement was answered, in its shard's record: no reminder of its own.
        var placedAt = (await Orders.Order(id).GetEventsAsync(0))[0].OccurredAt;
        Assert.Equal(placedAt + PaymentTimeoutFixture.Timeout, (await fixture.StoredDeadlinesAsync(id)).GetValueOrDefault(id));
        Assert.Empty(await fixture.RemindersOfAsync(id));

        var cancelled = await Eventually.Until(() => ReadAsync(id), o => o.Status == OrderStatus.Cancelled, Bound,
            o => $"order {id}: expected Cancelled by the payment timeout, stored {o.Status} at sequence {o.LastSequence}");
        var after = clock.Elapsed;
        Assert.True(after >= PaymentTimeoutFixture.Timeout - TimeSpan.FromMilliseconds(100), $"order {id} cancelled after {after}, before its timeout");

        // Once: it stays at [placed, cancelled] while more ticks could come.
        await Eventually.Holds(() => ReadAsync(id), o => o.LastSequence == 2, PaymentTimeoutFixture.RetryPeriod * 3,
            o => $"order {id}: expected 2 events, stored {o.LastSequence}");
        var events = await Orders.Order(id).GetEventsAsync(0);
        Assert.IsType<OrderPlaced>(events[0]);
        var cancel = Assert.IsType<OrderCancelled>(Assert.Single(events, e => e is OrderCancelled));
        Assert.Equal(("payment timeout", false), (cancel.Reason, cancel.WasPaid));
        Assert.Equal(2L, cancelled.LastSequence);
        await Eventually.Until(() => fixture.Deadlines(id).FindAsync(id), deadline => deadline is null, Bound, deadline => $"order {id} still armed until {deadline}");

        // The cancellation gave the order's units back (the inventory subscriber released its reservation).
        var stock = await Eventually.Until(async () => (await Stored.ReadLedgersAsync(LedgerKind.Stock, [$"sku-{id}"]))[0],
            l => l.Reserved == 0, Bound, l => $"stock of {id}: {l}");
        Assert.Equal((OrderDriver.StockPerSku, 0L, 0L), (stock.Available, stock.Reserved, stock.Committed));
        await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], Bound);
        await AuditCheck.AssertCleanAsync(fixture.Grains, [id]);
        output.WriteLine($"order {id} cancelled {after.TotalSeconds:0.0} s after placement (timeout {PaymentTimeoutFixture.Timeout.TotalSeconds} s)");
    }

    [Fact]
    public async Task A_paid_order_is_never_cancelled_and_its_payment_repeated_after_the_deadline_is_answered_as_a_repeat()
    {
        var id = OrderDriver.NewId("paid-");
        var total = await Orders.PlaceAsync(id, "user-pt", OrderDriver.Items(("sku-pt", 1, 7m)));
        Assert.True((await fixture.StoredDeadlinesAsync(id)).ContainsKey(id));
        var pay = new PayOrder($"{id}-pay", $"pay-{id}", total);
        Assert.True((await Orders.Order(id).PayAsync(pay)).Accepted);
        // Disarmed by the payment (one-way; stored with the shard's next write).
        await Eventually.Until(() => fixture.Deadlines(id).FindAsync(id), deadline => deadline is null, Bound, deadline => $"order {id} still armed until {deadline}");

        await Eventually.Holds(() => ReadAsync(id), o => (o.Status, o.LastSequence) == (OrderStatus.Paid, 2),
            PaymentTimeoutFixture.Timeout + PaymentTimeoutFixture.RetryPeriod * 3,
            o => $"order {id}: expected Paid at sequence 2, stored {o.Status} at {o.LastSequence}");

        var again = await Orders.Order(id).PayAsync(pay);
        Assert.Equal((true, true, 2L, OrderStatus.Paid), (again.Accepted, again.Repeated, again.Sequence, again.Status));
    }

    [Fact]
    public async Task A_payment_after_the_timeout_is_refused_as_timed_out_and_the_order_stays_cancelled()
    {
        var id = OrderDriver.NewId("late-");
        var total = await Orders.PlaceAsync(id, "user-pt", OrderDriver.Items(("sku-pt", 1, 7m)));
        await Eventually.Until(() => ReadAsync(id), o => o.Status == OrderStatus.Cancelled, Bound,
            o => $"order {id}: expected Cancelled by the payment timeout, stored {o.Status}");

        var late = await Orders.Order(id).PayAsync(new PayOrder($"{id}-pay", $"pay-{id}", total));

        Assert.False(late.Accepted);
        Assert.Equal((OrderErrorCode.PaymentTimedOut, OrderStatus.Cancelled), (late.Error!.Code, late.Status));
        Assert.Equal(2L, (await ReadAsync(id)).LastSequence);
    }

    /// <summary>
    /// Payments sent around each order's deadline, all at once: every order ends either paid (its payment accepted,
    /// no cancellation) or cancelled by the timeout (its payment refused as timed out) — never both, never neither.
    /// </summary>
    [Fact]
    public async Task A_payment_racing_the_timeout_either_wins_or_is_refused_never_both_never_neither()
    {
        const int count = 40;
        var random = new Random(11);
        var ids = Enumerable.Range(0, count).Select(i => OrderDriver.NewId($"race-{i}-")).ToArray();
        var placed = await Task.WhenAll(ids.Select(async id =>
        {
            var total = await Orders.PlaceAsync(id, "user-pt", OrderDriver.Items(("sku-pt", 1, 3m)));
            return (Id: id, Total: total, At: Stopwatch.GetTimestamp());
        }));

        // The delay is what is under test here, not a wait for a condition: each payment is sent within ±1.5 s of its
        // order's deadline (as the client's clock sees the placement), so some land before the tick and some after.
        var results = await Task.WhenAll(placed.Select(async order =>
        {
            var offset = TimeSpan.FromMilliseconds(random.Next(-1500, 1500));
            var wait = PaymentTimeoutFixture.Timeout + offset - Stopwatch.GetElapsedTime(order.At);
            if (wait > TimeSpan.Zero)
            {
                // The payment is sent at its chosen instant around the deadline: the timing is what is under test, not a wait for a condition.
                await Task.Delay(wait);
            }

            return await Orders.Order(order.Id).PayAsync(new PayOrder($"{order.Id}-pay", $"pay-{order.Id}", order.Total));
        }));

        var paid = results.Where(r => r.Accepted).Select(r => r.OrderId).ToHashSet();
        Assert.All(results.Where(r => !r.Accepted), r => Assert.Equal(OrderErrorCode.PaymentTimedOut, r.Error?.Code));

        // Settled: paid orders stay paid past every tick that could still come; refused ones are cancelled.
        var final = await Eventually.Holds(() => Stored.ReadOrdersAsync(ids),
            all => all.All(o => o.LastSequence == 2 && o.Status == (paid.Contains(o.OrderId) ? OrderStatus.Paid : OrderStatus.Cancelled)),
            PaymentTimeoutFixture.RetryPeriod * 3,
            all => string.Join("; ", all.Where(o => o.LastSequence != 2 || o.Status != (paid.Contains(o.OrderId) ? OrderStatus.Paid : OrderStatus.Cancelled))
                .Select(o => $"order {o.OrderId}: payment {(paid.Contains(o.OrderId) ? "accepted" : "refused")}, stored {o.Status} at {o.LastSequence}")));

        foreach (var id in ids)
        {
            var events = await Orders.Order(id).GetEventsAsync(0);
            string[] expected = paid.Contains(id) ? [nameof(OrderPlaced), nameof(OrderPaid)] : [nameof(OrderPlaced), nameof(OrderCancelled)];
            Assert.Equal(expected, events.Select(e => e.GetType().Name));
        }

        output.WriteLine($"{count} orders paid within ±1.5 s of their deadline: {paid.Count} paid, {count - paid.Count} cancelled by the timeout");
        Assert.All(final, o => Assert.True(o.Status is OrderStatus.Paid or OrderStatus.Cancelled));
        Assert.InRange(paid.Count, 1, count - 1);
    }

    /// <summary>
    /// The shard's record is bounded: with <see cref="OrderTimeoutOptions.MaxAwaitingPaymentPerShard"/> orders awaiting
    /// payment in one shard, a placement of another of its orders is refused with <see cref="OrderErrorCode.TryLater"/>
    /// before the order is written — its relay mark taken back, what it reserved given back — and goes through once a
    /// deadline is disarmed.
    /// </summary>
    [Fact]
    public async Task A_full_deadline_shard_refuses_a_placement_as_try_later_before_the_order_is_written_and_takes_it_once_a_deadline_is_disarmed()
    {
        var id = OrderDriver.NewId("full-");
        var shard = IOrderRelayGrain.ShardOf(id);
        var fillers = Enumerable.Range(0, 10_000).Select(i => $"filler-{id}-{i}").Where(f => IOrderRelayGrain.ShardOf(f) == shard)
            .Take(PaymentTimeoutFixture.MaxPerShard).ToArray();
        var deadlines = fixture.Deadlines(id);
        var far = DateTimeOffset.UtcNow.AddHours(1);
        var sku = $"sku-{id}";
        var place = new PlaceOrder($"{id}-place", "user-pt", OrderDriver.Items((sku, 1, 2m)));
        try
        {
            foreach (var filler in fillers)
            {
                Assert.True(await deadlines.ArmAsync(filler, far));
            }

            await Orders.EnsureInventoryAsync(place.Items, null);
            var refused = await Orders.Order(id).PlaceAsync(place);
            Assert.Equal((false, OrderErrorCode.TryLater), (refused.Accepted, refused.Error?.Code));
            Assert.Contains("retry later", refused.Error!.Message);
            Assert.Equal(OrderStatus.None, (await ReadAsync(id)).Status);
            Assert.Null(await deadlines.FindAsync(id));
            // Its relay mark was taken back (nothing to relay), and the stock it reserved went back.
            Assert.Null(await SiloGrains.Of(fixture.Cluster).GetGrain<IOrderRelayGrain>(shard).FindAsync(id));
            var stock = (await Stored.ReadLedgersAsync(LedgerKind.Stock, [sku]))[0];
            Assert.Equal((0L, 0L), (stock.Reserved, (long)stock.Pending));

            await deadlines.DisarmAsync(fillers[0], far);
            await Eventually.Until(() => deadlines.FindAsync(fillers[0]), d => d is null, Bound, d => $"filler still armed until {d}");
            (await Orders.Order(id).PlaceAsync(place)).EnsureAccepted();
            Assert.Equal(OrderStatus.Placed, (await ReadAsync(id)).Status);
            Assert.NotNull(await deadlines.FindAsync(id));
        }
        finally
        {
            foreach (var filler in fillers)
            {
                await deadlines.DisarmAsync(filler, far);
            }
        }
    }

    /// <summary>
    /// No stored write grows with the orders awaiting payment: a shard keeps at most <see cref="OrderTimeoutOptions.DeadlinePageSize"/>
    /// deadlines in its open record and seals the rest into page records of that size; once every order of a page is
    /// disarmed the page record is deleted, and a new activation of the shard reads its pages back.
    /// </summary>
    [Fact]
    public async Task Deadlines_are_stored_in_pages_of_bounded_size_and_a_page_whose_orders_are_all_disarmed_is_deleted()
    {
        const int Orders = 3 * PaymentTimeoutFixture.PageSize + 3;
        var id = OrderDriver.NewId("paged-");
        var shard = IOrderRelayGrain.ShardOf(id);
        var ids = Enumerable.Range(0, 10_000).Select(i => $"paged-{id}-{i}").Where(f => IOrderRelayGrain.ShardOf(f) == shard).Take(Orders).ToArray();
        var deadlines = fixture.Deadlines(id);
        var far = DateTimeOffset.UtcNow.AddHours(1);
        var cluster = fixture.Cluster;
        foreach (var order in ids)
        {
            Assert.True(await deadlines.ArmAsync(order, far));
        }

        // Every arm was stored before it was answered; none in a record of more than a page.
        var (open, pages) = await StoredTimeouts.DeadlineRecordsAsync(cluster, shard);
        var stored = await StoredTimeouts.DeadlinesAsync(cluster, shard);
        Assert.All(ids, order => Assert.Equal(far, stored[order]));
        Assert.InRange(open.Count, 0, PaymentTimeoutFixture.PageSize - 1);
        // (Other tests of this cluster may hold deadlines in the same shard: only pages holding these orders are looked at.)
        var ourPages = pages.Where(page => page.Entries.Keys.Any(ids.Contains)).ToArray();
        Assert.True(ourPages.Length >= 3, $"{ourPages.Length} pages hold these orders");
        Assert.All(ourPages, page => Assert.True(page.Exists && page.Entries.Count <= PaymentTimeoutFixture.PageSize, $"page {page.Number}: {page.Entries.Count} deadlines"));
        var sealedPage = ourPages[0];

        // A new activation of the shard reads its pages back: every deadline is found again.
        var management = cluster.Client.GetGrain<IManagementGrain>(0);
        var shardGrain = deadlines.GetGrainId();
        await Eventually.Until(async () =>
            {
                await management.ForceActivationCollection(TimeSpan.Zero);
                return (await management.GetDetailedGrainStatistics()).Any(g => g.GrainId == shardGrain);
            }, active => !active, Bound, _ => "the shard is still active");
        foreach (var order in ids)
        {
            Assert.Equal(far, await deadlines.FindAsync(order));
        }

        // Disarm the orders of one sealed page: its record is deleted and the open record stops listing it.
        foreach (var order in sealedPage.Entries.Keys)
        {
            await deadlines.DisarmAsync(order, far);
        }

        await Eventually.Until(() => StoredTimeouts.DeadlineRecordsAsync(cluster, shard), r => r.Pages.All(p => p.Number != sealedPage.Number),
            Bound, r => $"page {sealedPage.Number} still listed");
        Assert.False(await StoredTimeouts.DeadlinePageExistsAsync(cluster, shard, sealedPage.Number));
        foreach (var order in ids)
        {
            await deadlines.DisarmAsync(order, far);
        }
    }

    /// <summary>
    /// Storage faults while pages are sealed and deleted lose no deadline: a seal whose open-record write lands but
    /// answers with a failure still serves the sealed page (read back, not forgotten), and a page delete whose answer is
    /// lost is read back and counted as done.
    /// </summary>
    [Fact]
    public async Task A_seal_and_a_page_delete_whose_answers_are_lost_keep_every_deadline_and_leave_no_page_behind()
    {
        var cluster = fixture.Cluster;
        var id = OrderDriver.NewId("seal-fault-");
        // A shard with nothing stored (so the eighth arm seals) and a two-digit key (so the fault's key prefix names it alone).
        var shard = -1;
        for (var candidate = 16; candidate < IOrderRelayGrain.Shards && shard < 0; candidate++)
        {
            var (open, pages) = await StoredTimeouts.DeadlineRecordsAsync(cluster, candidate);
            shard = open.Count == 0 && pages.Count == 0 ? candidate : -1;
        }

        Assert.True(shard >= 0, "no empty shard among 16-63");
        var ids = Enumerable.Range(0, 100_000).Select(i => $"{id}-{i}").Where(o => IOrderRelayGrain.ShardOf(o) == shard)
            .Take(PaymentTimeoutFixture.PageSize).ToArray();
        var deadlines = SiloGrains.Of(cluster).GetGrain<IPaymentDeadlineShardGrain>(shard);
        var key = deadlines.GetGrainId().Key.ToString();
        var far = DateTimeOffset.UtcNow.AddHours(1);
        foreach (var order in ids[..^1])
        {
            Assert.True(await deadlines.ArmAsync(order, far));
        }

        // The last arm's own write, then the page's, go through; the open record's write that lists the page lands and fails.
        using (var lost = fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.Orders, GrainType = "payment-deadlines", KeyPrefix = key,
                   Operations = StorageOperations.Write, Skip = 2, Times = 1, Mode = StorageFaultMode.AfterCall,
               }))
        {
            Assert.True(await deadlines.ArmAsync(ids[^1], far));
            Assert.Equal(1, lost.Hits);
        }

        var (stored, sealedPages) = await StoredTimeouts.DeadlineRecordsAsync(cluster, shard);
        Assert.Empty(stored);
        var page = Assert.Single(sealedPages);
        Assert.Equal(ids.Order(), page.Entries.Keys.Order());
        foreach (var order in ids)
        {
            Assert.Equal(far, await deadlines.FindAsync(order)); // the activation serves the page it sealed
        }

        // Every order of the page disarmed: its delete lands and answers with a failure; read back, it counts as done.
        using var deleteLost = fixture.Faults.Fail(new StorageFault
        {
            StorageName = StorageNames.Orders, GrainType = "payment-deadlines", KeyPrefix = key,
            Operations = StorageOperations.Clear, Times = 1, Mode = StorageFaultMode.AfterCall,
        });
        foreach (var order in ids)
        {
            await deadlines.DisarmAsync(order, far);
        }

        await Eventually.Until(() => StoredTimeouts.DeadlineRecordsAsync(cluster, shard), r => r.Pages.Count == 0,
            Bound, r => $"pages {string.Join(", ", r.Pages.Select(p => p.Number))} still listed");
        Assert.Equal(1, deleteLost.Hits);
        Assert.False(await StoredTimeouts.DeadlinePageExistsAsync(cluster, shard, page.Number));
    }

    /// <summary>
    /// A shard holding deadlines keeps one reminder, which brings it back if its silo dies. When registering it fails (the
    /// reminder table down), the shard registers it at its next round once the table answers again, not only at its next
    /// arm — which might never come for the orders it holds.
    /// </summary>
    [Fact]
    public async Task A_shard_whose_reminder_registration_failed_registers_it_at_a_later_round_with_no_new_arm()
    {
        var cluster = fixture.Cluster;
        var table = ((InProcessSiloHandle)cluster.Primary!).SiloHost!.Services.GetRequiredService<IReminderTable>();
        var id = OrderDriver.NewId("reminder-fault-");
        // A shard holding nothing and with no reminder: its next arm is the one that registers it.
        var shard = -1;
        for (var candidate = 0; candidate < IOrderRelayGrain.Shards && shard < 0; candidate++)
        {
            var (open, pages) = await StoredTimeouts.DeadlineRecordsAsync(cluster, candidate);
            var grain = SiloGrains.Of(cluster).GetGrain<IPaymentDeadlineShardGrain>(candidate).GetGrainId();
            shard = open.Count == 0 && pages.Count == 0 && (await table.ReadRows(grain)).Reminders.Count == 0 ? candidate : -1;
        }

        Assert.True(shard >= 0, "no idle shard without a reminder");
        var deadlines = SiloGrains.Of(cluster).GetGrain<IPaymentDeadlineShardGrain>(shard);
        var order = Enumerable.Range(0, 100_000).Select(i => $"{id}-{i}").First(o => IOrderRelayGrain.ShardOf(o) == shard);
        var far = DateTimeOffset.UtcNow.AddHours(1);
        var faults = fixture.ReminderFaults;
        try
        {
            faults.FailWrites = true;
            Assert.True(await deadlines.ArmAsync(order, far)); // armed and stored: the reminder is not
            Assert.True(faults.Failed > 0);
            Assert.Empty((await table.ReadRows(deadlines.GetGrainId())).Reminders);
        }
        finally
        {
            faults.FailWrites = false;
        }

        await Eventually.Until(async () => (await table.ReadRows(deadlines.GetGrainId())).Reminders.Select(r => r.ReminderName).ToArray(),
            names => names.Contains("payment-deadlines"), Bound, names => $"reminders: [{string.Join(", ", names)}]");
        await deadlines.DisarmAsync(order, far);
    }

    /// <summary>A disarm overtaken by a newer arm of the same order (one-way calls may arrive in any order) removes nothing.</summary>
    [Fact]
    public async Task A_stale_disarm_leaves_a_newer_deadline_of_the_same_order_armed()
    {
        var id = OrderDriver.NewId("stale-disarm-");
        var deadlines = fixture.Deadlines(id);
        var first = DateTimeOffset.UtcNow.AddHours(1);
        Assert.True(await deadlines.ArmAsync(id, first.AddMinutes(1)));
        await deadlines.DisarmAsync(id, first);
        await Eventually.Holds(() => deadlines.FindAsync(id), d => d == first.AddMinutes(1), TimeSpan.FromSeconds(1), d => $"armed until {d}");

        await deadlines.DisarmAsync(id, first.AddMinutes(1));
        await Eventually.Until(() => deadlines.FindAsync(id), d => d is null, Bound, d => $"still armed until {d}");
    }

    private async Task<StoredOrder> ReadAsync(string id) => (await Stored.ReadOrdersAsync([id])).Single();
}

public sealed class PaymentTimeoutFixture : SiloFixture<PaymentTimeoutFixture.Configurator>
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan RetryPeriod = TimeSpan.FromSeconds(1);
    public const int MaxPerShard = 100;
    public const int PageSize = 8;

    public ReminderTableFaults ReminderFaults => ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredService<ReminderTableFaults>();

    public IPaymentDeadlineShardGrain Deadlines(string orderId) => SiloGrains.Of(Cluster).GetGrain<IPaymentDeadlineShardGrain>(IOrderRelayGrain.ShardOf(orderId));

    /// <summary>The stored record of the order's deadline shard, read from the silo's grain storage (nothing activated).</summary>
    public Task<IReadOnlyDictionary<string, DateTimeOffset>> StoredDeadlinesAsync(string orderId) =>
        StoredTimeouts.DeadlinesAsync(Cluster, IOrderRelayGrain.ShardOf(orderId));

    /// <summary>The order grain's stored payment-timeout reminders (the silo's reminder table, read without activating the order).</summary>
    public async Task<IReadOnlyList<string>> RemindersOfAsync(string orderId) =>
        (await StoredTimeouts.OrderRemindersAsync(Cluster, orderId)).Where(name => name == "payment-timeout").ToArray();

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddStorageFaultInjection().AddReminderTableFaults();
            siloBuilder.Services.Configure<OrderTimeoutOptions>(o =>
            {
                o.PaymentTimeout = Timeout;
                o.RetryPeriod = RetryPeriod;
                o.CheckPeriod = TimeSpan.FromMilliseconds(250);
                o.MaxAwaitingPaymentPerShard = MaxPerShard;
                o.DeadlinePageSize = PageSize; // small, so that every test here runs across sealed pages too
            });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PaymentTimeoutCollection : ICollectionFixture<PaymentTimeoutFixture>
{
    public const string Name = "payment-timeout";
}
