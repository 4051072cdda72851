using System.CommandLine;
using System.Diagnostics;
using System.Text;
using HdrHistogram;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// <c>flashsale bench</c> (issue 12's load tool): sets up a SKU and a sale, offers <c>--requests</c> buy requests from
/// <c>--users</c> buyers in an open model at <c>--arrival-rate</c> per second (request i is due at i / rate and its
/// admission latency is measured from that intended time, HdrHistogram, so a stalled silo cannot hide behind a slowed
/// load generator), waits until every queued request has its final answer, and reports: admission p50/p99/max, the
/// answers by kind, the orders created per one-second window (from the stored orders' own placement times, read through
/// the non-repairing checker), the silo's peak memory (on a silo with <c>Benchmarks:Enabled</c>), winners against stock
/// and per user, lost tickets; then a short search for the highest arrival rate whose admission p99 stays within 50 ms;
/// last, the RESULT line. A benchmark, not a test: it asserts no timing; it exits 1 only when a correctness check fails
/// (oversold, lost, a user over the limit).
/// </summary>
public static class FlashSaleBench
{
    private const long HighestTrackableMicros = 120_000_000;
    private const double P99BarMs = 50;

    public sealed record Settings(int Requests, int Users, long Stock, int Rate, int ArrivalRate, int PerUserLimit, int Buffer,
        bool Search, double SearchSeconds, int SearchMaxRate, TimeSpan DrainTimeout, int Warmup, bool Batching);

    public static Command Create(CliContext cli)
    {
        var requests = CliValues.NumberOption("--requests", 100_000, 1, 10_000_000, "Buy requests offered");
        var users = CliValues.NumberOption("--users", 50_000, 1, 10_000_000, "Distinct buyers (request i comes from buyer i mod users)");
        var stock = CliValues.NumberOption("--stock", 3_000, 1, (int)FlashSaleLimits.MaxStock, "Units the sale sells");
        var rate = CliValues.NumberOption("--rate", 500, 1, FlashSaleLimits.MaxRate, "The drain's cap, orders per second");
        var arrival = CliValues.NumberOption("--arrival-rate", 20_000, 1, 1_000_000, "Requests offered per second (open model)");
        var perUser = CliValues.NumberOption("--per-user-limit", 1, 1, FlashSaleLimits.MaxPerUserLimit, "Units one buyer may hold");
        var buffer = CliValues.NumberOption("--buffer", FlashSaleLimits.DefaultBuffer, 1, FlashSaleLimits.MaxBuffer, "Backlog bound");
        var noSearch = new Option<bool>("--no-search") { Description = "Skip the search for the highest arrival rate with admission p99 within 50 ms" };
        var searchSeconds = CliValues.NumberOption("--search-seconds", 2, 1, 30, "Seconds of arrivals per search step");
        var searchMax = CliValues.NumberOption("--search-max-rate", 80_000, 1_000, 1_000_000, "Highest arrival rate the search tries");
        var drainTimeout = CliValues.NumberOption("--drain-timeout-seconds", 300, 1, 3_600, "How long to wait for the backlog to drain");
        var warmup = CliValues.NumberOption("--warmup", 5_000, 0, 100_000, "Requests per warm-up round, each a throwaway sale offered at the arrival rate, repeated until the JIT is quiet (at most 10 rounds); not measured");
        var noBatching = new Option<bool>("--no-batching") { Description = "One gateway call per request (IFlashSaleGrain.BuyAsync) instead of the client library's FlashSaleBuyer, which shares calls among concurrent requests" };
        var bench = new Command("bench", "Load tool: a burst of buy requests in an open model; admission latency, drain rate per second, winners, RESULT line")
        {
            requests, users, stock, rate, arrival, perUser, buffer, noSearch, searchSeconds, searchMax, drainTimeout, warmup, noBatching,
        };
        bench.SetAction(parse => cli.WithClientAsync(parse, client => RunAsync(client, new Settings(
            parse.GetValue(requests), parse.GetValue(users), parse.GetValue(stock), parse.GetValue(rate), parse.GetValue(arrival),
            parse.GetValue(perUser), parse.GetValue(buffer), !parse.GetValue(noSearch), parse.GetValue(searchSeconds),
            parse.GetValue(searchMax), TimeSpan.FromSeconds(parse.GetValue(drainTimeout)), parse.GetValue(warmup), !parse.GetValue(noBatching)), cli.Output)));
        return bench;
    }

    private sealed record Burst(string SaleId, LongHistogram Latency, Dictionary<AdmissionOutcome, long> Answers, List<string> Tickets,
        Dictionary<string, long> ErrorTypes, double Seconds, long Calls, Dictionary<AdmissionOutcome, LongHistogram> ByOutcome)
    {
        /// <summary>Requests that got no answer (the client gave up: a timeout, the gateway gone).</summary>
        public long Errors => ErrorTypes.Values.Sum();

        public string DescribeErrors() => string.Join(", ", ErrorTypes.OrderByDescending(e => e.Value).Select(e => $"{e.Key} {e.Value}"));
    }

    /// <summary>Warm-up rounds at most; a round ends the warm-up when it made the JIT compile few methods.</summary>
    private const int MaxWarmupRounds = 10;

    /// <summary>Methods compiled by silo and client together during one warm-up round, at or below which the JIT is quiet.</summary>
    private const long QuietJitMethods = 100;

    /// <summary>
    /// Throwaway sales until the JIT is quiet, so the burst measures admission, not start-up. A fresh .NET process runs
    /// new code unoptimized first and recompiles what runs often (tiered compilation, with profile-guided optimization)
    /// on a background thread: measured here, a burst on a silo and client just started spent 14 % of the silo's CPU
    /// in the JIT and ran the hot paths unoptimized, and its admission p99 was 2.7 s against 0.15–0.3 s on the same
    /// processes warmed (docs/BENCHMARKS.md). One round is a sale of <c>--warmup</c> requests offered at the burst's
    /// arrival rate (stock a twentieth, drained at the cap) and a 2 s pause for the background recompilation; rounds go on while the silo and the client
    /// compiled more than <see cref="QuietJitMethods"/> methods in the round, at most <see cref="MaxWarmupRounds"/>.
    /// </summary>
    private static async Task WarmUpAsync(IClusterClient client, string run, Settings s, TextWriter output)
    {
        var probe = new SiloProbe(client);
        for (var round = 1; round <= MaxWarmupRounds; round++)
        {
            var siloBefore = await SiloJitAsync(probe);
            var clientBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
            var warm = await OfferAsync(client, $"{run}w{round}", s.Warmup, Math.Max(1, s.Warmup / 2), Math.Max(1, s.Warmup / 20), s.Rate,
                s.ArrivalRate, s.PerUserLimit, s.Buffer, s.Batching);
            await Task.Delay(2_000);
            var siloCompiled = await SiloJitAsync(probe) - siloBefore;
            var clientCompiled = System.Runtime.JitInfo.GetCompiledMethodCount() - clientBefore;
            output.WriteLine($"  warm-up {round}: {s.Warmup} requests on sale {warm.SaleId}, admission p99 {LatencySummary.From(warm.Latency).P99:0.00} ms; " +
                $"methods compiled meanwhile: silo {(siloCompiled is { } n ? n.ToString("N0") : "not measured")}, client {clientCompiled:N0} (warm-up, not in the results)");
            if (siloCompiled is null || siloCompiled + clientCompiled <= QuietJitMethods)
            {
                return;
            }
        }

        output.WriteLine($"  warm-up: the JIT was still compiling after {MaxWarmupRounds} rounds; the burst may measure some of it");
    }

    /// <summary>This process's and (on a bench silo) the silo's collections and total pause time, to set beside the burst's tail.</summary>
    private sealed record GcSample(int Gen0, int Gen1, int Gen2, double PauseSeconds, SiloSample? Silo)
    {
        public static string Describe(GcSample before, GcSample after)
        {
            var client = $"load tool {after.Gen0 - before.Gen0}/{after.Gen1 - before.Gen1}/{after.Gen2 - before.Gen2} (gen0/1/2), paused {(after.PauseSeconds - before.PauseSeconds) * 1000:0} ms";
            return before.Silo is { } b && after.Silo is { } a
                ? $"silo {a.Gen0Collections - b.Gen0Collections}/{a.Gen1Collections - b.Gen1Collections}/{a.Gen2Collections - b.Gen2Collections}, paused {(a.GcPauseSeconds - b.GcPauseSeconds) * 1000:0} ms; {client}"
                : $"silo not sampled; {client}";
        }
    }

    private static async Task<GcSample> GcAsync(IClusterClient client)
    {
        SiloSample? silo;
        try
        {
            silo = await new SiloProbe(client).SampleAsync();
        }
        catch (InvalidOperationException)
        {
            silo = null; // not a bench silo
        }

        return new GcSample(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration().TotalSeconds, silo);
    }

    /// <summary>The silo's count of JIT-compiled methods, or null when it hosts no bench grains or does not report it (then one warm-up round).</summary>
    private static async Task<long?> SiloJitAsync(SiloProbe probe)
    {
        try
        {
            // A silo built before the sample carried the count answers 0 (it has always compiled methods): not measured.
            var count = (await probe.SampleAsync()).JitCompiledMethods;
            return count > 0 ? count : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public static async Task<int> RunAsync(IClusterClient client, Settings s, TextWriter output)
    {
        var run = $"fb{DateTime.UtcNow:HHmmss}{Random.Shared.Next(1000):000}";
        output.WriteLine($"flashsale bench {run}: {s.Requests} requests from {s.Users} buyers at {s.ArrivalRate}/s; stock {s.Stock}, cap {s.Rate} orders/s, per-user limit {s.PerUserLimit}, buffer {s.Buffer}");
        output.WriteLine($"  machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        output.WriteLine(s.Batching
            ? "  requests sent through FlashSaleBuyer (concurrent requests share a BuyMany call; --no-batching: one call each)"
            : "  one gateway call per request (--no-batching)");

        if (s.Warmup > 0)
        {
            await WarmUpAsync(client, run, s, output);
        }

        var memory = new MemoryWatch(client);
        using var watching = new CancellationTokenSource();
        var watch = memory.RunAsync(watching.Token);

        var storageBefore = await StorageAsync(client);
        var gcBefore = await GcAsync(client);
        var burst = await OfferAsync(client, run, s.Requests, s.Users, s.Stock, s.Rate, s.ArrivalRate, s.PerUserLimit, s.Buffer, s.Batching);
        var gcAfter = await GcAsync(client);
        var storageAdmitted = await StorageAsync(client);
        var admission = LatencySummary.From(burst.Latency);
        output.WriteLine($"  offered in {burst.Seconds:0.00} s in {burst.Calls} calls ({(burst.Calls == 0 ? 0 : (double)s.Requests / burst.Calls):0.0} requests per call); admission latency from intended send: p50 {admission.P50:0.00} ms, p99 {admission.P99:0.00} ms, p99.9 {admission.P999:0.00} ms, max {admission.Max:0.00} ms");
        output.WriteLine($"  garbage collection during the burst: {GcSample.Describe(gcBefore, gcAfter)}");
        output.WriteLine($"  answers: {string.Join(", ", burst.Answers.OrderBy(a => a.Key).Select(a => $"{a.Key.Name()} {a.Value}"))}");
        output.WriteLine($"  admission latency by answer: {string.Join("; ", burst.ByOutcome.OrderBy(a => a.Key).Select(a => LatencySummary.From(a.Value) is var l ? $"{a.Key.Name()} p50 {l.P50:0.00} / p99 {l.P99:0.00} / max {l.Max:0.00} ms" : ""))}");
        if (burst.Errors > 0)
        {
            output.WriteLine($"  no answer (the client gave up; such a request may still have been queued, the sale's own counters below count it): {burst.DescribeErrors()}");
        }

        var sale = client.GetGrain<IFlashSaleGrain>(burst.SaleId);
        var drainClock = Stopwatch.StartNew();
        var status = await PatientlyAsync(sale.GetStatusAsync);
        while (!(status.Backlog == 0 && status.Processed == status.Accepted))
        {
            if (drainClock.Elapsed > s.DrainTimeout)
            {
                output.WriteLine($"  drain not finished after {s.DrainTimeout.TotalSeconds:0} s: backlog {status.Backlog}");
                break;
            }

            await Task.Delay(250);
            status = await PatientlyAsync(sale.GetStatusAsync);
        }

        await watching.CancelAsync();
        await watch;
        var storageDrained = await StorageAsync(client);

        // Every queued request's final answer, from its ticket.
        var answers = new List<TicketStatus>();
        foreach (var chunk in burst.Tickets.Chunk(256))
        {
            answers.AddRange(await PatientlyAsync(() => Task.WhenAll(chunk.Select(sale.GetTicketAsync))));
        }

        var winners = answers.Where(a => a.State == TicketState.Won).ToList();
        // Lost: a request the client was told is queued that has no final answer, or anything the sale itself still holds.
        var lost = answers.Count(a => a.State is TicketState.Pending or TicketState.Unknown) + status.Backlog;
        var distinctOrders = winners.Select(w => w.OrderId).Distinct().Count();
        // The sale's own count of winners (it includes requests queued whose answer the client never received).
        var won = status.Won;
        var oversold = Math.Max(0, won - s.Stock) + (winners.Count - distinctOrders);
        var perUserMax = winners.Count == 0 ? 0 : winners.GroupBy(w => w.UserId).Max(g => g.Count());

        // Orders per one-second window, from the orders' stored placement times (not the drainer's own count).
        var placed = await PlacedAtAsync(client, winners.Select(w => w.OrderId!).ToList());
        var windows = placed.GroupBy(t => t.ToUnixTimeSeconds()).ToDictionary(g => g.Key, g => (long)g.Count());
        var missingOrders = winners.Count - placed.Count;
        long maxRate = 0, minFullRate = 0;
        if (windows.Count > 0)
        {
            var first = windows.Keys.Min();
            var last = windows.Keys.Max();
            output.WriteLine($"  orders created per second (cap {s.Rate}), from the stored orders:");
            var scale = Math.Max(1.0, windows.Values.Max() / 50.0);
            for (var second = first; second <= last; second++)
            {
                var count = windows.GetValueOrDefault(second);
                output.WriteLine($"    {second - first,4} s {count,6} {new string('#', (int)Math.Round(count / scale))}");
            }

            maxRate = windows.Values.Max();
            // While a backlog remained: every whole second but the first and the last (partial) ones.
            var inner = Enumerable.Range(1, (int)Math.Max(0, last - first - 1)).Select(i => windows.GetValueOrDefault(first + i)).ToList();
            minFullRate = inner.Count > 0 ? inner.Min() : maxRate;
        }

        var level = await client.GetGrain<IStockGrain>(SkuOf(burst.SaleId)).GetAsync();
        output.WriteLine($"  sale's counters: accepted {status.Accepted}, processed {status.Processed}, won {status.Won}, backlog {status.Backlog}, refused {string.Join(", ", status.Refused.OrderBy(r => r.Key).Select(r => $"{r.Key.Name()} {r.Value}"))}");
        output.WriteLine($"  drained in {drainClock.Elapsed.TotalSeconds:0.0} s; winners told to the client {winners.Count} (stock {s.Stock}), sold out {answers.Count(a => a.State == TicketState.SoldOut)}, lost {lost}, orders missing {missingOrders}, most units per buyer {perUserMax} (limit {s.PerUserLimit})");
        output.WriteLine($"  SKU after the sale: available {level.Available}, reserved {level.Reserved}, sold {level.Sold}");
        output.WriteLine($"  drain: max {maxRate}/s, min {minFullRate}/s over whole seconds while a backlog remained (cap {s.Rate}/s: goal ≤ {s.Rate * 1.05:0}, ≥ {s.Rate * 0.9:0})");
        output.WriteLine($"  silo memory: {memory.Describe()}");
        if (storageBefore is { Count: > 0 } && storageAdmitted is not null && storageDrained is not null)
        {
            // Azure profile: the sale's own table (records, shard heads, ticket segments) apart from everything else the
            // drain's orders cost; "during admission" includes whatever the drain did meanwhile.
            var answered = burst.Answers.Values.Sum();
            var queued = burst.Answers.GetValueOrDefault(AdmissionOutcome.Queued);
            var saleAdmission = Requests(storageAdmitted, FlashSalesTable) - Requests(storageBefore, FlashSalesTable);
            var saleDrain = Requests(storageDrained, FlashSalesTable) - Requests(storageAdmitted, FlashSalesTable);
            var all = Requests(storageDrained, null) - Requests(storageBefore, null);
            output.WriteLine($"  storage requests ({FlashSalesTable}): {saleAdmission} while the burst was answered = " +
                             $"{(answered == 0 ? 0 : (double)saleAdmission / answered):0.000} per answered request, {(queued == 0 ? 0 : (double)saleAdmission / queued):0.000} per queued one; " +
                             $"{saleDrain} more until drained (the tickets' answers); every table and queue, burst and drain: {all} ({(won == 0 ? 0 : (double)all / won):0.0} per winner)");
        }

        var maxAt50 = 0;
        if (s.Search)
        {
            maxAt50 = await SearchAsync(client, run, s, output);
        }

        var accepted = burst.Answers.GetValueOrDefault(AdmissionOutcome.Queued);
        var refused = burst.Answers.Where(a => a.Key != AdmissionOutcome.Queued).Sum(a => a.Value);
        output.WriteLine($"  requests without an answer: {burst.Errors}");
        output.WriteLine($"  machine after: load average {LoadAverage()}");
        output.WriteLine($"RESULT accepted={accepted} refused={refused} won={won} oversold={oversold} lost={lost} " +
            $"max_rate_per_s={maxRate} cap_per_s={s.Rate} admit_p99_ms={admission.P99:0.00} max_arrival_rate_at_50ms={(s.Search ? maxAt50.ToString(System.Globalization.CultureInfo.InvariantCulture) : "not_searched")}");
        return oversold == 0 && lost == 0 && missingOrders == 0 && perUserMax <= s.PerUserLimit && level.Reserved + level.Sold <= s.Stock
            && level.Reserved + level.Sold == won ? Cli.Ok : Cli.Refused;
    }

    private const string FlashSalesTable = "OrderFlowFlashSales";

    /// <summary>The silo's storage request counts (Azure profile), empty in the embedded profile, null without bench grains.</summary>
    private static async Task<IReadOnlyList<StorageOperationCount>?> StorageAsync(IClusterClient client)
    {
        try
        {
            return await PatientlyAsync(() => client.GetGrain<IBenchControlGrain>(0).GetStorageOperationsAsync());
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or OrleansException)
        {
            return null;
        }
    }

    /// <summary>Requests to <paramref name="resource"/> (null: every resource).</summary>
    private static long Requests(IReadOnlyList<StorageOperationCount> counts, string? resource) =>
        counts.Where(c => resource is null || c.Resource == resource).Sum(c => c.Requests);

    /// <summary>Doubling, then halving the step, a few short bursts: the highest arrival rate whose admission p99 was ≤ 50 ms.</summary>
    private static async Task<int> SearchAsync(IClusterClient client, string run, Settings s, TextWriter output)
    {
        output.WriteLine($"  search: {s.SearchSeconds:0} s bursts, same stock share and cap; admission p99 ≤ {P99BarMs} ms?");
        int good = 0, bad = 0, step = 0;
        var rate = s.ArrivalRate;
        while (step++ < 6 && rate >= 500 && rate <= s.SearchMaxRate)
        {
            var requests = (int)(rate * s.SearchSeconds);
            var stock = Math.Max(1, (long)(s.Stock * (double)requests / s.Requests));
            var burst = await OfferAsync(client, $"{run}s{step}", requests, Math.Max(1, (int)(s.Users * (double)requests / s.Requests)),
                Math.Min(stock, FlashSaleLimits.MaxStock), s.Rate, rate, s.PerUserLimit, s.Buffer, s.Batching);
            var p99 = LatencySummary.From(burst.Latency).P99;
            output.WriteLine($"    {rate,7}/s: p99 {p99:0.00} ms, max {LatencySummary.From(burst.Latency).Max:0.00} ms{(burst.Errors > 0 ? $", no answer: {burst.DescribeErrors()}" : "")} (load average {LoadAverage()})");
            if (p99 <= P99BarMs && burst.Errors == 0)
            {
                good = Math.Max(good, rate);
            }
            else
            {
                bad = bad == 0 ? rate : Math.Min(bad, rate);
            }

            rate = bad == 0 ? rate * 2 : (good + bad) / 2;
            if (bad > 0 && bad - good <= Math.Max(1_000, good / 10))
            {
                break;
            }

            // The next step must not share the machine with this one's drain.
            var drained = Stopwatch.StartNew();
            while (drained.Elapsed < s.DrainTimeout)
            {
                try
                {
                    if ((await client.GetGrain<IFlashSaleGrain>(burst.SaleId).GetStatusAsync()).Backlog == 0)
                    {
                        break;
                    }
                }
                catch (TimeoutException)
                {
                    // overloaded: ask again
                }

                await Task.Delay(250);
            }

            await Task.Delay(1_000);
        }

        return good;
    }

    private static string SkuOf(string saleId) => $"{saleId}-sku";

    /// <summary>A read the bench needs an answer to: asked again (at most 30 times) while an overloaded silo answers late.</summary>
    private static async Task<T> PatientlyAsync<T>(Func<Task<T>> read)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await read();
            }
            catch (TimeoutException) when (attempt < 30)
            {
                await Task.Delay(500);
            }
        }
    }

    private static async Task<Burst> OfferAsync(IClusterClient client, string saleId, int requests, int users, long stock, int rate,
        int arrivalRate, int perUserLimit, int buffer, bool batching)
    {
        var sku = SkuOf(saleId);
        var set = await client.GetGrain<IStockGrain>(sku).SetAvailableAsync(stock);
        if (!set.Accepted)
        {
            throw new InvalidOperationException($"stock set {sku} refused: {set.Message}");
        }

        var sale = client.GetGrain<IFlashSaleGrain>(saleId);
        var created = await sale.CreateAsync(new FlashSaleSpec(sku, stock, rate, DateTimeOffset.UtcNow, perUserLimit, buffer, 1.00m));
        if (!created.Accepted)
        {
            throw new InvalidOperationException($"flashsale create {saleId} refused: {created.Message}");
        }

        // Warm the front and the shards (activation, the sale's first read) so the burst measures admission, not start-up.
        await sale.GetStatusAsync();

        var latency = new LongHistogram(HighestTrackableMicros, 3);
        var byOutcome = new Dictionary<AdmissionOutcome, LongHistogram>();
        var answers = new Dictionary<AdmissionOutcome, long>();
        var tickets = new List<string>();
        var gate = new object();
        var errors = new Dictionary<string, long>();
        // Requests not answered yet, plus one for the offering loop: no list of every request's task, which would keep
        // 100,000 finished tasks alive into the load tool's older generations (and its gen2 collections into the burst).
        var outstanding = 1;
        var allAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var buyer = batching ? new FlashSaleBuyer(client, saleId) : null;
        // The ids are made before the clock starts: the load tool shares the silo's cores, so what it does per request is
        // kept to the call itself.
        var userIds = Enumerable.Range(0, Math.Min(users, requests)).Select(u => $"{saleId}-u{u}").ToArray();
        var requestIds = Enumerable.Range(0, requests).Select(i => $"r{i}").ToArray();
        var ticksPerRequest = Stopwatch.Frequency / (double)arrivalRate;
        var start = Stopwatch.GetTimestamp();
        var next = 0;
        while (next < requests)
        {
            var now = Stopwatch.GetTimestamp();
            var due = Math.Min(requests, (int)((now - start) / ticksPerRequest) + 1);
            for (; next < due; next++)
            {
                Interlocked.Increment(ref outstanding);
                _ = SendAsync(next, start + (long)(next * ticksPerRequest));
            }

            if (next < requests)
            {
                await Task.Delay(1);
            }
        }

        Answered();
        await allAnswered.Task;
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new Burst(saleId, latency, answers, tickets, errors, seconds, buyer?.Calls ?? requests, byOutcome);

        async Task SendAsync(int i, long intendedAt)
        {
            try
            {
                var user = userIds[i % userIds.Length];
                var answer = buyer is null ? await sale.BuyAsync(user, requestIds[i]) : await buyer.BuyAsync(user, requestIds[i]);
                var done = Stopwatch.GetTimestamp();
                lock (gate)
                {
                    var micros = Math.Min(HighestTrackableMicros, Math.Max(0, (done - intendedAt) * 1_000_000 / Stopwatch.Frequency));
                    latency.RecordValue(micros);
                    if (!byOutcome.TryGetValue(answer.Outcome, out var histogram))
                    {
                        byOutcome[answer.Outcome] = histogram = new LongHistogram(HighestTrackableMicros, 3);
                    }

                    histogram.RecordValue(micros);
                    answers[answer.Outcome] = answers.GetValueOrDefault(answer.Outcome) + 1;
                    if (answer.Outcome == AdmissionOutcome.Queued)
                    {
                        tickets.Add(answer.Ticket!);
                    }
                }
            }
            catch (Exception ex)
            {
                lock (gate)
                {
                    errors[ex.GetType().Name] = errors.GetValueOrDefault(ex.GetType().Name) + 1;
                }
            }
            finally
            {
                Answered();
            }
        }

        void Answered()
        {
            if (Interlocked.Decrement(ref outstanding) == 0)
            {
                allAnswered.TrySetResult();
            }
        }
    }

    private static async Task<IReadOnlyList<DateTimeOffset>> PlacedAtAsync(IClusterClient client, IReadOnlyList<string> orderIds)
    {
        var stored = client.GetGrain<IStoredStateGrain>(0);
        var placed = new List<DateTimeOffset>();
        foreach (var chunk in orderIds.Chunk(100))
        {
            placed.AddRange((await stored.ReadOrderDetailsAsync(chunk)).Where(o => o.Exists)
                .Select(o => o.Events.OfType<OrderPlaced>().First().OccurredAt));
        }

        return placed;
    }


    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    /// <summary>The silo's working set, sampled every 250 ms through the bench control grain (only on a bench silo).</summary>
    private sealed class MemoryWatch(IClusterClient client)
    {
        private long _peak;
        private long _first;
        private string? _unavailable;
        private int _missed;

        public async Task RunAsync(CancellationToken stop)
        {
            IBenchControlGrain control;
            try
            {
                control = client.GetGrain<IBenchControlGrain>(0);
            }
            catch (ArgumentException)
            {
                _unavailable = "not measured (the silo hosts no bench grains: start it with Benchmarks:Enabled=true, as ./bench.sh does)";
                return;
            }

            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var sample = await control.SampleAsync(false);
                    _first = _first == 0 ? sample.WorkingSetBytes : _first;
                    _peak = Math.Max(_peak, sample.WorkingSetBytes);
                }
                catch (Exception ex) when (ex is TimeoutException or OrleansException)
                {
                    _missed++; // an overloaded silo answers late; the next sample counts
                }

                await Task.Delay(250, stop).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        public string Describe() => _unavailable ?? new StringBuilder()
            .Append(_peak == 0 ? "no sample answered" : $"peak working set {_peak / 1048576.0:0} MiB (at start {_first / 1048576.0:0} MiB)")
            .Append(_missed > 0 ? $", {_missed} samples not answered in time" : "").ToString();
    }
}
