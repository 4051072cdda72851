using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Client;
using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// A flash sale on the durable profile (Azure Table state, Azurite) loses no queued request and oversells nothing when
/// one of two silos dies mid-sale: while buyers are still being admitted and the drain is turning tickets into orders.
/// Buyers retry a retriable error with the same request id, as <c>flashsale buy</c> does. Verified from what the buyers
/// were told (every ticket reaches a final answer), from the stored orders, and from the SKU's stock record.
/// </summary>
[Collection(DurableCollection.Name)]
public sealed class FlashSaleKillTests(DurableClusterFixture fixture, ITestOutputHelper output)
{
    // Fewer units than buyers: the sale sells out while retries of requests whose answers died with the silo are still in
    // flight, and such a retry must hear duplicate with its ticket, not sold out.
    private const int Stock = 30;
    private const int Buyers = 45;

    [Fact]
    public async Task Killing_a_silo_mid_sale_loses_no_queued_request_and_oversells_nothing()
    {
        await fixture.RestoreSilosAsync();
        var saleId = OrderDriver.NewId("fs-kill-");
        var sku = $"{saleId}-sku";
        // 10 orders/s: the drain is still running when the silo dies, and Azurite keeps up.
        var sale = await FlashSaleKit.CreateAsync(fixture.Grains, saleId, FlashSaleKit.Spec(sku, Stock, rate: 10));
        var clock = Stopwatch.StartNew();
        var answers = new ConcurrentDictionary<string, AdmissionResult>();
        var errors = new ConcurrentQueue<string>();

        var buying = Parallel.ForEachAsync(Enumerable.Range(0, Buyers), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
        {
            var user = $"{saleId}-u{i}";
            answers[user] = await BuyWithRetriesAsync(sale, user, "r1", errors);
        });
        await Eventually.Until(() => Task.FromResult(answers.Count), n => n >= Buyers / 3, TimeSpan.FromSeconds(60), n => $"{n} buyers answered");

        var victim = fixture.Cluster.GetActiveSilos().Last();
        await fixture.Cluster.KillSiloAsync(victim);
        var killedAt = clock.Elapsed;
        var survivor = fixture.Cluster.GetActiveSilos().First();
        var membership = ((Orleans.TestingHost.InProcessSiloHandle)survivor).SiloHost.Services.GetRequiredService<Orleans.Runtime.ISiloStatusOracle>();
        await Eventually.Until(() => Task.FromResult(membership.GetApproximateSiloStatus(victim.SiloAddress)), s => s == Orleans.Runtime.SiloStatus.Dead,
            TimeSpan.FromSeconds(60), s => $"the survivor still sees {victim.SiloAddress} as {s}");
        await buying;

        Assert.All(answers.Values, a => Assert.True(a.Outcome is AdmissionOutcome.Queued or AdmissionOutcome.Duplicate or AdmissionOutcome.SoldOut, $"{a}"));
        var tickets = answers.Values.Where(a => a.Ticket is not null).Select(a => a.Ticket!).ToList();
        Assert.Equal(tickets.Count, tickets.Distinct().Count());

        // Every queued request reaches its final answer (asking about a pending ticket also wakes the drain, wherever it lives now).
        var finals = await Eventually.Until(() => Task.WhenAll(tickets.Select(sale.GetTicketAsync)),
            all => all.All(t => t.State is TicketState.Won or TicketState.SoldOut), TimeSpan.FromSeconds(120),
            all => $"{all.Count(t => t.State == TicketState.Pending)} pending, {all.Count(t => t.State == TicketState.Unknown)} unknown of {all.Length} tickets");
        var winners = finals.Where(t => t.State == TicketState.Won).ToList();
        var status = await sale.GetStatusAsync();
        output.WriteLine($"killed at {killedAt.TotalSeconds:0.0} s; {tickets.Count} queued, {winners.Count} won, status accepted {status.Accepted} won {status.Won} backlog {status.Backlog}; {errors.Count} retried errors: {string.Join(" | ", errors.Take(5))}");

        // No queued request lost: the stored counters agree with what the buyers were told, and every winner's order exists.
        Assert.Equal(tickets.Count, status.Accepted);
        Assert.Equal(0, status.Backlog);
        Assert.Equal(winners.Count, status.Won);
        Assert.Equal(winners.Count, winners.Select(w => w.OrderId).Distinct().Count());
        var stored = await fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadOrderDetailsAsync(winners.Select(w => w.OrderId!).ToList());
        Assert.All(stored, o => Assert.True(o.Exists && o.Items.Single() is { Quantity: 1 } line && line.Sku == sku, $"order {o.OrderId}: {o.Status}"));
        Assert.All(stored.Zip(winners), x => Assert.Equal(x.Second.UserId, x.First.UserId));

        // Nothing oversold: never more winners than stock, and the SKU's record holds exactly the winners' units.
        Assert.InRange(winners.Count, 1, Stock);
        var level = await Eventually.Until(() => fixture.Grains.GetGrain<IStockGrain>(sku).GetAsync(), l => l.Pending == 0, TimeSpan.FromSeconds(90), l => $"{l}");
        Assert.Equal((long)winners.Count, level.Reserved + level.Sold);
        Assert.Equal(Stock - winners.Count, level.Available);
    }

    /// <summary>What a buyer's service does: the library's retry of transient failures, and a busy answer retried after its hint.</summary>
    private static async Task<AdmissionResult> BuyWithRetriesAsync(IFlashSaleGrain sale, string user, string request, ConcurrentQueue<string> errors)
    {
        var caller = new ResilientCaller(new ResilienceOptions { GiveUpAfter = TimeSpan.FromSeconds(90) });
        caller.Retrying += (ex, _, _) => errors.Enqueue($"{user}: {ex.GetType().Name}");
        var giveUp = Stopwatch.StartNew();
        while (true)
        {
            var answer = await caller.ExecuteAsync(() => sale.BuyAsync(user, request));
            if (answer.Outcome != AdmissionOutcome.Busy || giveUp.Elapsed > TimeSpan.FromSeconds(90))
            {
                return answer;
            }

            errors.Enqueue($"{user}: busy ({answer.Message})");
            // The buyer honours the sale's retry-after hint, as a client must (part of what is under test); bounded above.
            await Task.Delay(answer.RetryAfterMs ?? 500);
        }
    }
}
