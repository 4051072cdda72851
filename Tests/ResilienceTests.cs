using System.Diagnostics;
using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class ResilienceTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    private T Grain<T>(string key) where T : IGrainWithStringKey => fixture.Grains.GetGrain<T>(key);

    [Fact]
    public async Task A_subscriber_that_always_throws_leaves_the_order_path_and_the_other_subscribers_working()
    {
        var id = OrderDriver.NewId("broken-");
        var user = $"user-{id}";

        var total = await _orders.FullLifecycleAsync(id, user, OrderDriver.Items(($"sku-{id}", 2, 4m)), $"coupon-{id}");

        var report = await Eventually.Until(() => _orders.Operations.InspectAsync(id),
            r => r.Subscribers.All(s => s.Subscriber == "inventory" ? s.Parked : s.AppliedSequence == 4),
            OrderDriver.CatchUpTimeout, r => string.Join(", ", r.Subscribers.Select(s => $"{s.Subscriber}={s.AppliedSequence}/{s.Parked}")));
        var inventory = report.Subscribers.Single(s => s.Subscriber == "inventory");
        // Placed (1) has nothing for inventory, which steps over it; it parks at paid (2) and holds the received (4) it
        // was handed next. Shipped (3) has nothing for it either: it is held only if the relay handed it the order's log.
        Assert.Equal(1, inventory.AppliedSequence);
        Assert.Equal([2L, 4], inventory.BufferedSequences.Where(seq => seq != 3));
        Assert.Equal(PipelineFixture.MaxAttempts, inventory.Attempts);
        Assert.Contains("drill", inventory.LastError);
        Assert.All(report.Subscribers.Where(s => s.Subscriber != "inventory"), s => Assert.Equal(Handed.Runs(s.Subscriber, Handed.FullLifecycle), s.HandlerRuns));
        Assert.Equal(decimal.Floor(total), (await Grain<IPointsAccountGrain>(user).GetAsync()).Balance);
        var coupon = await Grain<ICouponGrain>($"coupon-{id}").GetAsync();
        Assert.Equal((1L, 0L), (coupon.Redeemed, coupon.Reserved));
        // The placement reserved the 2 units; with inventory parked the payment never turned them into a sale.
        var stock = await Grain<IStockGrain>($"sku-{id}").GetAsync();
        Assert.Equal((0L, 2L, OrderDriver.StockPerSku - 2), (stock.Sold, stock.Reserved, stock.Available));
        Assert.Equal(ReservationState.Reserved, (await fixture.Grains.GetGrain<IStockReservationsGrain>($"sku-{id}").GetReservationAsync(id))!.State);
        var letter = Assert.Single(await _orders.Operations.ListDeadLettersAsync("inventory"), l => l.OrderId == id);
        Assert.Equal((2L, "OrderPaid", PipelineFixture.MaxAttempts), (letter.Sequence, letter.EventKind, letter.Attempts));
    }

    [Fact]
    public async Task A_subscriber_taking_200_ms_per_event_does_not_slow_order_commands()
    {
        // Same run, same silo: the median command latency of orders whose sms handler takes 200 ms per event,
        // against orders without the delay. Compared as a ratio, never as an absolute time.
        async Task<double> MedianCommandMsAsync(string prefix)
        {
            var samples = new List<double>();
            for (var i = 0; i < 30; i++)
            {
                var id = OrderDriver.NewId(prefix);
                var watch = Stopwatch.StartNew();
                var total = await _orders.PlaceAsync(id, $"user-{prefix}", OrderDriver.Items(("sku-latency", 1, 2m)));
                samples.Add(watch.Elapsed.TotalMilliseconds);
                watch.Restart();
                await _orders.PayAsync(id, total);
                samples.Add(watch.Elapsed.TotalMilliseconds);
                watch.Restart();
                await _orders.ShipAsync(id);
                samples.Add(watch.Elapsed.TotalMilliseconds);
            }

            samples.Sort();
            return samples[samples.Count / 2];
        }

        await MedianCommandMsAsync("fast-warmup-");
        var fast = await MedianCommandMsAsync("fast-");
        var slow = await MedianCommandMsAsync("slow-");
        var fastAgain = await MedianCommandMsAsync("fast-");
        var baseline = (fast + fastAgain) / 2;

        Assert.True(slow <= 1.5 * baseline,
            $"median command latency with a 200 ms subscriber was {slow:0.000} ms against {fast:0.000} / {fastAgain:0.000} ms without (ratio {slow / baseline:0.00}, limit 1.5)");
    }
}
