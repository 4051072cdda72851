using System.CommandLine.Parsing;
using System.Diagnostics;
using OrderFlow.Contracts;
using CommandResult = OrderFlow.Contracts.CommandResult;

namespace OrderFlow.Client.Bench;

/// <summary>
/// <c>bench --workload consistency</c>: issue 11's "Measured" section (docs/BENCHMARKS.md, "Consistency (issue 11)").
/// Embedded profile, one run:
/// <list type="number">
/// <item>placement throughput with reservations and without (the silo's bench-only switch, turned off again in a
///   <c>finally</c>), rounds A, B, A, B of <c>--orders</c> placements each over 1,000 SKUs, same concurrency: the ratio;</item>
/// <item>one flash-sale SKU: <c>--flash-orders</c> placements of one unit, 256 at once, stock exactly that: reservations/s,
///   then the stock record must hold them all (reserved = placements, available 0, nothing left pending);</item>
/// <item>racing buyers: 1,000 placements at once for 100 units: exactly 100 winners, the rest out of stock;</item>
/// <item>hot keys: <c>--hot-orders</c> orders (placed, paid, shipped, received) on one SKU and one activity (one stock ledger, one GMV
///   ledger), in windows of 1,000: time per window and the ledgers' stored head row size, first window against last.</item>
/// </list>
/// The Azure profile runs only the hot-key phase (Azurite's request rate bounds it). A benchmark, not a test: it asserts
/// no timing; it fails (exit 1) only when a correctness check fails (racing winners, stock figures, an effect missing).
/// </summary>
public static class ConsistencyBench
{
    /// <summary>Orders per hot-key window: the first and the last are compared.</summary>
    public const int Window = 1000;

    /// <summary>The flash sale's crowd: placements in flight at once on the one SKU.</summary>
    public const int FlashConcurrency = 256;

    public const int RaceBuyers = 1000;
    public const int RaceUnits = 100;

    /// <summary>SKUs the throughput phase's lines are spread over.</summary>
    private const int SkuPool = 1000;

    /// <summary>Rounds of the throughput phase, alternating: with reservations, without, with, without.</summary>
    private static readonly bool[] Rounds = [true, false, true, false];

    public sealed record Settings(string Profile, int Orders, int Concurrency, int FlashOrders, int HotOrders, string OutDir, TimeSpan DrainTimeout)
    {
        public static Settings Read(SymbolResult given, BenchOptions o, string profile)
        {
            Settings settings;
            if (profile == BenchOptions.Azure)
            {
                // bench.sh --profile azure passes the emulator's connection and pids to every azure run: accepted, unused.
                o.EnsureOnly(given, "azure --workload consistency", o.Concurrency, o.HotOrders, o.Out, o.DrainTimeoutSeconds, o.AzureStorage, o.EmulatorPids);
                settings = new Settings(profile, 0,
                    BenchOptions.Number(given, o.Concurrency, 16, 1, 1024),
                    0,
                    BenchOptions.Number(given, o.HotOrders, 2000, 2000, 100_000),
                    given.GetValue(o.Out) ?? "artifacts",
                    TimeSpan.FromSeconds(BenchOptions.Number(given, o.DrainTimeoutSeconds, 600, 1, 3600)));
            }
            else
            {
                o.EnsureOnly(given, "embedded --workload consistency", o.Orders, o.Concurrency, o.FlashOrders, o.HotOrders, o.Out, o.DrainTimeoutSeconds);
                settings = new Settings(profile,
                    BenchOptions.Number(given, o.Orders, 2000, 100, 1_000_000),
                    BenchOptions.Number(given, o.Concurrency, 64, 1, 4096),
                    BenchOptions.Number(given, o.FlashOrders, 5000, 100, 1_000_000),
                    BenchOptions.Number(given, o.HotOrders, 20_000, 2000, 1_000_000),
                    given.GetValue(o.Out) ?? "artifacts",
                    TimeSpan.FromSeconds(BenchOptions.Number(given, o.DrainTimeoutSeconds, 300, 1, 3600)));
            }

            return settings.HotOrders % Window == 0
                ? settings
                : throw new UsageException($"option --hot-orders must be a multiple of {Window} (windows of {Window} orders), was {settings.HotOrders}");
        }
    }

    public static async Task<int> RunAsync(IClusterClient client, Settings args, TextWriter output)
    {
        var total = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var runId = $"k{DateTime.UtcNow:HHmmss}{Random.Shared.Next(100):00}";
        var probe = new SiloProbe(client);
        if (await probe.FirstSampleAsync() is not { } atStart)
        {
            return 1;
        }

        var azure = args.Profile == BenchOptions.Azure;
        if (azure && (await probe.Control.GetStorageOperationsAsync()).Count == 0)
        {
            Console.Error.WriteLine("error: the silo has sent no request to Azure Storage: it does not run the Azure profile (Silo:Profile=Azure); ./bench.sh --profile azure starts one that does");
            return 1;
        }

        var subscribers = await client.GetGrain<IOperationsGrain>(0).GetSubscribersAsync();
        var settings = azure
            ? $"profile=azure concurrency={args.Concurrency} hot_orders={args.HotOrders}"
            : $"profile=embedded orders={args.Orders} concurrency={args.Concurrency} flash_orders={args.FlashOrders} flash_concurrency={FlashConcurrency} " +
              $"race={RaceBuyers}x{RaceUnits} hot_orders={args.HotOrders}";
        var machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, silo server GC {atStart.ServerGc}";
        var loadAtStart = BenchCommand.LoadAverage();
        output.WriteLine($"bench {runId} (workload consistency): {settings}");
        output.WriteLine($"  machine: {machine}; load average {loadAtStart}");
        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");
        var run = new Run(client, probe, runId, args, subscribers.Count, output);

        List<PlacementRound> rounds = [];
        FlashResult? flash = null;
        RaceResult? race = null;
        if (!azure)
        {
            output.WriteLine($"  1/4 placement throughput, with vs without reservations: rounds A B A B of {args.Orders} placements, {args.Concurrency} callers ...");
            rounds = await run.ThroughputAsync();
            output.WriteLine($"  2/4 flash sale: {args.FlashOrders} placements on one SKU (stock {args.FlashOrders}), {FlashConcurrency} at once ...");
            flash = await run.FlashAsync();
            output.WriteLine($"  3/4 racing buyers: {RaceBuyers} placements at once for {RaceUnits} units ...");
            race = await run.RaceAsync();
        }

        output.WriteLine($"  {(azure ? "1/1" : "4/4")} hot keys: {args.HotOrders} orders ({(azure ? "placed, paid" : "placed, paid, shipped, received")}) on one SKU and one activity, {args.Concurrency} callers, windows of {Window} ...");
        var hot = await run.HotKeysAsync();

        var with = Rate(rounds, reserving: true);
        var without = Rate(rounds, reserving: false);
        var report = new ConsistencyReport(runId, startedAt, args.Profile, machine, settings, subscribers, loadAtStart, BenchCommand.LoadAverage(),
            rounds, with, without, rounds.Count == 0 ? 0 : with / without, flash, race, hot, hot.Lost, Goals(rounds.Count > 0, with / without, flash, race, hot),
            total.Elapsed.TotalSeconds);

        Write(report, output);
        var path = await BenchChecks.WriteJsonAsync(report, args.OutDir, azure ? "bench-azure-consistency" : "bench-consistency");
        output.WriteLine($"  json: {path}; load average now {report.LoadAverageEnd}");
        output.WriteLine(report.ResultLine());
        var correct = hot.Lost == 0 && hot.Refused == 0 && (flash?.Correct ?? true) && (race?.Correct ?? true);
        return correct ? 0 : 1;
    }

    /// <summary>Placements per second over every round of one kind (total placements / total seconds).</summary>
    private static double Rate(IReadOnlyList<PlacementRound> rounds, bool reserving)
    {
        var of = rounds.Where(r => r.Reservations == reserving).ToList();
        return of.Count == 0 ? 0 : of.Sum(r => r.Placements) / of.Sum(r => r.Seconds);
    }

    private static List<GoalResult> Goals(bool embedded, double ratio, FlashResult? flash, RaceResult? race, HotKeyResult hot)
    {
        var goals = new List<GoalResult>();
        if (embedded)
        {
            goals.Add(new("placements/s with vs without reservations", $"{ratio:P0}", ">= 50 %", ratio >= 0.5));
        }

        if (flash is not null)
        {
            goals.Add(new("one hot SKU: reservations/s (placements)", $"{flash.ReservationsPerSecond:0}", ">= 2000", flash.ReservationsPerSecond >= 2000));
            goals.Add(new("one hot SKU: its ledger alone, reservations/s", $"{flash.LedgerOnlyReservationsPerSecond:0}", ">= 2000",
                flash.LedgerOnlyReservationsPerSecond >= 2000));
            goals.Add(new("one hot SKU: stock after", $"reserved {flash.Stock.Reserved}, available {flash.Stock.Available}, pending {flash.Stock.Pending}",
                $"reserved {flash.Placements}, 0, 0", flash.Correct));
        }

        if (race is not null)
        {
            goals.Add(new($"racing buyers: {RaceBuyers} for {RaceUnits} units", $"{race.Winners} winners, {race.OutOfStock} out of stock",
                $"{RaceUnits} winners", race.Correct));
        }

        var (first, last) = (hot.Windows[0], hot.Windows[^1]);
        goals.Add(new($"hot keys: ms per {Window} orders, last vs first window", $"{last.Seconds * 1000:0} vs {first.Seconds * 1000:0}",
            "flat", last.Seconds <= first.Seconds * 1.5));
        if (first.StorageRequests > 0)
        {
            goals.Add(new($"hot keys: storage requests per order, last vs first window", $"{(double)last.StorageRequests / Window:0.0} vs {(double)first.StorageRequests / Window:0.0}",
                "flat", last.StorageRequests <= first.StorageRequests * 1.2));
        }

        // The journal holds the last commit's entries (one batch at most, whatever the order count): compared without it.
        goals.Add(new("hot keys: stock head bytes w/o journal, last vs first", $"{hot.StockLast.BytesWithoutJournal} vs {hot.StockFirst.BytesWithoutJournal}",
            "flat", hot.StockLast.BytesWithoutJournal <= hot.StockFirst.BytesWithoutJournal + 16));
        goals.Add(new("hot keys: GMV head bytes w/o journal, last vs first", $"{hot.GmvLast.BytesWithoutJournal} vs {hot.GmvFirst.BytesWithoutJournal}",
            "flat", hot.GmvLast.BytesWithoutJournal <= hot.GmvFirst.BytesWithoutJournal + 16));
        goals.Add(new("hot keys: refused or failed commands, effects missing", $"{hot.Refused}, {hot.Lost}", "0, 0", hot.Refused == 0 && hot.Lost == 0));
        return goals;
    }

    private static void Write(ConsistencyReport r, TextWriter output)
    {
        output.WriteLine();
        if (r.Rounds.Count > 0)
        {
            output.WriteLine("  placement throughput (place commands only, over 1,000 SKUs, half the orders with a coupon):");
            foreach (var round in r.Rounds)
            {
                output.WriteLine($"    round {round.Round} {(round.Reservations ? "with reservations   " : "without reservations")}: " +
                                 $"{round.Placements} in {round.Seconds:0.00} s = {round.PlacementsPerSecond:0} /s (refused {round.Refused}, silo CPU {round.SiloCpuPercent:0} %)");
            }

            output.WriteLine($"    with {r.PlacePerSecond:0} /s, without {r.PlaceNoReservationPerSecond:0} /s: ratio {r.Ratio:0.00}");
        }

        if (r.Flash is { } f)
        {
            output.WriteLine($"  flash sale: {f.Accepted} of {f.Placements} placements on one SKU in {f.Seconds:0.00} s = {f.ReservationsPerSecond:0} reservations/s " +
                             $"(p50 {f.Latency.P50:0.0} ms, p99 {f.Latency.P99:0.0} ms); stock after: available {f.Stock.Available}, reserved {f.Stock.Reserved}, " +
                             $"pending {f.Stock.Pending} (drained in {f.PendingDrainSeconds:0.0} s) -> {(f.Correct ? "ok" : "WRONG")}");
            output.WriteLine($"    the SKU's ledger alone (reserve + confirm from inside the silo, no order): {f.LedgerOnlyGranted} in {f.LedgerOnlySeconds:0.00} s = " +
                             $"{f.LedgerOnlyReservationsPerSecond:0} reservations/s");
        }

        if (r.Race is { } race)
        {
            output.WriteLine($"  racing buyers: {race.Buyers} buyers for {race.Units} units in {race.Seconds:0.00} s: {race.Winners} winners, {race.OutOfStock} out of stock, " +
                             $"{race.Other} other; stock after: available {race.Stock.Available}, reserved {race.Stock.Reserved}, pending {race.Stock.Pending} -> {(race.Correct ? "ok" : "WRONG")}");
        }

        var h = r.Hot;
        var (first, last) = (h.Windows[0], h.Windows[^1]);
        output.WriteLine($"  hot keys: {h.Orders} orders ({(r.Profile == BenchOptions.Azure ? "place, pay" : "place, pay, ship, receive")}) on one SKU and one activity in {h.Seconds:0.0} s, {h.Refused} refused/failed; " +
                         $"effects applied in {h.ApplySeconds:0.0} s (stock sold {h.StockSold}, GMV entries {h.GmvEntries}), missing {h.Lost}");
        output.WriteLine($"    window 1:  {first.Seconds * 1000:0} ms per {Window} orders ({first.OrdersPerSecond:0} orders/s{Requests(first)}); " +
                         $"stock head {h.StockFirst.Bytes} B ({h.StockFirst.BytesWithoutJournal} B + journal of {h.StockFirst.JournalEntries}), " +
                         $"GMV head {h.GmvFirst.Bytes} B ({h.GmvFirst.BytesWithoutJournal} B + journal of {h.GmvFirst.JournalEntries})");
        output.WriteLine($"    window {h.Windows.Count}: {last.Seconds * 1000:0} ms per {Window} orders ({last.OrdersPerSecond:0} orders/s{Requests(last)}); " +
                         $"stock head {h.StockLast.Bytes} B ({h.StockLast.BytesWithoutJournal} B + journal of {h.StockLast.JournalEntries}), " +
                         $"GMV head {h.GmvLast.Bytes} B ({h.GmvLast.BytesWithoutJournal} B + journal of {h.GmvLast.JournalEntries})");
        var sorted = h.Windows.Select(w => w.Seconds * 1000).Order().ToList();
        output.WriteLine($"    all windows: ms per {Window} orders min {sorted[0]:0}, median {sorted[sorted.Count / 2]:0}, max {sorted[^1]:0}; " +
                         $"head bytes at window ends (unsettled): stock {h.Windows.Min(w => w.StockHeadBytes)}-{h.Windows.Max(w => w.StockHeadBytes)}, " +
                         $"GMV {h.Windows.Min(w => w.GmvHeadBytes)}-{h.Windows.Max(w => w.GmvHeadBytes)}");
        output.WriteLine();
        output.WriteLine($"  {"goal",-56} {"measured",-40} {"target",-16} met");
        foreach (var goal in r.Goals)
        {
            output.WriteLine($"  {goal.Goal,-56} {goal.Measured,-40} {goal.Target,-16} {(goal.Met ? "yes" : "NO")}");
        }
    }

    private static string Requests(HotWindow window) => window.StorageRequests > 0
        ? $", {(double)window.StorageRequests / Window:0.0} storage requests per order, {(double)window.EntryRequests / Window:0.00} of them to ledger entries"
        : "";

    /// <summary>The phases, sharing the client, the probe and the run's settings.</summary>
    private sealed class Run(IClusterClient client, SiloProbe probe, string runId, Settings args, int subscriberCount, TextWriter output)
    {
        private readonly ResilientCaller _caller = new();

        private IStoredStateGrain Stored => client.GetGrain<IStoredStateGrain>(0);

        public async Task<List<PlacementRound>> ThroughputAsync()
        {
            var plans = Rounds.Select((_, round) => Placements($"{runId}-r{round}", args.Orders)).ToList();
            var warm = Placements($"{runId}-w", Math.Min(500, args.Orders));
            // Stock and coupons for every round (those without reservations take none), outside the measurement.
            var clock = Stopwatch.StartNew();
            var needs = InventoryNeeds.For([.. warm, .. plans.SelectMany(p => p)]);
            await needs.ApplyAsync(client, args.Concurrency);
            output.WriteLine($"     setup: {needs.Summary()} in {clock.Elapsed.TotalSeconds:0.0} s");

            var results = new List<PlacementRound>();
            try
            {
                // Warm-up, not measured: both paths JIT-compiled, the SKUs' and coupons' ledgers activated.
                await RoundAsync(0, reserving: true, warm[..(warm.Length / 2)]);
                await RoundAsync(0, reserving: false, warm[(warm.Length / 2)..]);
                for (var round = 0; round < Rounds.Length; round++)
                {
                    var result = await RoundAsync(round + 1, Rounds[round], plans[round]);
                    output.WriteLine($"     round {result.Round} {(result.Reservations ? "with" : "without")} reservations: {result.PlacementsPerSecond:0} placements/s");
                    results.Add(result);
                }
            }
            finally
            {
                await probe.Control.SetSkipReservationsAsync(false);
            }

            return results;
        }

        private async Task<PlacementRound> RoundAsync(int round, bool reserving, IReadOnlyList<OrderPlan> plans)
        {
            await probe.Control.SetSkipReservationsAsync(!reserving);
            var before = await probe.SampleAsync();
            var clock = Stopwatch.StartNew();
            var refused = 0;
            await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = args.Concurrency }, async (plan, _) =>
            {
                if (!(await PlaceAsync(plan)).Accepted)
                {
                    Interlocked.Increment(ref refused);
                }
            });
            var seconds = clock.Elapsed.TotalSeconds;
            var atEnd = await probe.SampleAsync();
            // The next round starts with the subscribers caught up (each placement is one event for every subscriber).
            await probe.WaitForAsync($"round {round}: subscriber applications", s => s.SubscriberDone,
                before.SubscriberDone + (long)plans.Count * subscriberCount, args.DrainTimeout);
            return new PlacementRound(round, reserving, plans.Count, seconds, refused, SiloCost.Between(before, atEnd, seconds).CpuPercent);
        }

        public async Task<FlashResult> FlashAsync()
        {
            var sku = $"{runId}-flash";
            await SetStockAsync(sku, args.FlashOrders);
            var orders = Enumerable.Range(0, args.FlashOrders).Select(i => OneUnit($"{runId}-f{i}", i, sku, activity: null)).ToArray();
            var latencies = new double[orders.Length];
            var accepted = 0;
            var refusals = new Dictionary<string, int>();
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, orders.Length), new ParallelOptions { MaxDegreeOfParallelism = FlashConcurrency }, async (i, _) =>
            {
                var sent = Stopwatch.GetTimestamp();
                var result = await PlaceAsync(orders[i]);
                latencies[i] = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
                if (result.Accepted)
                {
                    Interlocked.Increment(ref accepted);
                }
                else
                {
                    lock (refusals)
                    {
                        var code = result.Error?.Code.ToString() ?? "unknown";
                        refusals[code] = refusals.GetValueOrDefault(code) + 1;
                    }
                }
            });
            var seconds = clock.Elapsed.TotalSeconds;
            var (stock, drain) = await SettledStockAsync(sku);
            Array.Sort(latencies);
            var correct = accepted == orders.Length && stock.Reserved == orders.Length && stock.Available == 0 && stock.Pending == 0;

            // The SKU's own limit: the same number of reservations straight to its ledger from inside the silo (no order
            // grain, no order write, no client round trip), same crowd — where the placement's time goes, not a goal.
            var direct = $"{runId}-flash-direct";
            await SetStockAsync(direct, args.FlashOrders);
            var ledger = await probe.Control.ReserveDirectAsync(direct, $"{runId}-fd", args.FlashOrders, FlashConcurrency);
            return new FlashResult(orders.Length, accepted, refusals, seconds, accepted / seconds,
                new Percentiles(At(latencies, 0.5), At(latencies, 0.99), latencies[^1]), stock, drain, correct,
                ledger.Granted, ledger.Seconds, ledger.Granted / ledger.Seconds);
        }

        public async Task<RaceResult> RaceAsync()
        {
            var sku = $"{runId}-race";
            await SetStockAsync(sku, RaceUnits);
            var buyers = Enumerable.Range(0, RaceBuyers).Select(i => OneUnit($"{runId}-b{i}", i, sku, activity: null)).ToArray();
            var clock = Stopwatch.StartNew();
            var results = await Task.WhenAll(buyers.Select(PlaceAsync));
            var seconds = clock.Elapsed.TotalSeconds;
            var winners = results.Count(r => r.Accepted);
            var outOfStock = results.Count(r => r.Error?.Code == OrderErrorCode.OutOfStock);
            var (stock, _) = await SettledStockAsync(sku);
            var correct = winners == RaceUnits && outOfStock == RaceBuyers - RaceUnits
                          && stock.Available == 0 && stock.Reserved == RaceUnits && stock.Sold == 0 && stock.Pending == 0;
            return new RaceResult(RaceBuyers, RaceUnits, seconds, winners, outOfStock, RaceBuyers - winners - outOfStock, stock, correct);
        }

        public async Task<HotKeyResult> HotKeysAsync()
        {
            var sku = $"{runId}-hot-sku";
            var activity = $"{runId}-hot-activity";
            await SetStockAsync(sku, args.HotOrders);
            var orders = Enumerable.Range(0, args.HotOrders).Select(i => OneUnit($"{runId}-h{i}", i, sku, activity)).ToArray();
            var windows = new List<HotWindow>();
            LedgerHeadSize? stockFirst = null, gmvFirst = null;
            var refused = 0;
            var paid = 0;
            var pauses = TimeSpan.Zero;
            var clock = Stopwatch.StartNew();
            var azure = args.Profile == BenchOptions.Azure;
            for (var w = 0; w < orders.Length / Window; w++)
            {
                var requestsBefore = azure ? await probe.Control.GetStorageOperationsAsync() : [];
                var windowClock = Stopwatch.StartNew();
                await Parallel.ForEachAsync(orders[(w * Window)..((w + 1) * Window)], new ParallelOptions { MaxDegreeOfParallelism = args.Concurrency },
                    async (plan, _) =>
                    {
                        // Embedded: the whole life (place, pay, ship, receive): a finished order leaves memory at once, so the
                        // silo's heap stays flat over 200,000 orders and the windows measure the ledgers, not a growing heap.
                        // Azure: place and pay only (both hot ledgers are written by then); Azurite's request rate is the bound.
                        var steps = plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)).Take(args.Profile == BenchOptions.Azure ? 2 : 4);
                        var done = 0;
                        foreach (var step in steps)
                        {
                            if (done++ == 2)
                            {
                                // Placed and paid: its sale and its GMV entry are owed, whatever happens to the later steps.
                                Interlocked.Increment(ref paid);
                            }

                            CommandResult result;
                            try
                            {
                                result = await _caller.ExecuteAsync(step);
                            }
                            catch (Exception)
                            {
                                Interlocked.Increment(ref refused);
                                return;
                            }

                            if (!result.Accepted)
                            {
                                Interlocked.Increment(ref refused);
                                return;
                            }
                        }

                        if (done == 2)
                        {
                            Interlocked.Increment(ref paid);
                        }
                    });
                var seconds = windowClock.Elapsed.TotalSeconds;
                // Head sizes at the window's end, as they are (a commit's journal may be in them): cheap, one read each.
                var (stockNow, gmvNow) = await HeadsAsync(sku, activity);
                var (requests, entryRequests) = azure ? RequestsSince(requestsBefore, await probe.Control.GetStorageOperationsAsync()) : (0, 0);
                windows.Add(new HotWindow(w + 1, seconds, Window / seconds, stockNow.Bytes, gmvNow.Bytes, requests, entryRequests));
                if (w == 0)
                {
                    // Settled: the first window's effects all applied (every reservation sold, every payment in the GMV),
                    // measured the same way as after the last window. The wait is not in any window's time.
                    // Only paid orders owe a sale and a GMV entry: a command refused after the caller's retries (a
                    // saturated machine) is counted as refused, and the wait does not expect its effects.
                    var pause = Stopwatch.StartNew();
                    try
                    {
                        (stockFirst, gmvFirst) = await SettledHeadsAsync(sku, activity, paid);
                    }
                    catch (TimeoutException ex)
                    {
                        output.WriteLine($"     {ex.Message}");
                        (stockFirst, gmvFirst) = await HeadsAsync(sku, activity);
                    }

                    pauses += pause.Elapsed;
                }

                if ((w + 1) % 10 == 0 || azure)
                {
                    output.WriteLine($"     {(w + 1) * Window} orders, window {w + 1}: {seconds * 1000:0} ms ({Window / seconds:0} orders/s), " +
                                     $"stock head {stockNow.Bytes} B, GMV head {gmvNow.Bytes} B" +
                                     (azure ? $", {(double)requests / Window:0.0} storage requests per order ({(double)entryRequests / Window:0.00} to ledger entries)" : "") +
                                     $"; load average {BenchCommand.LoadAverage()}");
                }
            }

            var commandSeconds = (clock.Elapsed - pauses).TotalSeconds;
            var apply = Stopwatch.StartNew();
            LedgerHeadSize stockLast, gmvLast;
            try
            {
                (stockLast, gmvLast) = await SettledHeadsAsync(sku, activity, paid);
            }
            catch (TimeoutException ex)
            {
                output.WriteLine($"     {ex.Message}");
                (stockLast, gmvLast) = await HeadsAsync(sku, activity);
            }

            var stock = (await Stored.ReadLedgersAsync(LedgerKind.Stock, [sku]))[0];
            var gmv = (await Stored.ReadLedgersAsync(LedgerKind.Gmv, [activity]))[0];
            // Missing effects: a paid order whose sale or GMV entry is not stored (the wait above timed out).
            var lost = Math.Max(0, paid - stock.Committed) + Math.Max(0, paid - gmv.Entries);
            return new HotKeyResult(args.HotOrders, commandSeconds, apply.Elapsed.TotalSeconds, refused, windows,
                stockFirst!, gmvFirst!, stockLast, gmvLast, stock.Committed, gmv.Entries, lost);
        }

        /// <summary>Requests sent between two snapshots: all, and those of the ledger entry store (its table and its transactions).</summary>
        private static (long All, long Entries) RequestsSince(IReadOnlyList<StorageOperationCount> before, IReadOnlyList<StorageOperationCount> after)
        {
            long Sum(IEnumerable<StorageOperationCount> counts) => counts.Sum(c => c.Requests);
            static bool IsEntries(StorageOperationCount c) => c.Resource is "OrderFlowLedgerEntries" or "(batch)";
            return (Sum(after) - Sum(before), Sum(after.Where(IsEntries)) - Sum(before.Where(IsEntries)));
        }

        private async Task<(LedgerHeadSize Stock, LedgerHeadSize Gmv)> HeadsAsync(string sku, string activity) =>
            (await probe.Control.GetLedgerHeadAsync(LedgerKind.Stock, sku), await probe.Control.GetLedgerHeadAsync(LedgerKind.Gmv, activity));

        /// <summary>Waits until the stock ledger sold <paramref name="orders"/> units and the GMV ledger recorded as many payments, then reads both heads.</summary>
        private async Task<(LedgerHeadSize Stock, LedgerHeadSize Gmv)> SettledHeadsAsync(string sku, string activity, long orders)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                var stock = (await Stored.ReadLedgersAsync(LedgerKind.Stock, [sku]))[0];
                var gmv = (await Stored.ReadLedgersAsync(LedgerKind.Gmv, [activity]))[0];
                if (stock.Committed >= orders && stock.Pending == 0 && gmv.Entries >= orders)
                {
                    return await HeadsAsync(sku, activity);
                }

                if (clock.Elapsed > args.DrainTimeout)
                {
                    throw new TimeoutException($"hot keys: stock sold {stock.Committed}, GMV entries {gmv.Entries} of {orders} after {args.DrainTimeout.TotalSeconds:0} s");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100));
            }
        }

        /// <summary>The SKU's figures once no reservation is left pending (confirmations are one-way), at most a minute.</summary>
        private async Task<(StockLevel Stock, double Seconds)> SettledStockAsync(string sku)
        {
            var clock = Stopwatch.StartNew();
            var grain = client.GetGrain<IStockGrain>(sku);
            while (true)
            {
                var stock = await grain.GetAsync();
                if (stock.Pending == 0 || clock.Elapsed > TimeSpan.FromSeconds(60))
                {
                    return (stock, clock.Elapsed.TotalSeconds);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50));
            }
        }

        private async Task SetStockAsync(string sku, long units)
        {
            var result = await _caller.ExecuteAsync(() => client.GetGrain<IStockGrain>(sku).SetAvailableAsync(units));
            if (!result.Accepted)
            {
                throw new InvalidOperationException($"setting stock of {sku} was refused: {result.Code}: {result.Message}");
            }
        }

        private Task<CommandResult> PlaceAsync(OrderPlan plan) =>
            _caller.ExecuteAsync(plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)).First());

        /// <summary>
        /// Placements shaped like the pipeline bench's: 1-3 lines of 1-3 units over <see cref="SkuPool"/> SKUs (so no SKU
        /// is hot), a coupon on every second order, an activity on two orders in three.
        /// </summary>
        private static OrderPlan[] Placements(string prefix, int count) => Enumerable.Range(0, count).Select(i =>
        {
            var items = Enumerable.Range(0, 1 + i % 3)
                .Select(k => new OrderLine($"{prefix[..prefix.LastIndexOf('-')]}-sku{(i * 7 + k * 13) % SkuPool}", 1 + (i + k) % 3, 10m + (i * 13 + k * 7) % 9000 / 100m))
                .ToArray();
            return new OrderPlan($"{prefix}-o{i}", $"{prefix}-u{i % 1000}", items, i % 2 == 0 ? $"{prefix}-c{i}" : null,
                i % 3 != 2 ? $"{prefix}-a{i % 40}" : null, OrderPlan.Fate.Received, RepeatPayment: false);
        }).ToArray();

        /// <summary>An order of one unit of <paramref name="sku"/>; users spread so that no points account is hot.</summary>
        private OrderPlan OneUnit(string orderId, int i, string sku, string? activity) =>
            new(orderId, $"{runId}-u{i % 1000}", [new OrderLine(sku, 1, 25m)], null, activity, OrderPlan.Fate.Received, RepeatPayment: false);

        private static double At(double[] sorted, double quantile) => sorted[Math.Min(sorted.Length - 1, (int)(quantile * sorted.Length))];
    }
}

/// <summary>One round of the throughput phase: placements (commands only) with or without reservations.</summary>
public sealed record PlacementRound(int Round, bool Reservations, int Placements, double Seconds, int Refused, double SiloCpuPercent)
{
    public double PlacementsPerSecond => Placements / Seconds;
}

public sealed record Percentiles(double P50, double P99, double Max);

public sealed record FlashResult(int Placements, int Accepted, IReadOnlyDictionary<string, int> Refusals, double Seconds, double ReservationsPerSecond,
    Percentiles Latency, StockLevel Stock, double PendingDrainSeconds, bool Correct, int LedgerOnlyGranted, double LedgerOnlySeconds,
    double LedgerOnlyReservationsPerSecond);

public sealed record RaceResult(int Buyers, int Units, double Seconds, int Winners, int OutOfStock, int Other, StockLevel Stock, bool Correct);

/// <summary>One window of <see cref="ConsistencyBench.Window"/> hot-key orders and the head sizes right after it (unsettled).</summary>
/// <remarks>
/// Azure: <see cref="StorageRequests"/> the silo sent during the window (every table and queue, retries included), of
/// which <see cref="EntryRequests"/> went to the ledger entry store — the per-order cost in requests, which the machine's
/// load does not change the way it changes the time. Embedded: 0.
/// </remarks>
public sealed record HotWindow(int Window, double Seconds, double OrdersPerSecond, int StockHeadBytes, int GmvHeadBytes,
    long StorageRequests = 0, long EntryRequests = 0);

public sealed record HotKeyResult(int Orders, double Seconds, double ApplySeconds, int Refused, IReadOnlyList<HotWindow> Windows,
    LedgerHeadSize StockFirst, LedgerHeadSize GmvFirst, LedgerHeadSize StockLast, LedgerHeadSize GmvLast, long StockSold, long GmvEntries, long Lost);

public sealed record ConsistencyReport(
    string RunId, DateTimeOffset StartedAt, string Profile, string Machine, string Settings, IReadOnlyList<string> Subscribers,
    string LoadAverageStart, string LoadAverageEnd, IReadOnlyList<PlacementRound> Rounds, double PlacePerSecond, double PlaceNoReservationPerSecond,
    double Ratio, FlashResult? Flash, RaceResult? Race, HotKeyResult Hot, long Lost, IReadOnlyList<GoalResult> Goals, double TotalSeconds)
{
    public string ResultLine()
    {
        static string F(double value, string format) => BenchReport.F(value, format);
        var embedded = Rounds.Count > 0;
        var (first, last) = (Hot.Windows[0], Hot.Windows[^1]);
        return "RESULT workload=consistency " +
               $"profile={Profile} " +
               $"place_per_s={(embedded ? F(PlacePerSecond, "0") : "n/a")} place_no_reservation_per_s={(embedded ? F(PlaceNoReservationPerSecond, "0") : "n/a")} " +
               $"ratio={(embedded ? F(Ratio, "0.00") : "n/a")} " +
               $"hot_sku_reservations_per_s={(Flash is null ? "n/a" : F(Flash.ReservationsPerSecond, "0"))} " +
               $"hot_sku_ledger_only_per_s={(Flash is null ? "n/a" : F(Flash.LedgerOnlyReservationsPerSecond, "0"))} " +
               $"race_winners={(Race is null ? "n/a" : Race.Winners.ToString(System.Globalization.CultureInfo.InvariantCulture))} " +
               $"race_units={(Race is null ? "n/a" : Race.Units.ToString(System.Globalization.CultureInfo.InvariantCulture))} " +
               $"hot_orders={Hot.Orders} first_window_ms={F(first.Seconds * 1000, "0")} last_window_ms={F(last.Seconds * 1000, "0")} " +
               $"stock_head_bytes_first={Hot.StockFirst.Bytes} stock_head_bytes_last={Hot.StockLast.Bytes} " +
               $"gmv_head_bytes_first={Hot.GmvFirst.Bytes} gmv_head_bytes_last={Hot.GmvLast.Bytes} " +
               $"refused={Hot.Refused} lost={Lost}" +
               (first.StorageRequests > 0 ? $" storage_requests_per_order_first={F((double)first.StorageRequests / ConsistencyBench.Window, "0.0")} storage_requests_per_order_last={F((double)last.StorageRequests / ConsistencyBench.Window, "0.0")}" : "");
    }
}
