using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;
using Xunit.Abstractions;
using static OrderFlow.Tests.Durable.OrderEffects;

namespace OrderFlow.Tests.Durable;

[Collection(DurableCollection.Name)]
public sealed class FailoverTests(DurableClusterFixture fixture, ITestOutputHelper output)
{
    private const int OrderCount = 200;

    [Fact]
    public async Task Killing_one_of_two_silos_under_load_loses_and_duplicates_nothing_and_callers_see_only_retriable_errors()
    {
        await fixture.RestoreSilosAsync();
        var run = Guid.NewGuid().ToString("N")[..8];
        // kill- orders: the sms drill makes each of their events take 1.5 s at sms, so when the silo dies many sms
        // inboxes hold an event that is durable but not applied yet, with no retry (and so no reminder) pending.
        var plans = Enumerable.Range(0, OrderCount).Select(i => (Id: $"kill-{run}-{i}", Quantity: 1 + i % 3, Price: 5m + i % 7 + 0.25m)).ToArray();
        var clock = Stopwatch.StartNew();
        var caller = new RetryingCaller(clock, TimeSpan.FromSeconds(90));
        var completed = 0;

        await EnsureInventoryAsync(fixture.Grains, plans.Select(p => (p.Id, p.Quantity, p.Price)));
        var driving = Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 24 }, async (plan, _) =>
        {
            var order = fixture.Grains.GetGrain<IOrderGrain>(plan.Id);
            var total = plan.Quantity * plan.Price;
            var steps = new (string Name, Func<Task<CommandResult>> Call)[]
            {
                ("place", () => order.PlaceAsync(new PlaceOrder($"{plan.Id}-place", UserOf(plan.Id), Items(plan.Id, plan.Quantity, plan.Price), CouponOf(plan.Id), ActivityOf(plan.Id)))),
                ("pay", () => order.PayAsync(new PayOrder($"{plan.Id}-pay", $"pay-{plan.Id}", total))),
                ("ship", () => order.ShipAsync(new ShipOrder($"{plan.Id}-ship"))),
                ("receive", () => order.ConfirmReceiptAsync(new ConfirmReceipt($"{plan.Id}-receive"))),
            };
            for (var i = 0; i < steps.Length; i++)
            {
                var result = await caller.SendAsync($"{plan.Id} {steps[i].Name}", steps[i].Call);
                if (result is null)
                {
                    return;
                }

                // What the client is told: accepted, as event i + 1 of the order, even if an earlier try landed.
                if (!result.Accepted || result.Sequence != i + 1)
                {
                    caller.Failures.Enqueue($"{plan.Id} {steps[i].Name}: told accepted={result.Accepted} sequence={result.Sequence} ({result.Error})");
                    return;
                }

                Interlocked.Increment(ref completed);
            }
        });

        await Eventually.Until(() => Task.FromResult(Volatile.Read(ref completed)), n => n >= OrderCount, TimeSpan.FromSeconds(120),
            n => $"only {n} commands completed before the kill");
        var victim = fixture.Cluster.GetActiveSilos().Last();
        var killedAt = clock.Elapsed;
        var commandsBeforeKill = Volatile.Read(ref completed);
        await fixture.Cluster.KillSiloAsync(victim);
        var survivor = fixture.Cluster.GetActiveSilos().First();
        var membership = ((Orleans.TestingHost.InProcessSiloHandle)survivor).SiloHost.Services.GetRequiredService<Orleans.Runtime.ISiloStatusOracle>();
        await Eventually.Until(() => Task.FromResult(membership.GetApproximateSiloStatus(victim.SiloAddress)), status => status == Orleans.Runtime.SiloStatus.Dead,
            TimeSpan.FromSeconds(60), status => $"the survivor still sees {victim.SiloAddress} as {status}");
        var declaredDeadAt = clock.Elapsed;
        await driving;
        var commandsDoneAt = clock.Elapsed;

        Assert.True(caller.Failures.IsEmpty, string.Join(Environment.NewLine, caller.Failures.Take(10)));
        var ids = plans.Select(p => p.Id).ToArray();
        // Read from storage: nothing is activated (and so repaired) by looking.
        var reports = await StoredProgress.WaitFinishedAsync(fixture.Grains, ids, TimeSpan.FromSeconds(150));
        var caughtUpAt = clock.Elapsed;
        // Every order against its reservations, points, GMV and replica row, from storage: the kill half-wrote nothing.
        await AuditCheck.AssertCleanAsync(fixture.Grains, ids);

        foreach (var (plan, report) in plans.Zip(reports))
        {
            Assert.Equal(plan.Id, report.OrderId);
            Assert.Equal((OrderStatus.Received, 4L), (report.Status, report.LastSequence));
            Assert.All(report.Subscribers, s => Assert.True(s.AppliedSequence == 4 && report.Held(s) == 0 && !s.Parked, StoredProgress.Describe(report)));
        }

        // Exactly once and in order at every effect: a repeated award, redemption, GMV or stock move would change a
        // balance; the replica row counts 4 changes, all in order (a repeat is ignored by version, a reorder is a violation).
        var effects = await Task.WhenAll(plans.Select(p => ReadAsync(fixture.Grains, p.Id)));
        foreach (var (plan, actual) in plans.Zip(effects))
        {
            Assert.True(OfReceivedOrder(plan.Quantity, plan.Price) == actual, $"order {plan.Id}: expected {OfReceivedOrder(plan.Quantity, plan.Price)}, got {actual}");
        }

        var errors = caller.Errors.ToArray();
        var sms = reports.SelectMany(r => r.Subscribers).Where(s => s.Subscriber == "sms").ToArray();
        output.WriteLine($"{OrderCount} orders, {OrderCount * 4} commands; silo {victim.SiloAddress} killed at {killedAt.TotalSeconds:0.0} s after {commandsBeforeKill} commands");
        output.WriteLine($"the survivor declared it dead {(declaredDeadAt - killedAt).TotalSeconds:0.00} s after the kill");
        output.WriteLine(errors.Length == 0
            ? "the callers saw no error at all"
            : $"callers saw {errors.Length} retriable errors ({string.Join(", ", errors.GroupBy(e => e.Type).Select(g => $"{g.Count()} {g.Key}"))}) " +
              $"from {(errors.Min(e => e.At) - killedAt).TotalSeconds:0.00} s to {(errors.Max(e => e.At) - killedAt).TotalSeconds:0.00} s after the kill: " +
              $"failover window {(errors.Max(e => e.At) - killedAt).TotalSeconds:0.00} s");
        output.WriteLine($"all commands answered {(commandsDoneAt - killedAt).TotalSeconds:0.0} s after the kill; every subscriber caught up {(caughtUpAt - killedAt).TotalSeconds:0.0} s after it");
        output.WriteLine($"sms inboxes (1.5 s per event, so many held an unapplied event at the kill): {sms.Sum(s => s.DuplicatesIgnored)} duplicate deliveries dropped; " +
                         $"all subscribers: {reports.SelectMany(r => r.Subscribers).Sum(s => s.DuplicatesIgnored)} duplicates dropped, {reports.SelectMany(r => r.Subscribers).Sum(s => s.GapRepairs)} gap repairs");
        await fixture.RestoreSilosAsync();
    }
}
