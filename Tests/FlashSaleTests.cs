using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.FlashSales;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;
using Orleans.Storage;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// Flash sales (issue 12) on the embedded profile, through the external client as a buyer would call them: typed
/// answers at admission, the drain's cap counted per window from the stored orders' placement times, no unit sold
/// twice, duplicates, the per-user limit, busy at the bound, not started, a rate change mid-sale, bad input.
/// </summary>
[Collection(FlashSaleFixture.Name)]
public sealed class FlashSaleTests(FlashSaleFixture fixture)
{
    private IGrainFactory Client => fixture.Cluster.Client;

    private IGrainFactory SiloSide => SiloGrains.Of(fixture.Cluster);

    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);

    private static string NewSale() => OrderDriver.NewId("fs-");

    private static string NewSku() => OrderDriver.NewId("fs-sku-");

    private async Task<IReadOnlyList<string>> WinnersAsync(IFlashSaleGrain sale, IEnumerable<string> tickets)
    {
        var statuses = await Task.WhenAll(tickets.Select(sale.GetTicketAsync));
        Assert.All(statuses, s => Assert.NotEqual(TicketState.Pending, s.State));
        return statuses.Where(s => s.State == TicketState.Won).Select(s => s.OrderId!).ToList();
    }

    [Fact]
    public void A_winners_order_id_is_a_valid_id_at_the_longest_sale_id_and_depends_on_the_sales_secret_key()
    {
        var sale = new string('s', FlashSaleLimits.MaxSaleIdLength);
        var (key, other) = (FlashSaleLimits.NewOrderKey(), FlashSaleLimits.NewOrderKey());
        var longest = FlashSaleLimits.OrderIdOf(sale, FlashSaleLimits.Shards - 1, FlashSaleLimits.MaxStock - 1, key);
        Assert.True(Ids.IsValid(longest), longest);
        Assert.Equal(longest, FlashSaleLimits.OrderIdOf(sale, FlashSaleLimits.Shards - 1, FlashSaleLimits.MaxStock - 1, key));
        Assert.NotEqual(longest, FlashSaleLimits.OrderIdOf(sale, FlashSaleLimits.Shards - 1, FlashSaleLimits.MaxStock - 1, other));
        Assert.NotEqual(FlashSaleLimits.OrderIdOf("s", 0, 1, key), FlashSaleLimits.OrderIdOf("s", 0, 2, key));
        Assert.Equal("s.0.1", FlashSaleLimits.OrderIdOf("s", 0, 1, orderKey: null));
    }

    [Fact]
    public async Task The_drain_never_places_more_than_the_cap_in_any_one_second_window()
    {
        const int rate = 20;
        var sku = NewSku();
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(sku, stock: 60, rate));

        var answers = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => sale.BuyAsync($"cap-user-{i}", "r1")));
        Assert.All(answers, a => Assert.Equal(AdmissionOutcome.Queued, a.Outcome));
        var drained = await FlashSaleKit.DrainedAsync(sale, DrainTimeout);

        var winners = await WinnersAsync(sale, answers.Select(a => a.Ticket!));
        Assert.Equal(60, winners.Count);
        var placed = await FlashSaleKit.PlacedAtAsync(SiloSide, winners);
        Assert.Equal(60, placed.Count);
        // The pacer launches at most the rate in any span shorter than a second, so in every second by the drainer's count.
        Assert.True(drained.Windows.Values.Max() <= rate, $"launched per second: {string.Join(", ", drained.Windows.Values)} at a cap of {rate}/s");
        // The orders' own clocks add each placement's latency, which moves a launch group (up to 250 ms of the rate) into
        // the next second now and then: half the rate again bounds that. Without the cap all 60 land within well under a second.
        var busiest = FlashSaleKit.MaxInWindow(placed, TimeSpan.FromSeconds(1));
        Assert.True(busiest <= rate * 3 / 2, $"{busiest} orders placed within one second at a cap of {rate}/s");
    }

    [Fact]
    public async Task A_rate_changed_mid_sale_takes_effect_and_caps_the_rest_of_the_drain()
    {
        var sku = NewSku();
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(sku, stock: 80, rate: 10));
        var answers = await Task.WhenAll(Enumerable.Range(0, 80).Select(i => sale.BuyAsync($"rate-user-{i}", "r1")));
        Assert.All(answers, a => Assert.Equal(AdmissionOutcome.Queued, a.Outcome));

        await Eventually.Until(sale.GetStatusAsync, s => s.Processed >= 15, DrainTimeout, s => $"processed {s.Processed}");
        var changed = await sale.SetRateAsync(50);
        Assert.True(changed.Accepted, changed.Message);
        var changedAt = DateTimeOffset.UtcNow;
        var done = await FlashSaleKit.DrainedAsync(sale, DrainTimeout);
        Assert.Equal(50, done.Spec!.Rate);

        var placed = await FlashSaleKit.PlacedAtAsync(SiloSide, await WinnersAsync(sale, answers.Select(a => a.Ticket!)));
        Assert.Equal(80, placed.Count);
        // By the drainer's count, every second is within its cap: the old one in whole seconds before the change.
        var changedSecond = changedAt.ToUnixTimeSeconds();
        var launched = string.Join(", ", done.Windows.Select(w => $"{w.Key - changedSecond:+0;-0;0}s {w.Value}"));
        Assert.True(done.Windows.Where(w => w.Key < changedSecond).All(w => w.Value <= 10), $"launched per second around the change: {launched}");
        Assert.True(done.Windows.Values.All(v => v <= 50), $"launched per second around the change: {launched}");
        // By the orders' own clocks, with placement latency's spread (half the cap again, as above).
        var before = placed.Where(t => t < changedAt.AddMilliseconds(-200)).ToList();
        Assert.True(FlashSaleKit.MaxInWindow(before, TimeSpan.FromSeconds(1)) <= 15, $"before the change: {FlashSaleKit.MaxInWindow(before, TimeSpan.FromSeconds(1))}/s at a cap of 10");
        Assert.True(FlashSaleKit.MaxInWindow(placed, TimeSpan.FromSeconds(1)) <= 75, $"{FlashSaleKit.MaxInWindow(placed, TimeSpan.FromSeconds(1))}/s at a cap of 50");
        // Faster than the old cap could ever go once the new rate is in force.
        Assert.True(FlashSaleKit.MaxInWindow(placed.Where(t => t > changedAt).ToList(), TimeSpan.FromSeconds(1)) > 13,
            $"after the change to 50/s the busiest second still held only {FlashSaleKit.MaxInWindow(placed.Where(t => t > changedAt).ToList(), TimeSpan.FromSeconds(1))}");
    }

    [Fact]
    public async Task Five_hundred_buyers_racing_for_the_last_units_never_win_more_than_the_stock()
    {
        var sku = NewSku();
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(sku, stock: 5, rate: 1_000), skuUnits: 5);

        var answers = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => sale.BuyAsync($"race-user-{i}", "r1")));

        var queued = answers.Where(a => a.Outcome == AdmissionOutcome.Queued).ToList();
        Assert.Equal(5, queued.Count);
        Assert.Equal(5, queued.Select(a => a.Ticket).Distinct().Count());
        Assert.All(answers.Where(a => a.Outcome != AdmissionOutcome.Queued), a => Assert.Equal(AdmissionOutcome.SoldOut, a.Outcome));
        var status = await FlashSaleKit.DrainedAsync(sale, DrainTimeout);
        Assert.Equal((5L, 5L, 0L, true), (status.Accepted, status.Won, status.UnitsLeft, status.SoldOut));
        await Eventually.Until(sale.GetStatusAsync, s => s.Refused.GetValueOrDefault(AdmissionOutcome.SoldOut) == 495, TimeSpan.FromSeconds(10),
            s => $"sold_out counted {s.Refused.GetValueOrDefault(AdmissionOutcome.SoldOut)} of 495");

        var winners = await WinnersAsync(sale, queued.Select(a => a.Ticket!));
        Assert.Equal(5, winners.Count);
        Assert.Equal(5, (await FlashSaleKit.PlacedAtAsync(SiloSide, winners)).Count);
        var level = await Client.GetGrain<IStockGrain>(sku).GetAsync();
        Assert.Equal((0L, 5L), (level.Available, level.Reserved));

        // Sold out is answered at once, by the silo's own cache, for good.
        Assert.Equal(AdmissionOutcome.SoldOut, (await sale.BuyAsync("late-user", "r1")).Outcome);
    }

    [Fact]
    public async Task A_repeated_request_id_gets_the_first_ticket_and_holds_no_second_unit()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 10, rate: 1, perUserLimit: 5));

        var first = await sale.BuyAsync("dup-user", "req-1");
        var together = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => sale.BuyAsync("dup-user", "req-2")));
        var again = await sale.BuyAsync("dup-user", "req-1");

        Assert.Equal(AdmissionOutcome.Queued, first.Outcome);
        Assert.Equal((AdmissionOutcome.Duplicate, first.Ticket), (again.Outcome, again.Ticket));
        Assert.Single(together, a => a.Outcome == AdmissionOutcome.Queued);
        var ticket = together.Single(a => a.Outcome == AdmissionOutcome.Queued).Ticket;
        Assert.All(together.Where(a => a.Outcome != AdmissionOutcome.Queued), a => Assert.Equal((AdmissionOutcome.Duplicate, ticket), (a.Outcome, a.Ticket)));
        var status = await sale.GetStatusAsync();
        Assert.Equal((2L, 8L), (status.Accepted, status.UnitsLeft));
    }

    [Fact]
    public async Task A_queued_request_retried_after_the_sale_sold_out_is_a_duplicate_with_its_ticket_not_sold_out()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 3, rate: 1_000));
        var first = await sale.BuyAsync("retry-user", "req-1");
        var rest = await Task.WhenAll(sale.BuyAsync("other-1", "r"), sale.BuyAsync("other-2", "r"));
        Assert.Equal(AdmissionOutcome.Queued, first.Outcome);
        Assert.All(rest, a => Assert.Equal(AdmissionOutcome.Queued, a.Outcome));
        // Once a newcomer is refused, the silo's front knows the sale is sold out.
        await Eventually.Until(() => sale.BuyAsync("newcomer", "r"), a => a.Outcome == AdmissionOutcome.SoldOut, TimeSpan.FromSeconds(10),
            a => $"a newcomer was answered {a.Outcome}");

        // The buyer never heard the first answer and sends the same request again: it holds a unit, so it hears its ticket.
        var retried = await sale.BuyAsync("retry-user", "req-1");
        var other = await sale.BuyAsync("retry-user", "req-2");
        await FlashSaleKit.DrainedAsync(sale, DrainTimeout);
        var retriedAfterDrain = await sale.BuyAsync("retry-user", "req-1");

        Assert.Equal((AdmissionOutcome.Duplicate, first.Ticket), (retried.Outcome, retried.Ticket));
        Assert.Equal((AdmissionOutcome.Duplicate, first.Ticket), (retriedAfterDrain.Outcome, retriedAfterDrain.Ticket));
        // A new request of the same buyer holds nothing (which refusal depends on whether the front that took it has heard of the sell-out yet).
        Assert.Contains(other.Outcome, new[] { AdmissionOutcome.SoldOut, AdmissionOutcome.LimitReached });
        Assert.Null(other.Ticket);
        Assert.Equal(TicketState.Won, (await sale.GetTicketAsync(first.Ticket!)).State);
    }

    [Theory]
    [InlineData("flash-shard")] // the segment is written, then the head write that would point past it fails
    [InlineData("flash-shard.segment")] // the segment write itself fails, before the head is written
    public async Task A_batch_whose_sealing_write_fails_answers_busy_and_its_retry_is_stored(string failingRecord)
    {
        // One shard's 256th ticket seals its first segment (a record of its own) before the head write.
        const int shard = 3;
        var saleId = NewSale();
        var key = FlashSaleShardGrain.KeyOf(saleId, shard);
        var users = FlashSaleKit.UsersOfShard(saleId, shard, FlashSaleShardGrain.SegmentSize + 1);
        var sale = await FlashSaleKit.CreateAsync(Client, saleId, FlashSaleKit.Spec(NewSku(), stock: users.Count, rate: 1, buffer: 8 * 512));
        foreach (var user in users.Take(FlashSaleShardGrain.SegmentSize - 1))
        {
            Assert.Equal(AdmissionOutcome.Queued, (await sale.BuyAsync(user, "r1")).Outcome);
        }

        var sealer = users[FlashSaleShardGrain.SegmentSize - 1];
        AdmissionResult refused;
        using (fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.FlashSales, Operations = StorageOperations.Write, GrainType = failingRecord, KeyPrefix = key,
               }))
        {
            refused = await sale.BuyAsync(sealer, "r1");
            Assert.Equal(255, (await StoredHeadAsync(key)).Issued); // nothing of the refused batch is stored
        }

        // The next request seals the segment anew, under a key of its own (the failed batch's record, if any, is never
        // read); the refused request, sent again, is queued after it.
        var other = await sale.BuyAsync(users[^1], "r1");
        var again = await sale.BuyAsync(sealer, "r1");

        Assert.Equal(AdmissionOutcome.Busy, refused.Outcome);
        Assert.Equal(AdmissionOutcome.Queued, other.Outcome);
        Assert.StartsWith($"{FlashSaleLimits.TicketId(shard, FlashSaleShardGrain.SegmentSize - 1)}-", other.Ticket);
        Assert.Equal(AdmissionOutcome.Queued, again.Outcome);
        Assert.StartsWith($"{FlashSaleLimits.TicketId(shard, FlashSaleShardGrain.SegmentSize)}-", again.Ticket);
        var head = await StoredHeadAsync(key);
        Assert.Equal((257L, 1), (head.Issued, head.Sealed));
        var segment = new GrainState<FlashTicketSegment>(new FlashTicketSegment());
        await fixture.Storage(StorageNames.FlashSales).ReadStateAsync("flash-shard.segment", FlashSaleShardGrain.SegmentId(key, 0, head.SegmentTokens[0]), segment);
        Assert.Equal(users.Take(FlashSaleShardGrain.SegmentSize - 1).Append(users[^1]), segment.State!.Tickets.Select(t => t.UserId));
        Assert.Equal(sealer, head.Open.Single().UserId);
    }

    [Fact]
    public async Task A_unit_granted_to_a_batch_whose_write_failed_is_sold_to_the_retry_not_stranded()
    {
        // The last unit is handed to the shard, then its head write fails: the re-read head does not hold the grant, but
        // the sale's record does — the unit is this shard's to sell.
        var saleId = NewSale();
        var user = FlashSaleKit.UsersOfShard(saleId, 5, 1)[0];
        var sale = await FlashSaleKit.CreateAsync(Client, saleId, FlashSaleKit.Spec(NewSku(), stock: 1, rate: 10));
        AdmissionResult refused;
        using (fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.FlashSales, Operations = StorageOperations.Write, GrainType = "flash-shard",
                   KeyPrefix = FlashSaleShardGrain.KeyOf(saleId, 5), Times = 1,
               }))
        {
            refused = await sale.BuyAsync(user, "r1");
        }

        var again = await sale.BuyAsync(user, "r1");

        Assert.Equal(AdmissionOutcome.Busy, refused.Outcome);
        Assert.Equal(AdmissionOutcome.Queued, again.Outcome);
        Assert.StartsWith($"{FlashSaleLimits.TicketId(5, 0)}-", again.Ticket);
        var status = await FlashSaleKit.DrainedAsync(sale, DrainTimeout);
        Assert.Equal((1L, 1L, 0L), (status.Accepted, status.Won, status.UnitsLeft));
    }

    private async Task<FlashShardState> StoredHeadAsync(string shardKey)
    {
        var head = new GrainState<FlashShardState>(new FlashShardState());
        await fixture.Storage(StorageNames.FlashSales).ReadStateAsync("flash-shard", GrainId.Create("flash-shard", shardKey), head);
        return head.State!;
    }

    [Fact]
    public async Task Creating_a_sale_activates_its_shards_and_drainer_before_the_first_buyer_comes()
    {
        var saleId = NewSale();
        await FlashSaleKit.CreateAsync(Client, saleId, FlashSaleKit.Spec(NewSku(), stock: 5, rate: 10));

        var active = (await Client.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics()).Select(g => g.GrainId.ToString()).ToHashSet();
        Assert.All(Enumerable.Range(0, FlashSaleLimits.Shards), s => Assert.Contains($"flash-shard/{FlashSaleShardGrain.KeyOf(saleId, s)}", active));
        Assert.Contains($"flash-drainer/{saleId}", active);
    }

    [Fact]
    public async Task A_user_holds_no_more_than_the_per_user_limit()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 50, rate: 1, perUserLimit: 2));

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => sale.BuyAsync("greedy-user", $"req-{i}")));

        Assert.Equal(2, answers.Count(a => a.Outcome == AdmissionOutcome.Queued));
        Assert.Equal(4, answers.Count(a => a.Outcome == AdmissionOutcome.LimitReached));
        Assert.Equal(AdmissionOutcome.Queued, (await sale.BuyAsync("modest-user", "req-0")).Outcome);
        Assert.Equal(3, (await sale.GetStatusAsync()).Accepted);
    }

    [Fact]
    public async Task A_full_backlog_answers_busy_with_a_retry_hint_and_queues_nothing_more()
    {
        // Buffer 16 over 8 shards: at most 2 waiting per shard; at 1 order/s the backlog stays full for the test.
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 100, rate: 1, buffer: 16));
        var users = FlashSaleKit.UsersOfShard("busy-user", shard: 3, count: 10);

        var answers = await Task.WhenAll(users.Select(u => sale.BuyAsync(u, "r1")));

        var queued = answers.Count(a => a.Outcome == AdmissionOutcome.Queued);
        Assert.InRange(queued, 2, 3); // 2 fit; a third only if the drain took one in between
        var busy = answers.Where(a => a.Outcome == AdmissionOutcome.Busy).ToList();
        Assert.Equal(10 - queued, busy.Count);
        Assert.All(busy, a => Assert.True(a.RetryAfterMs > 0 && a.Ticket is null, $"{a}"));
        Assert.Equal(queued, (await sale.GetStatusAsync()).Accepted);
        Assert.Equal(100 - queued, (await sale.GetStatusAsync()).UnitsLeft);
    }

    [Fact]
    public async Task A_sale_not_started_answers_not_started_and_writes_nothing()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(),
            FlashSaleKit.Spec(NewSku(), stock: 10, rate: 5, startsAt: DateTimeOffset.UtcNow.AddHours(1)));

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => sale.BuyAsync($"early-{i}", "r1")));

        Assert.All(answers, a => Assert.Equal(AdmissionOutcome.NotStarted, a.Outcome));
        // Refusals are counted where they are answered and reported to the record within a cache period.
        var status = await Eventually.Until(sale.GetStatusAsync, s => s.Refused.GetValueOrDefault(AdmissionOutcome.NotStarted) >= 20,
            TimeSpan.FromSeconds(10), s => $"not_started counted {s.Refused.GetValueOrDefault(AdmissionOutcome.NotStarted)} of 20");
        Assert.Equal((0L, 10L, 20L), (status.Accepted, status.UnitsLeft, status.Refused.GetValueOrDefault(AdmissionOutcome.NotStarted)));
    }

    [Fact]
    public async Task Bad_input_is_refused_with_a_typed_answer_and_nothing_is_written()
    {
        var sku = NewSku();
        Assert.True((await Client.GetGrain<IStockGrain>(sku).SetAvailableAsync(10)).Accepted);
        var good = FlashSaleKit.Spec(sku, stock: 5, rate: 10);
        var refusedSpecs = new (string Sale, FlashSaleSpec Spec, FlashSaleError Error)[]
        {
            (NewSale(), good with { Stock = -1 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Stock = 0 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Stock = FlashSaleLimits.MaxStock + 1 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Rate = 0 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Rate = 1_000_000 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { PerUserLimit = 0 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Buffer = 0 }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Price = 0.001m }, FlashSaleError.InvalidInput),
            (NewSale(), good with { Sku = "sku/1" }, FlashSaleError.InvalidInput),
            (NewSale(), good with { StartsAt = DateTimeOffset.UtcNow.AddYears(2) }, FlashSaleError.InvalidInput),
            ("bad/sale", good, FlashSaleError.InvalidInput),
            (new string('s', FlashSaleLimits.MaxSaleIdLength + 1), good, FlashSaleError.InvalidInput),
            (NewSale(), good with { Sku = NewSku() }, FlashSaleError.UnknownSku),
            (NewSale(), good with { Stock = 11 }, FlashSaleError.InsufficientStock),
        };
        foreach (var (saleId, spec, error) in refusedSpecs)
        {
            var result = await Client.GetGrain<IFlashSaleGrain>(saleId).CreateAsync(spec);
            Assert.False(result.Accepted, $"{saleId}: {spec}");
            Assert.Equal(error, result.Error);
            Assert.False(string.IsNullOrEmpty(result.Message));
            Assert.False(await StoredAsync(saleId), $"sale {saleId} was written by a refused create");
        }

        var unknown = Client.GetGrain<IFlashSaleGrain>(NewSale());
        Assert.Equal(AdmissionOutcome.UnknownSale, (await unknown.BuyAsync("u-1", "r-1")).Outcome);
        Assert.Equal(TicketState.Unknown, (await unknown.GetTicketAsync("0-0")).State);
        Assert.Equal(FlashSaleError.UnknownSale, (await unknown.SetRateAsync(10)).Error);
        Assert.False((await unknown.GetStatusAsync()).Exists);

        var saleId2 = NewSale();
        var sale = await FlashSaleKit.CreateAsync(Client, saleId2, good, skuUnits: 10);
        Assert.Equal(AdmissionOutcome.InvalidInput, (await sale.BuyAsync("u/1", "r-1")).Outcome);
        Assert.Equal(AdmissionOutcome.InvalidInput, (await sale.BuyAsync("u-1", "")).Outcome);
        Assert.Equal(AdmissionOutcome.InvalidInput, (await sale.BuyAsync("u-1", new string('r', 129))).Outcome);
        Assert.Equal(TicketState.Unknown, (await sale.GetTicketAsync("x")).State);
        Assert.Equal(TicketState.Unknown, (await sale.GetTicketAsync("9-0")).State);
        Assert.Equal(TicketState.Unknown, (await sale.GetTicketAsync("0-5")).State);
        Assert.Equal(FlashSaleError.InvalidInput, (await sale.SetRateAsync(0)).Error);
        Assert.Equal(FlashSaleError.InvalidInput, (await sale.SetRateAsync(FlashSaleLimits.MaxRate + 1)).Error);
        Assert.Equal(FlashSaleError.SaleExists, (await sale.CreateAsync(good with { Stock = 4 })).Error);
        Assert.True((await sale.CreateAsync(good)).Accepted); // the same settings again: a repeat
        var status = await sale.GetStatusAsync();
        Assert.Equal((0L, 5L, 10), (status.Accepted, status.UnitsLeft, status.Spec!.Rate));

        // The sale's internals answer no client.
        var shard = Client.GetGrain<IFlashSaleShardGrain>(FlashSaleShardGrain.KeyOf(saleId2, 0));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => shard.AdmitAsync("u-1", "r-1"));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Client.GetGrain<IFlashSaleRecordGrain>(saleId2).TakeUnitsAsync(0, 5));
    }

    /// <summary>Whether the sale's record exists in storage (read straight from the silo's storage provider).</summary>
    private async Task<bool> StoredAsync(string saleId)
    {
        var storage = fixture.Storage(StorageNames.FlashSales);
        var state = new GrainState<FlashSaleRecord>(new FlashSaleRecord());
        await storage.ReadStateAsync("flash-sale", GrainId.Create("flash-sale", saleId), state);
        return state.RecordExists;
    }
}

public sealed class FlashSaleFixture : SiloFixture<FlashSaleFixture.Configurator>
{
    public const string Name = "flash-sale";

    public sealed class Configurator : ISiloConfigurator
    {
        // One silo, as ./run.sh runs it: the silo-local storage (which refuses a write made without the stored record's
        // ETag, as Azure Tables do) and storage faults for the drills.
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.UseEmbeddedOrderStorage(singleSilo: true).AddOrderMessaging().AddStorageFaultInjection();
    }

    public IGrainStorage Storage(string name) =>
        ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredKeyedService<IGrainStorage>(name);
}

[CollectionDefinition(FlashSaleFixture.Name)]
public sealed class FlashSaleCollection : ICollectionFixture<FlashSaleFixture>;
