using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// <c>demo</c>: sets up the stock and coupons its orders need, drives N orders through their lifecycle with concurrent
/// callers, races two orders for a single-use coupon, waits until every subscriber has caught up, checks every effect
/// ledger against what the client was told, prints a summary plus a RESULT line, then audits its orders from stored
/// state (<see cref="IAuditGrain"/>) and prints the audit's RESULT line.
/// </summary>
public static class DemoCommand
{
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

        // Every command goes through the resilient caller: a silo that dies with a command in flight costs a retry of
        // the same command (same command id, so never applied twice), not the run. Only a failure that outlasts the
        // caller's bound, or a non-transient one, counts as failed; that order's remaining commands are not sent.
        var caller = new ResilientCaller();

        // A placement reserves each line's stock and the coupon, and is refused without them: exactly what the orders
        // need, so that every order is placed and the SKUs end sold out but for what cancellations gave back.
        var needs = InventoryNeeds.For(plans);
        await needs.ApplyAsync(client, concurrency, caller);
        output.WriteLine($"  setup: {needs.Summary()}");
        var failed = 0;
        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (plan, _) =>
        {
            foreach (var step in plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)))
            {
                var started = Stopwatch.GetTimestamp();
                CommandResult result;
                try
                {
                    result = await caller.ExecuteAsync(step);
                }
                catch (Exception ex)
                {
                    Interlocked.Increment(ref failed);
                    Console.Error.WriteLine($"error: order {plan.OrderId}: a command failed: {ex.GetType().Name}: {Ids.Printable(ex.Message.Split('\n')[0], 200)}");
                    return;
                }

                latencies[Interlocked.Increment(ref latencyCount) - 1] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!result.Accepted)
                {
                    Interlocked.Increment(ref rejected);
                    Console.Error.WriteLine($"error: order {plan.OrderId} refused a command: {result.Error}");
                }
            }
        });
        var commandSeconds = clock.Elapsed.TotalSeconds;
        output.WriteLine($"  {latencyCount} commands in {commandSeconds:0.0} s ({latencyCount / commandSeconds:0} commands/s), {rejected} refused, " +
                         $"{failed} failed, {caller.Retries} retried after transient errors");
        var raceWon = await CouponRaceAsync(client, runId, caller, output);

        var ops = client.GetGrain<IOperationsGrain>(0);
        var subscribers = await ops.GetSubscribersAsync();
        // Verification reads stored state only (IStoredStateGrain): no order or inbox is activated, so nothing is
        // repaired by looking — an outbox never published or an inbox that never reached its order's end shows as such.
        var stored = client.GetGrain<IStoredStateGrain>(0);
        var storedOrders = await WaitForCatchUpAsync(stored, plans, catchUp, output);
        var caughtUpSeconds = clock.Elapsed.TotalSeconds;

        var tally = Tally.From(storedOrders);
        var check = await LedgerCheck.RunAsync(stored, plans, storedOrders, needs, output);
        Array.Sort(latencies, 0, latencyCount);
        var p50 = Percentile(latencies, latencyCount, 0.50);
        var p99 = Percentile(latencies, latencyCount, 0.99);

        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");
        output.WriteLine($"  {(tally.Behind == 0 ? "all caught up" : $"NOT caught up ({tally.Behind} order/subscriber pairs behind)")} after {caughtUpSeconds:0.0} s " +
                         $"(read from storage): {tally.Events} events, {tally.Applied} applications ({tally.Events} x {subscribers.Count} subscribers = {tally.Events * subscribers.Count})");
        output.WriteLine($"  duplicates dropped {tally.Duplicates}, failed attempts retried {tally.Retried}, orders parked {tally.Parked}, " +
                         $"gap repairs {tally.GapRepairs}, events held unapplied {tally.Pending}, lost {tally.Lost}, outbox unpublished {tally.Unpublished}");
        output.WriteLine($"  replica order violations {check.OutOfOrder}, ledger mismatches {check.Mismatches}" +
                         (check.HeldBack > 0 ? $" (effects held back by parked orders, excluded one by one: {check.HeldBack})" : ""));
        output.WriteLine($"  command latency p50 {p50:0.00} ms, p99 {p99:0.00} ms");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT orders={orders} events={tally.Events} applied={tally.Applied} duplicates_ignored={tally.Duplicates} " +
            $"out_of_order_applied={check.OutOfOrder} lost={tally.Lost} p50_ms={p50:0.00} p99_ms={p99:0.00} " +
            $"retried={tally.Retried} parked={tally.Parked} pending={tally.Pending} behind={tally.Behind} ledger_mismatches={check.Mismatches} " +
            $"refused={rejected} failed={failed} client_retries={caller.Retries}"));

        // The audit reconciles each order with every effect from stored state, independently of the client's model above.
        var shown = 0;
        var audit = await AuditCommands.RunOrdersAsync(client.GetGrain<IAuditGrain>(0), plans.Select(p => p.OrderId).ToArray(), report =>
        {
            foreach (var finding in report.Discrepancies.Take(Math.Max(0, 10 - shown)))
            {
                output.WriteLine($"  DISCREPANCY order={Ids.Printable(finding.OrderId, Ids.MaxLength)} area={Ids.Printable(finding.Area)} {Ids.Printable(finding.Detail, 500)}");
            }

            shown += report.Discrepancies.Count;
        });
        output.WriteLine($"  audit of the run's orders from stored state: {audit.Checked} checked, {audit.Discrepancies} discrepancies, {audit.Notes} notes");
        output.WriteLine(AuditCommands.ResultLine(audit));

        // A parked order holds back exactly its own effects, and the check expects exactly those to be missing: every
        // ledger must match, parked orders or not.
        var healthy = tally.Lost == 0 && tally.Behind == 0 && check.OutOfOrder == 0 && rejected == 0 && failed == 0 && check.Mismatches == 0 &&
                      audit.Discrepancies == 0 && raceWon;
        return healthy ? 0 : 1;
    }

    /// <summary>
    /// Two orders placed at once with the same single-use coupon: exactly one may be placed, the other is refused
    /// <see cref="OrderErrorCode.CouponUnavailable"/> with nothing reserved. The winner is then cancelled, which gives
    /// the use back. True when exactly one won.
    /// </summary>
    private static async Task<bool> CouponRaceAsync(IClusterClient client, string runId, ResilientCaller caller, TextWriter output)
    {
        var race = new[] { 0, 1 }
            .Select(i => new OrderPlan($"{runId}-race{i}", $"{runId}-race-u{i}", [new OrderLine($"{runId}-race-sku", 1, 10m)], $"{runId}-race-c", null,
                OrderPlan.Fate.CancelledBeforePayment, false))
            .ToArray();
        // Stock for both, a coupon for one.
        var stock = await caller.ExecuteAsync(() => client.GetGrain<IStockGrain>($"{runId}-race-sku").SetAvailableAsync(race.Length));
        var coupon = await caller.ExecuteAsync(() => client.GetGrain<ICouponGrain>($"{runId}-race-c").IssueAsync(1));
        if (!stock.Accepted || !coupon.Accepted)
        {
            output.WriteLine($"  coupon race: setting it up was refused: {stock.Code ?? coupon.Code}: {Ids.Printable(stock.Message ?? coupon.Message, 300)}");
            return false;
        }

        var placed = await Task.WhenAll(race.Select(plan => caller.ExecuteAsync(() =>
            client.GetGrain<IOrderGrain>(plan.OrderId).PlaceAsync(new PlaceOrder($"{plan.OrderId}-place", plan.UserId, plan.Items, plan.CouponId, null)))));
        var winners = placed.Where(result => result.Accepted).ToArray();
        var losers = placed.Where(result => !result.Accepted).Select(result => result.Error!.Code.ToString()).ToArray();
        foreach (var winner in winners)
        {
            await caller.ExecuteAsync(() => client.GetGrain<IOrderGrain>(winner.OrderId).CancelAsync(new CancelOrder($"{winner.OrderId}-cancel", "race over")));
        }

        var won = winners.Length == 1 && losers.SequenceEqual([nameof(OrderErrorCode.CouponUnavailable)]);
        output.WriteLine($"  coupon race: 2 orders for single-use coupon {runId}-race-c: {winners.Length} placed, refused {(losers.Length == 0 ? "none" : string.Join(", ", losers))}" +
                         (won ? " (as it must: one use, one order)" : " — WRONG: exactly one must win"));
        return won;
    }

    /// <summary>
    /// Polls stored state until every finished order is <see cref="DeliveryState.Finished"/> or parked at every
    /// subscriber (an order the demo could not finish, after a refused command, is taken as it stands).
    /// </summary>
    private static async Task<IReadOnlyList<StoredOrder>> WaitForCatchUpAsync(
        IStoredStateGrain stored, IReadOnlyList<OrderPlan> plans, TimeSpan limit, TextWriter output)
    {
        var deadline = Stopwatch.StartNew();
        var pending = plans.Select(p => p.OrderId).ToList();
        var done = new Dictionary<string, StoredOrder>(StringComparer.Ordinal);
        while (true)
        {
            var orders = new List<StoredOrder>();
            try
            {
                foreach (var batch in pending.Chunk(IStoredStateGrain.MaxBatch))
                {
                    orders.AddRange(await stored.ReadOrdersAsync(batch));
                }
            }
            catch (Exception ex) when (ex is TimeoutException or OrleansException && deadline.Elapsed < limit)
            {
                // A silo busy joining or leaving the cluster, or storage briefly unavailable: look again, until the deadline.
                output.WriteLine($"  reading stored state failed ({ex.GetType().Name}: {ex.Message.Split('\n')[0]}); retrying");
                await Task.Delay(TimeSpan.FromSeconds(1));
                continue;
            }

            foreach (var order in orders.Where(IsSettled))
            {
                done[order.OrderId] = order;
            }

            pending = orders.Where(o => !IsSettled(o)).Select(o => o.OrderId).ToList();
            if (pending.Count == 0 || deadline.Elapsed > limit)
            {
                if (pending.Count > 0)
                {
                    output.WriteLine($"  gave up waiting after {limit.TotalSeconds:0} s: {pending.Count} orders not caught up in storage");
                    foreach (var order in orders.Where(o => !IsSettled(o)))
                    {
                        done[order.OrderId] = order;
                    }
                }

                return plans.Select(p => done[p.OrderId]).ToArray();
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }

    private static bool IsSettled(StoredOrder order) =>
        !order.IsFinal || order.Subscribers.All(s => order.Delivery(s) is DeliveryState.Finished or DeliveryState.Parked);

    private static double Percentile(double[] sorted, int count, double q) =>
        count == 0 ? 0 : sorted[Math.Min(count - 1, (int)Math.Ceiling(q * count) - 1)];
}
