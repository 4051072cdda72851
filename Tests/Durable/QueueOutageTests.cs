using System.Collections.Concurrent;
using System.Diagnostics;
using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;
using Xunit.Abstractions;
using static OrderFlow.Tests.Durable.OrderEffects;

namespace OrderFlow.Tests.Durable;

[Collection(DurableCollection.Name)]
public sealed class QueueOutageTests(DurableClusterFixture fixture, ITestOutputHelper output)
{
    private const int OrderCount = 150;
    private static readonly TimeSpan MinimumOutage = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task With_the_queue_service_down_for_15_s_under_load_commands_still_succeed_and_every_effect_lands_once_afterwards()
    {
        await fixture.RestoreSilosAsync();
        var run = Guid.NewGuid().ToString("N")[..8];
        var plans = Enumerable.Range(0, OrderCount).Select(i => (Id: $"outage-{run}-{i}", Quantity: 1 + i % 4, Price: 3m + i % 5 + 0.5m)).ToArray();
        var clock = Stopwatch.StartNew();
        // Ticks of the clock, read by the callers while the test writes them.
        var outageFromTicks = long.MaxValue;
        var outageToTicks = long.MaxValue;
        bool QueueDown(TimeSpan at) => Volatile.Read(ref outageFromTicks) <= at.Ticks && at.Ticks < Volatile.Read(ref outageToTicks);
        var completed = 0;
        var failures = new ConcurrentQueue<string>();
        var duringOutage = new ConcurrentQueue<double>();

        // With the queue service down every command must still be accepted: nothing is refused and no error but a
        // timeout is tolerated. A timeout (the machine is busy; the test client waits 10 s) is retried with the same
        // command, so the same command id, and counted.
        var timeouts = 0;
        async Task<CommandResult> SendAsync(Func<Task<CommandResult>> call)
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return await call();
                }
                catch (TimeoutException) when (attempt < 3)
                {
                    Interlocked.Increment(ref timeouts);
                }
            }
        }

        await EnsureInventoryAsync(fixture.Grains, plans.Select(p => (p.Id, p.Quantity, p.Price)));
        var driving = Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (plan, _) =>
        {
            var order = fixture.Grains.GetGrain<IOrderGrain>(plan.Id);
            var total = plan.Quantity * plan.Price;
            var steps = new Func<Task<CommandResult>>[]
            {
                () => order.PlaceAsync(new PlaceOrder($"{plan.Id}-place", UserOf(plan.Id), Items(plan.Id, plan.Quantity, plan.Price), CouponOf(plan.Id), ActivityOf(plan.Id))),
                () => order.PayAsync(new PayOrder($"{plan.Id}-pay", $"pay-{plan.Id}", total)),
                () => order.ShipAsync(new ShipOrder($"{plan.Id}-ship")),
                () => order.ConfirmReceiptAsync(new ConfirmReceipt($"{plan.Id}-receive")),
            };
            for (var i = 0; i < steps.Length; i++)
            {
                var started = clock.Elapsed;
                try
                {
                    var result = await SendAsync(steps[i]);
                    if (!result.Accepted || result.Sequence != i + 1)
                    {
                        failures.Enqueue($"{plan.Id} step {i + 1}: accepted={result.Accepted} sequence={result.Sequence} ({result.Error})");
                        return;
                    }
                }
                catch (Exception ex)
                {
                    failures.Enqueue($"{plan.Id} step {i + 1} at {started.TotalSeconds:0.0} s (queue down {QueueDown(started)}): {ex.GetType().Name}: {ex.Message}");
                    return;
                }

                var ended = clock.Elapsed;
                if (ended.Ticks > Volatile.Read(ref outageFromTicks) && started.Ticks < Volatile.Read(ref outageToTicks))
                {
                    duringOutage.Enqueue((ended - started).TotalMilliseconds);
                }

                Interlocked.Increment(ref completed);
            }
        });

        await Eventually.Until(() => Task.FromResult(Volatile.Read(ref completed)), n => n >= 100, TimeSpan.FromSeconds(120),
            n => $"only {n} commands completed before the outage");
        await Azurite.StopServiceAsync("queue");
        var outageFrom = clock.Elapsed;
        Volatile.Write(ref outageFromTicks, outageFrom.Ticks);
        try
        {
            // The outage lasts at least 15 s and until 50 commands were answered while it lasted (or the driver ran out).
            await Eventually.Until(() => Task.FromResult((clock.Elapsed - outageFrom, duringOutage.Count, driving.IsCompleted)),
                s => s.Item1 >= MinimumOutage && (s.Count >= 50 || s.IsCompleted), TimeSpan.FromSeconds(90),
                s => $"queue down for {s.Item1.TotalSeconds:0} s, {s.Count} commands answered meanwhile");
        }
        finally
        {
            await Azurite.StartServiceAsync("queue");
            Volatile.Write(ref outageToTicks, clock.Elapsed.Ticks);
        }

        var outageTo = TimeSpan.FromTicks(outageToTicks);

        await driving;
        Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Take(10)));
        var latencies = duringOutage.Order().ToArray();
        Assert.True(latencies.Length >= 20, $"only {latencies.Length} commands ran while the queue service was down");

        // Caught up = every stored inbox says Finished, read from storage: nothing is activated (and so repaired) by looking.
        var reports = await StoredProgress.WaitFinishedAsync(fixture.Grains, plans.Select(p => p.Id).ToArray(), TimeSpan.FromSeconds(150));
        var caughtUpAt = clock.Elapsed;
        await AuditCheck.AssertCleanAsync(fixture.Grains, plans.Select(p => p.Id).ToArray());
        Assert.All(reports, r => Assert.True(r.LastSequence == 4 && r.Subscribers.All(s => s.AppliedSequence == 4 && r.Held(s) == 0), StoredProgress.Describe(r)));
        var effects = await Task.WhenAll(plans.Select(p => ReadAsync(fixture.Grains, p.Id)));
        foreach (var (plan, actual) in plans.Zip(effects))
        {
            Assert.True(OfReceivedOrder(plan.Quantity, plan.Price) == actual, $"order {plan.Id}: expected {OfReceivedOrder(plan.Quantity, plan.Price)}, got {actual}");
        }

        output.WriteLine($"queue service down {(outageTo - outageFrom).TotalSeconds:0.0} s; {latencies.Length} commands accepted meanwhile " +
                         $"(latency p50 {latencies[latencies.Length / 2]:0} ms, max {latencies[^1]:0} ms), none refused or failed, {timeouts} timed out and were retried with the same command id");
        output.WriteLine($"every event of the {OrderCount} orders applied once by every subscriber {(caughtUpAt - outageTo).TotalSeconds:0.0} s after the queue came back; " +
                         $"{reports.SelectMany(r => r.Subscribers).Sum(s => s.DuplicatesIgnored)} duplicate deliveries dropped, {reports.SelectMany(r => r.Subscribers).Sum(s => s.GapRepairs)} gap repairs");
    }
}
