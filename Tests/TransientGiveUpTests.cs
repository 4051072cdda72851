using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>Waiting out a transient failure is bounded by time: past <c>GiveUpAfter</c> it counts, parks, and says why.</summary>
[Collection(TransientGiveUpCollection.Name)]
public sealed class TransientGiveUpTests(TransientGiveUpFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task A_transient_failure_that_outlasts_give_up_after_is_counted_parks_the_order_with_the_reason_and_retry_all_recovers_it()
    {
        var id = OrderDriver.NewId("give-up-");
        var user = $"user-{id}";
        var outageStarted = DateTimeOffset.UtcNow;
        decimal total;
        using (var outage = fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.Ledgers, Operations = StorageOperations.Write, GrainType = "ledger-points", KeyPrefix = user,
               }))
        {
            total = await _orders.PlaceAsync(id, user, OrderDriver.Items(($"sku-{id}", 2, 6.5m)));
            await _orders.PayAsync(id, total);

            var stored = await Eventually.Until(() => fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([id]),
                orders => orders[0].Subscribers.Single(s => s.Subscriber == "points").Parked, OrderDriver.CatchUpTimeout,
                orders => StoredProgress.Describe(orders[0]));
            var points = stored[0].Subscribers.Single(s => s.Subscriber == "points");
            Assert.True(points is { Attempts: StorageOutageFixture.MaxAttempts, FailedAttempts: StorageOutageFixture.MaxAttempts, TransientFailures: > 0 }, points.ToString());

            var letter = (await Eventually.Until(() => _orders.Operations.ListDeadLettersAsync("points"), l => l.Any(x => x.OrderId == id),
                OrderDriver.CatchUpTimeout, l => $"{l.Count} letters, none for {id}")).Single(l => l.OrderId == id);
            Assert.StartsWith("transient failures for ", letter.Error);
            Assert.Contains("StorageFaultException", letter.Error);
            Assert.Equal((2L, StorageOutageFixture.MaxAttempts), (letter.Sequence, letter.Attempts));
            Assert.True(letter.LastFailureAt - letter.FirstFailureAt >= TransientGiveUpFixture.GiveUpAfter, $"parked too early: {letter}");

            var status = (await _orders.Operations.InspectAsync(id)).Subscribers.Single(s => s.Subscriber == "points");
            Assert.True(status is { Parked: true, TransientSince: not null, TransientAttempts: > 0 }, status.ToString());
            Assert.Equal(letter.Error, status.LastError);
            Assert.Contains("StorageFaultException", status.LastTransientError);
            Assert.True(outage.Hits > StorageOutageFixture.MaxAttempts, $"{outage.Hits} failed writes");
        }

        // The operator, once storage is back: resume everything parked since the outage began.
        var retried = await _orders.Operations.RetryAllAsync("points", outageStarted);
        Assert.Equal((1, 0), (retried.Resumed, retried.Failed));
        await _orders.ShipAsync(id);
        await _orders.ReceiveAsync(id);
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], OrderDriver.CatchUpTimeout);
        Assert.All(done[0].Subscribers, s => Assert.False(s.Parked));
        var ledger = (await fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadLedgersAsync(LedgerKind.Points, [user]))[0];
        Assert.Equal((true, decimal.Floor(total), 1), (ledger.Exists, ledger.Balance, ledger.Entries));
    }
}
