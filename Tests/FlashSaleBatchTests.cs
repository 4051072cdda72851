using OrderFlow.Client;
using OrderFlow.Contracts;
using OrderFlow.Grains.FlashSales;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// Many buyers' requests in one call (<see cref="IFlashSaleGrain.BuyManyAsync"/>) and the client library that fills such
/// calls from concurrent single buys (<see cref="FlashSaleBuyer"/>): each request is answered exactly as a single buy
/// would be, through the external client on the embedded profile.
/// </summary>
[Collection(FlashSaleFixture.Name)]
public sealed class FlashSaleBatchTests(FlashSaleFixture fixture)
{
    private IGrainFactory Client => fixture.Cluster.Client;

    private static string NewSale() => OrderDriver.NewId("fsb-");

    private static string NewSku() => OrderDriver.NewId("fsb-sku-");

    [Fact]
    public async Task Each_request_of_a_batch_is_answered_as_a_single_buy_would_be()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 10, rate: 1));
        var buyers = Enumerable.Range(0, 7).Select(i => $"batch-user-{i}").ToList();
        Assert.True(buyers.Select(FlashSaleLimits.ShardOf).Distinct().Count() > 1, "the buyers should span shards");
        var requests = buyers.Select(u => new BuyRequest(u, "r1"))
            .Append(new BuyRequest(buyers[0], "r1")) // the same request again in the same call
            .Append(new BuyRequest(buyers[1], "r2")) // a second unit for a buyer with a limit of one
            .Append(new BuyRequest("bad/user", "r1"))
            .Append(new BuyRequest(buyers[2], ""))
            .Append(null!)
            .ToList();

        var answers = await sale.BuyManyAsync(requests);

        Assert.Equal(requests.Count, answers.Count);
        Assert.All(answers.Take(7), a => Assert.Equal(AdmissionOutcome.Queued, a.Outcome));
        Assert.Equal(7, answers.Take(7).Select(a => a.Ticket).Distinct().Count());
        Assert.Equal((AdmissionOutcome.Duplicate, answers[0].Ticket), (answers[7].Outcome, answers[7].Ticket));
        Assert.Equal(AdmissionOutcome.LimitReached, answers[8].Outcome);
        Assert.All(answers.Skip(9), a => Assert.Equal((AdmissionOutcome.InvalidInput, null), (a.Outcome, a.Ticket)));
        // The tickets are the buyers' own, as a single buy's would be.
        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(buyers[i], (await sale.GetTicketAsync(answers[i].Ticket!)).UserId);
        }

        var status = await sale.GetStatusAsync();
        Assert.Equal((7L, 3L), (status.Accepted, status.UnitsLeft));
        // Asked again one by one: duplicates with the same tickets.
        for (var i = 0; i < 7; i++)
        {
            var again = await sale.BuyAsync(buyers[i], "r1");
            Assert.Equal((AdmissionOutcome.Duplicate, answers[i].Ticket), (again.Outcome, again.Ticket));
        }
    }

    [Fact]
    public async Task A_buyers_second_request_after_his_first_ends_sold_out_in_the_same_commit_is_sold_out_not_limit_reached()
    {
        // Five requests of one shard's users in one call: the shard's pump takes the first alone, the other four together.
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 3, rate: 1));
        var users = FlashSaleKit.UsersOfShard(OrderDriver.NewId("same-commit-"), shard: 0, count: 4);
        List<BuyRequest> requests = [new(users[0], "r1"), new(users[1], "r1"), new(users[2], "r1"), new(users[3], "r1"), new(users[3], "r2")];

        var answers = await sale.BuyManyAsync(requests);

        // Users 1 and 2 take the last two units; user 3's first request finds none. His second was counted against his
        // limit while the first was still a candidate: it must not be answered limit_reached for a unit he never got.
        Assert.Equal(
            [AdmissionOutcome.Queued, AdmissionOutcome.Queued, AdmissionOutcome.Queued, AdmissionOutcome.SoldOut, AdmissionOutcome.SoldOut],
            answers.Select(a => a.Outcome));
    }

    [Fact]
    public async Task A_shard_whose_write_fails_answers_its_requests_busy_and_the_other_shards_of_the_batch_queue_theirs()
    {
        var saleId = NewSale();
        var sale = await FlashSaleKit.CreateAsync(Client, saleId, FlashSaleKit.Spec(NewSku(), stock: 10, rate: 1));
        var healthy = FlashSaleKit.UsersOfShard($"{saleId}-ok", shard: 0, count: 2);
        var failing = FlashSaleKit.UsersOfShard($"{saleId}-down", shard: 3, count: 2);
        List<BuyRequest> requests = [new(healthy[0], "r1"), new(failing[0], "r1"), new(healthy[1], "r1"), new(failing[1], "r1")];

        IReadOnlyList<AdmissionResult> answers;
        using (fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.FlashSales, Operations = StorageOperations.Write, GrainType = "flash-shard",
                   KeyPrefix = FlashSaleShardGrain.KeyOf(saleId, 3),
               }))
        {
            answers = await sale.BuyManyAsync(requests);
        }

        // A failed write is a typed, retriable answer for that shard's requests only; nothing of them was queued.
        Assert.Equal([AdmissionOutcome.Queued, AdmissionOutcome.Busy, AdmissionOutcome.Queued, AdmissionOutcome.Busy], answers.Select(a => a.Outcome));
        Assert.Equal(2L, (await sale.GetStatusAsync()).Accepted);
        // Sent again once storage takes writes: queued, and the queued ones are duplicates with their tickets.
        var again = await sale.BuyManyAsync(requests);
        Assert.Equal([AdmissionOutcome.Duplicate, AdmissionOutcome.Queued, AdmissionOutcome.Duplicate, AdmissionOutcome.Queued], again.Select(a => a.Outcome));
        Assert.Equal((answers[0].Ticket, answers[2].Ticket), (again[0].Ticket, again[2].Ticket));
    }

    [Fact]
    public async Task A_batch_over_the_bound_is_refused_whole_and_queues_nothing()
    {
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 10, rate: 1));
        var tooMany = Enumerable.Range(0, FlashSaleLimits.MaxBuyBatch + 1).Select(i => new BuyRequest($"many-{i}", "r1")).ToList();

        var answers = await sale.BuyManyAsync(tooMany);

        Assert.Equal(tooMany.Count, answers.Count);
        Assert.All(answers, a => Assert.Equal(AdmissionOutcome.InvalidInput, a.Outcome));
        Assert.Contains($"at most {FlashSaleLimits.MaxBuyBatch}", answers[0].Message);
        var status = await sale.GetStatusAsync();
        Assert.Equal((0L, 10L), (status.Accepted, status.UnitsLeft));
        Assert.Empty(await sale.BuyManyAsync([]));
        // At the bound, the batch is taken.
        var atBound = await sale.BuyManyAsync(tooMany.Take(FlashSaleLimits.MaxBuyBatch).ToList());
        Assert.Equal(10, atBound.Count(a => a.Outcome == AdmissionOutcome.Queued));
        Assert.Equal(FlashSaleLimits.MaxBuyBatch - 10, atBound.Count(a => a.Outcome == AdmissionOutcome.SoldOut));
    }

    [Fact]
    public async Task A_batch_for_an_unknown_or_unstarted_sale_is_refused_request_by_request()
    {
        var requests = new List<BuyRequest> { new("early-1", "r1"), new("bad/user", "r1"), new("early-2", "r1") };

        var unknown = await Client.GetGrain<IFlashSaleGrain>(NewSale()).BuyManyAsync(requests);
        var later = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: 5, rate: 1, startsAt: DateTimeOffset.UtcNow.AddHours(1)));
        var early = await later.BuyManyAsync(requests);

        Assert.Equal([AdmissionOutcome.UnknownSale, AdmissionOutcome.InvalidInput, AdmissionOutcome.UnknownSale], unknown.Select(a => a.Outcome));
        Assert.Equal([AdmissionOutcome.NotStarted, AdmissionOutcome.InvalidInput, AdmissionOutcome.NotStarted], early.Select(a => a.Outcome));
        Assert.Equal(0L, (await later.GetStatusAsync()).Accepted);
    }

    [Fact]
    public async Task Concurrent_buyers_through_the_library_share_calls_and_win_exactly_the_stock()
    {
        const int buyers = 300;
        const int stock = 100;
        var sale = await FlashSaleKit.CreateAsync(Client, NewSale(), FlashSaleKit.Spec(NewSku(), stock: stock, rate: 1_000));
        var saleId = sale.GetPrimaryKeyString();
        await using var buyer = new FlashSaleBuyer(Client, saleId);

        var answers = await Task.WhenAll(Enumerable.Range(0, buyers).Select(i => buyer.BuyAsync($"lib-user-{i}", "r1")));

        Assert.Equal(stock, answers.Count(a => a.Outcome == AdmissionOutcome.Queued));
        Assert.Equal(buyers - stock, answers.Count(a => a.Outcome == AdmissionOutcome.SoldOut));
        Assert.Equal(buyers, buyer.Sent);
        Assert.True(buyer.Calls < buyers, $"{buyer.Calls} calls for {buyers} concurrent buys: none were shared");
        var status = await FlashSaleKit.DrainedAsync(sale, TimeSpan.FromSeconds(60));
        Assert.Equal((long)stock, status.Won);
        var tickets = await Task.WhenAll(answers.Where(a => a.Ticket is not null).Select(a => sale.GetTicketAsync(a.Ticket!)));
        Assert.All(tickets, t => Assert.Equal(TicketState.Won, t.State));
        Assert.Equal(stock, tickets.Select(t => t.UserId).Distinct().Count());
    }
}

/// <summary>
/// How <see cref="FlashSaleBuyer"/> groups buys, against a sale that answers when the test lets it (so the grouping is
/// exact, not a matter of timing).
/// </summary>
public sealed class FlashSaleBuyerTests
{
    /// <summary>Answers each request with its request id as the ticket; holds each call until released.</summary>
    private sealed class HeldSale : IFlashSaleGrain
    {
        private readonly List<(IReadOnlyList<BuyRequest> Requests, TaskCompletionSource Release)> _calls = [];
        private readonly SemaphoreSlim _arrived = new(0);

        public Exception? FailWith { get; set; }

        public IReadOnlyList<int> BatchSizes
        {
            get
            {
                lock (_calls)
                {
                    return _calls.Select(c => c.Requests.Count).ToList();
                }
            }
        }

        public async Task<IReadOnlyList<AdmissionResult>> BuyManyAsync(IReadOnlyList<BuyRequest> requests)
        {
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var failure = FailWith;
            lock (_calls)
            {
                _calls.Add((requests, release));
            }

            _arrived.Release();
            await release.Task;
            return failure is null
                ? requests.Select(r => new AdmissionResult(AdmissionOutcome.Queued, r.RequestId)).ToList()
                : throw failure;
        }

        public async Task WaitForCallAsync(int number)
        {
            await _arrived.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(number, BatchSizes.Count);
        }

        public void Release(int call)
        {
            lock (_calls)
            {
                _calls[call - 1].Release.SetResult();
            }
        }

        public Task<AdmissionResult> BuyAsync(string userId, string requestId) => throw new NotSupportedException();

        public Task<FlashSaleCommandResult> CreateAsync(FlashSaleSpec spec) => throw new NotSupportedException();

        public Task<FlashSaleCommandResult> SetRateAsync(int rate) => throw new NotSupportedException();

        public Task<TicketStatus> GetTicketAsync(string ticket) => throw new NotSupportedException();

        public Task<FlashSaleStatus> GetStatusAsync() => throw new NotSupportedException();
    }

    /// <summary>
    /// One buy whose call the sale holds, then <paramref name="more"/> buys, which wait in the buyer's queue (a buy
    /// returns once it is queued; none may be answered while the call before is held).
    /// </summary>
    private static async Task<(Task<AdmissionResult> First, List<Task<AdmissionResult>> Others)> HoldFirstCallAsync(HeldSale sale, FlashSaleBuyer buyer, int more)
    {
        var first = buyer.BuyAsync("u-0", "r-0");
        await sale.WaitForCallAsync(1);
        var rest = Enumerable.Range(1, more).Select(i => buyer.BuyAsync($"u-{i}", $"r-{i}")).ToList();
        Assert.All(rest, b => Assert.False(b.IsCompleted));
        return (first, rest);
    }

    /// <summary>Releases calls 1 … <paramref name="calls"/>, each after it was made.</summary>
    private static async Task ReleaseCallsAsync(HeldSale sale, int calls)
    {
        for (var call = 1; call <= calls; call++)
        {
            if (call > 1)
            {
                await sale.WaitForCallAsync(call);
            }

            sale.Release(call);
        }
    }

    [Fact]
    public async Task Buys_that_come_while_a_call_is_out_go_together_in_the_next_call_each_with_its_own_answer()
    {
        var sale = new HeldSale();
        await using var buyer = new FlashSaleBuyer(sale, new FlashSaleBuyerOptions { MaxInFlight = 1 });

        var (first, rest) = await HoldFirstCallAsync(sale, buyer, 99);
        await ReleaseCallsAsync(sale, 2);

        Assert.Equal("r-0", (await first).Ticket);
        var answers = await Task.WhenAll(rest);
        Assert.Equal(Enumerable.Range(1, 99).Select(i => $"r-{i}"), answers.Select(a => a.Ticket));
        Assert.Equal([1, 99], sale.BatchSizes);
        Assert.Equal((2L, 100L), (buyer.Calls, buyer.Sent));
    }

    [Fact]
    public async Task No_call_carries_more_than_the_batch_bound()
    {
        var sale = new HeldSale();
        await using var buyer = new FlashSaleBuyer(sale, new FlashSaleBuyerOptions { MaxInFlight = 1, MaxBatch = 40 });

        var (first, rest) = await HoldFirstCallAsync(sale, buyer, 100);
        await ReleaseCallsAsync(sale, 4);

        await Task.WhenAll(rest.Append(first));
        Assert.Equal([1, 40, 40, 20], sale.BatchSizes);
    }

    [Fact]
    public async Task A_failed_call_fails_every_buy_in_it_and_the_next_buys_go_on()
    {
        var sale = new HeldSale { FailWith = new TimeoutException("the gateway did not answer") };
        await using var buyer = new FlashSaleBuyer(sale, new FlashSaleBuyerOptions { MaxInFlight = 1 });

        var (first, held) = await HoldFirstCallAsync(sale, buyer, 5);
        await ReleaseCallsAsync(sale, 2);

        foreach (var buy in held.Append(first))
        {
            Assert.Equal("the gateway did not answer", (await Assert.ThrowsAsync<TimeoutException>(() => buy)).Message);
        }

        sale.FailWith = null;
        var after = buyer.BuyAsync("u-0", "r-0");
        await sale.WaitForCallAsync(3);
        sale.Release(3);
        Assert.Equal("r-0", (await after).Ticket);
    }

    [Fact]
    public async Task Disposing_waits_for_the_buys_taken_and_refuses_new_ones()
    {
        var sale = new HeldSale();
        var buyer = new FlashSaleBuyer(sale);
        var taken = buyer.BuyAsync("u-0", "r-0");
        await sale.WaitForCallAsync(1);

        var disposing = buyer.DisposeAsync().AsTask();
        Assert.False(disposing.IsCompleted, "disposed while a buy was still out");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => buyer.BuyAsync("u-1", "r-1"));
        sale.Release(1);
        await disposing;
        await buyer.DisposeAsync(); // a second dispose does nothing

        Assert.Equal("r-0", (await taken).Ticket);
    }
}
