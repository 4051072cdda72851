using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// <c>demo</c>: drives N orders through their lifecycle with concurrent callers, waits until every subscriber has
/// caught up, checks every effect ledger against what the client was told, and prints a summary plus a RESULT line.
/// </summary>
public static class DemoCommand
{
    private const int InspectBatch = 100;

    /// <summary>What one demo run does; every value checked while the command line is parsed.</summary>
    public sealed record Settings(int Orders, int Concurrency, TimeSpan CatchUp, string RunId);

    public static Command Create(CliContext cli)
    {
        var orders = CliValues.NumberOption("--orders", 1000, 1, 1_000_000, "Orders to drive through their lifecycle");
        var concurrency = CliValues.NumberOption("--concurrency", 64, 1, 4096, "Concurrent callers");
        var catchUp = CliValues.NumberOption("--catch-up-seconds", 180, 1, 3600, "How long to wait for every subscriber to catch up, in seconds");
        var runId = CliValues.Single("--run-id", "ID", $"Prefix of every id the run makes (default: demo + time + random; at most {CliValues.MaxRunIdLength} characters)", CliValues.RunId);
        var demo = new Command("demo", "Drives orders through their lifecycle concurrently, waits for every subscriber, checks every ledger, prints a RESULT line")
        {
            orders, concurrency, catchUp, runId,
        };
        demo.SetAction(parse =>
        {
            var settings = new Settings(parse.GetValue(orders), parse.GetValue(concurrency), TimeSpan.FromSeconds(parse.GetValue(catchUp)),
                parse.GetValue(runId) ?? $"demo{DateTime.UtcNow:HHmmss}{Random.Shared.Next(1000):000}");
            return cli.WithClientAsync(parse, client => RunAsync(client, settings, cli.Output));
        });
        return demo;
    }

    public static async Task<int> RunAsync(IClusterClient client, Settings settings, TextWriter output)
    {
        var (orders, concurrency, catchUp, runId) = settings;

        var plans = Enumerable.Range(0, orders).Select(i => OrderPlan.Create(runId, i)).ToArray();
        var latencies = new double[plans.Sum(p => p.CommandCount)];
        var latencyCount = 0;
        var rejected = 0;
        var clock = Stopwatch.StartNew();
        output.WriteLine($"demo {runId}: {orders} orders, {concurrency} concurrent callers");

        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (plan, _) =>
        {
            foreach (var step in plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)))
            {
                var started = Stopwatch.GetTimestamp();
                var result = await step();
                latencies[Interlocked.Increment(ref latencyCount) - 1] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!result.Accepted)
                {
                    Interlocked.Increment(ref rejected);
                    Console.Error.WriteLine($"error: order {plan.OrderId} refused a command: {result.Error}");
                }
            }
        });
        var commandSeconds = clock.Elapsed.TotalSeconds;
        output.WriteLine($"  {latencyCount} commands in {commandSeconds:0.0} s ({latencyCount / commandSeconds:0} commands/s), {rejected} refused");

        var ops = client.GetGrain<IOperationsGrain>(0);
        var subscribers = await ops.GetSubscribersAsync();
        var reports = await WaitForCatchUpAsync(ops, plans, catchUp, output);
        var caughtUpSeconds = clock.Elapsed.TotalSeconds;

        var tally = Tally.From(reports);
        var (outOfOrder, ledgerMismatches) = await LedgerCheck.RunAsync(client, plans, reports, output);
        Array.Sort(latencies, 0, latencyCount);
        var p50 = Percentile(latencies, latencyCount, 0.50);
        var p99 = Percentile(latencies, latencyCount, 0.99);

        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");
        output.WriteLine($"  all caught up after {caughtUpSeconds:0.0} s: {tally.Events} events, {tally.Applied} applications " +
                         $"({tally.Events} x {subscribers.Count} subscribers = {tally.Events * subscribers.Count})");
        output.WriteLine($"  duplicates dropped {tally.Duplicates}, failed attempts retried {tally.Retried}, orders parked {tally.Parked}, " +
                         $"gap repairs {tally.GapRepairs}, events held unapplied {tally.Pending}, lost {tally.Lost}");
        output.WriteLine($"  replica order violations {outOfOrder}, ledger mismatches {ledgerMismatches}");
        output.WriteLine($"  command latency p50 {p50:0.00} ms, p99 {p99:0.00} ms");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT orders={orders} events={tally.Events} applied={tally.Applied} duplicates_ignored={tally.Duplicates} " +
            $"out_of_order_applied={outOfOrder} lost={tally.Lost} p50_ms={p50:0.00} p99_ms={p99:0.00} " +
            $"retried={tally.Retried} parked={tally.Parked} pending={tally.Pending} ledger_mismatches={ledgerMismatches}"));

        // Parked orders hold their effects back by design, so ledgers can only be required to match without them.
        var healthy = tally.Lost == 0 && outOfOrder == 0 && rejected == 0 && (ledgerMismatches == 0 || tally.Parked > 0);
        return healthy ? 0 : 1;
    }

    private static async Task<IReadOnlyList<OrderReport>> WaitForCatchUpAsync(
        IOperationsGrain ops, IReadOnlyList<OrderPlan> plans, TimeSpan limit, TextWriter output)
    {
        var deadline = Stopwatch.StartNew();
        var pending = plans.Select(p => p.OrderId).ToList();
        var done = new List<OrderReport>();
        while (true)
        {
            var reports = new List<OrderReport>();
            try
            {
                foreach (var batch in pending.Chunk(InspectBatch))
                {
                    reports.AddRange(await ops.InspectManyAsync(batch));
                }
            }
            catch (Exception ex) when (ex is TimeoutException or OrleansException && deadline.Elapsed < limit)
            {
                // A silo busy joining or leaving the cluster can time a round out: look again, until the deadline.
                output.WriteLine($"  inspection round failed ({ex.GetType().Name}: {ex.Message.Split('\n')[0]}); retrying");
                await Task.Delay(TimeSpan.FromSeconds(1));
                continue;
            }

            done.AddRange(reports.Where(IsSettled));
            pending = reports.Where(r => !IsSettled(r)).Select(r => r.Order.OrderId).ToList();
            if (pending.Count == 0)
            {
                return done;
            }

            if (deadline.Elapsed > limit)
            {
                output.WriteLine($"  gave up waiting after {limit.TotalSeconds:0} s: {pending.Count} orders not caught up");
                done.AddRange(reports.Where(r => !IsSettled(r)));
                return done;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }

    /// <summary>Every subscriber has applied the order's last event, or holds the rest in a parked inbox.</summary>
    private static bool IsSettled(OrderReport report) =>
        report.Subscribers.All(s => s.AppliedSequence >= report.Order.LastSequence || s.Parked);

    private static double Percentile(double[] sorted, int count, double q) =>
        count == 0 ? 0 : sorted[Math.Min(count - 1, (int)Math.Ceiling(q * count) - 1)];
}
