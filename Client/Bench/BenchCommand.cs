using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using HdrHistogram;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// <c>bench</c>: measures, on one silo and in one run, Orleans' own limits (a trivial grain call, a trivial stream
/// delivery) and the order pipeline against them — throughput, latency at a fixed fraction of that throughput with
/// and without slow subscribers, and the cost of 100,000 orders in throughput and silo memory. Needs a silo started
/// with <c>Benchmarks:Enabled=true</c> (see <c>./bench.sh</c>). Prints a table, writes a JSON file and ends with a
/// RESULT line. A benchmark, not a test: it asserts no timing, it only fails when the pipeline loses an event or the
/// silo cannot be reached.
/// </summary>
public static partial class BenchCommand
{
    /// <summary>The async-ratio drills (scenario S1): the document's slow downstream systems, in milliseconds per event.</summary>
    private static readonly (string Subscriber, int DelayMs)[] SlowSubscribers = [("sms", 100), ("points", 200), ("coupon", 100)];

    /// <summary>
    /// The embedded profile's settings. <see cref="IdleSeconds"/>: how long the scale phase lets the silo sit idle after
    /// deactivating before it measures memory: at least the silo's OrderStreams:PullingAgent:StreamInactivityPeriod,
    /// after which the stream agents drop their per-stream state, and the in-memory stream's cache window (1 minute),
    /// after which a quiet silo's stream cache is empty.
    /// </summary>
    public sealed record Settings(int Orders, int Concurrency, int BaselineSeconds, int LatencySeconds, int LoadPercent, int ScaleOrders,
        int IdleSeconds, string OutDir, TimeSpan DrainTimeout, bool FullScaleOrders = false)
    {
        public static Settings Read(SymbolResult given, BenchOptions o)
        {
            o.EnsureOnly(given, BenchOptions.Embedded, o.Orders, o.Concurrency, o.BaselineSeconds, o.LatencySeconds, o.LoadPercent, o.ScaleOrders,
                o.ScaleLifecycle, o.IdleSeconds, o.Out, o.DrainTimeoutSeconds);
            var lifecycle = given.GetValue(o.ScaleLifecycle) ?? "short";
            if (lifecycle.ToLowerInvariant() is not ("short" or "full"))
            {
                throw new UsageException($"option --scale-lifecycle must be short or full, was '{Ids.Printable(lifecycle)}'");
            }

            return new Settings(
                BenchOptions.Number(given, o.Orders, 1000, 10, 1_000_000),
                BenchOptions.Number(given, o.Concurrency, 64, 1, 4096),
                BenchOptions.Number(given, o.BaselineSeconds, 5, 1, 600),
                BenchOptions.Number(given, o.LatencySeconds, 15, 1, 600),
                BenchOptions.Number(given, o.LoadPercent, 50, 1, 100),
                BenchOptions.Number(given, o.ScaleOrders, 100_000, 0, 1_000_000),
                BenchOptions.Number(given, o.IdleSeconds, 70, 0, 3600),
                given.GetValue(o.Out) ?? "artifacts",
                TimeSpan.FromSeconds(BenchOptions.Number(given, o.DrainTimeoutSeconds, 300, 1, 3600)),
                lifecycle.Equals("full", StringComparison.OrdinalIgnoreCase));
        }
    }

    public static Command Create(CliContext cli)
    {
        var options = new BenchOptions();
        var bench = new Command("bench", "Measures the pipeline against Orleans' own limits (a silo with Benchmarks:Enabled=true; see ./bench.sh)");
        foreach (var option in options.All)
        {
            bench.Options.Add(option);
        }

        // The validator reads every option for the chosen profile, so a bad one is a parse error and nothing connects.
        bench.Validators.Add(given =>
        {
            try
            {
                _ = Plan(given, options, cli.Output);
            }
            catch (UsageException ex)
            {
                given.AddError(ex.Message);
            }
        });
        bench.SetAction(parse => cli.WithClientAsync(parse, Plan(parse.CommandResult, options, cli.Output)));
        return bench;
    }

    /// <summary>The run the command line asks for, with every option read for the chosen profile.</summary>
    private static Func<IClusterClient, Task<int>> Plan(SymbolResult given, BenchOptions options, TextWriter output)
    {
        var profile = options.ProfileOf(given);
        if (options.WorkloadOf(given) == BenchOptions.Brokers)
        {
            if (profile != BenchOptions.Embedded)
            {
                throw new UsageException("--workload brokers runs on the embedded profile only (the brokers were measured in memory and on local disk; Azurite would measure the emulator)");
            }

            var brokers = BrokersSettings.Read(given, options);
            return client => RunBrokersAsync(client, brokers, output);
        }

        if (options.WorkloadOf(given) == BenchOptions.Consistency)
        {
            var consistency = ConsistencyBench.Settings.Read(given, options, profile);
            return client => ConsistencyBench.RunAsync(client, consistency, output);
        }

        if (profile == BenchOptions.Azure)
        {
            var durable = DurableBench.Settings.Read(given, options);
            return client => DurableBench.RunAsync(client, durable, output);
        }

        var embedded = Settings.Read(given, options);
        return client => RunEmbeddedAsync(client, embedded, output);
    }

    public static async Task<int> RunEmbeddedAsync(IClusterClient client, Settings args, TextWriter output)
    {
        var (orders, concurrency, baselineSeconds, latencySeconds, loadPercent, scaleOrders, idleSeconds, outDir, drainTimeout, fullScaleOrders) = args;
        var (scaleFate, scaleLifecycle) = fullScaleOrders
            ? (OrderPlan.Fate.Received, "placed, paid, shipped, received")
            : (OrderPlan.Fate.CancelledBeforePayment, "placed, cancelled");

        var total = Stopwatch.StartNew();
        var runId = $"b{DateTime.UtcNow:HHmmss}{Random.Shared.Next(100):00}";
        if (await StartAsync(client) is not var (probe, atStart, subscribers, machine))
        {
            return 1;
        }

        var settings = $"orders={orders} concurrency={concurrency} baseline_seconds={baselineSeconds} latency_seconds={latencySeconds} " +
                       $"load_percent={loadPercent} scale_orders={scaleOrders} scale_lifecycle={(fullScaleOrders ? "full" : "short")} idle_seconds={idleSeconds}";
        output.WriteLine($"bench {runId}: {settings}");
        output.WriteLine($"  machine: {machine}; load average {LoadAverage()}");
        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");
        var phases = new Phases(client, probe, concurrency, subscribers.Count, drainTimeout, output);

        // Warm-up: JIT, tiered compilation and the first activations of every grain type, not measured.
        output.WriteLine("  warm-up ...");
        await phases.CallsAsync(TimeSpan.FromSeconds(1));
        await phases.StreamAsync($"{runId}-ws", Math.Min(orders, 500));
        var warmPlans = BenchOrders.Create($"{runId}-w", Math.Min(orders, 500));
        await phases.SetUpAsync(warmPlans);
        await phases.PipelineAsync("warm-up", warmPlans);

        output.WriteLine("  1/5 baselines ...");
        var callsPerSecond = await phases.CallsAsync(TimeSpan.FromSeconds(baselineSeconds));
        // As many streams as the pipeline has (order, subscriber) pairs: the same number of subscriber activations
        // and of deliveries (four each), so the baseline pays the same per-stream and per-delivery costs.
        var stream = await phases.StreamAsync($"{runId}-s", orders * subscribers.Count);

        output.WriteLine("  2/5 pipeline throughput ...");
        var pipelinePlans = BenchOrders.Create($"{runId}-p", orders);
        await phases.SetUpAsync(pipelinePlans);
        var pipeline = await phases.PipelineAsync("pipeline", pipelinePlans);
        var lost = await phases.CountLostAsync(pipelinePlans);

        var rate = pipeline.OrdersPerSecond * loadPercent / 100.0;
        var pacedOrders = Math.Max(10, (int)(rate * latencySeconds));
        output.WriteLine($"  3/5 latency at {loadPercent} % load ({rate:0} orders/s, {rate * BenchOrders.EventsPerOrder:0} commands/s, {latencySeconds} s) ...");
        var latencyPlans = BenchOrders.Create($"{runId}-l", pacedOrders);
        await phases.SetUpAsync(latencyPlans);
        var latency = await phases.PacedAsync(latencyPlans, rate);

        output.WriteLine($"  4/5 same load with slow subscribers ({string.Join(", ", SlowSubscribers.Select(s => $"{s.Subscriber} +{s.DelayMs} ms"))}) ...");
        PacedResult slow;
        var slowPlans = BenchOrders.Create($"{runId}-a", pacedOrders);
        await phases.SetUpAsync(slowPlans);
        try
        {
            foreach (var (name, delay) in SlowSubscribers)
            {
                await probe.Control.SlowSubscriberAsync(name, delay);
            }

            slow = await phases.PacedAsync(slowPlans, rate);
        }
        finally
        {
            await probe.Control.ClearDrillsAsync(SlowSubscribers.Select(s => s.Subscriber).ToArray());
        }

        var asyncRatio = slow.FromIntended.P99 / latency.FromIntended.P99;

        ThroughputResult? scale = null;
        ThroughputResult? scaleSmall = null;
        MemoryResult? memory = null;
        if (scaleOrders > 0)
        {
            output.WriteLine($"  5/5 scale: 1,000 then {scaleOrders:N0} orders ({scaleLifecycle}), memory before and after idle deactivation ...");
            // Same lifecycle at 1,000 and at N orders, so orders/s compare like for like.
            var referencePlans = BenchOrders.Create($"{runId}-y", Math.Min(1000, scaleOrders), scaleFate);
            await phases.SetUpAsync(referencePlans);
            scaleSmall = await phases.PipelineAsync("scale reference", referencePlans);
            (scale, memory) = await phases.ScaleAsync(BenchOrders.Create($"{runId}-x", scaleOrders, scaleFate), TimeSpan.FromSeconds(idleSeconds));
        }

        var goals = Goals(stream, pipeline, latency, asyncRatio, scaleSmall, scale, memory);
        var report = new BenchReport(runId, DateTimeOffset.UtcNow - total.Elapsed, machine, settings, subscribers, atStart,
            callsPerSecond, stream, pipeline, lost, latency, slow, asyncRatio, scaleSmall, scale, memory, goals, total.Elapsed.TotalSeconds);

        BenchTable.Write(report, output);
        var path = await BenchChecks.WriteJsonAsync(report, outDir, "bench");
        output.WriteLine($"  json: {path}; load average now {LoadAverage()}");
        output.WriteLine(report.ResultLine());
        return lost == 0 && pipeline.Refused == 0 ? 0 : 1;
    }

    /// <summary>
    /// What every embedded run starts with: the bench control grain answering (null, with the reason on stderr, when the
    /// silo was not started with Benchmarks:Enabled), the silo's first sample, its subscribers and the machine line.
    /// </summary>
    private static async Task<(SiloProbe Probe, SiloSample AtStart, IReadOnlyList<string> Subscribers, string Machine)?> StartAsync(IClusterClient client)
    {
        var probe = new SiloProbe(client);
        if (await probe.FirstSampleAsync() is not { } atStart)
        {
            return null;
        }

        var subscribers = await client.GetGrain<IOperationsGrain>(0).GetSubscribersAsync();
        var machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, silo server GC {atStart.ServerGc}, concurrent GC {atStart.ConcurrentGc}";
        return (probe, atStart, subscribers, machine);
    }

    private static List<GoalResult> Goals(ThroughputResult stream, ThroughputResult pipeline, PacedResult latency, double asyncRatio,
        ThroughputResult? scaleSmall, ThroughputResult? scale, MemoryResult? memory)
    {
        var deliveryRatio = pipeline.DeliveriesPerSecond / stream.DeliveriesPerSecond;
        var goals = new List<GoalResult>
        {
            new("pipeline deliveries/s vs stream baseline", $"{deliveryRatio:P0}", ">= 50 %", deliveryRatio >= 0.5),
            new("command p99 at fixed load", $"{latency.FromIntended.P99:0.00} ms", "<= 10 ms", latency.FromIntended.P99 <= 10),
            new("async ratio (p99 slow / p99 normal)", $"{asyncRatio:0.00}", "<= 1.2", asyncRatio <= 1.2),
        };
        if (memory is not null)
        {
            goals.Add(new("silo memory per deactivated order", $"{memory.DeactivatedBytesPerOrder:0} B", "<= 2048 B", memory.DeactivatedBytesPerOrder <= 2048));
        }

        if (scale is not null && scaleSmall is not null)
        {
            var ratio = scale.OrdersPerSecond / scaleSmall.OrdersPerSecond;
            goals.Add(new($"throughput at {scale.Orders} vs {scaleSmall.Orders} orders", $"{ratio:P0}", ">= 80 %", ratio >= 0.8));
        }

        return goals;
    }

    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
        catch (UnauthorizedAccessException)
        {
            return "n/a";
        }
    }

    /// <summary>The measuring steps, sharing the client, the probe and the run's settings.</summary>
    private sealed class Phases(IClusterClient client, SiloProbe probe, int concurrency, int subscriberCount, TimeSpan drainTimeout, TextWriter output)
    {
        /// <summary>
        /// The stock and coupons the plans reserve (a placement without them is refused), set up before a phase and
        /// outside its measurement.
        /// </summary>
        public async Task SetUpAsync(IReadOnlyList<OrderPlan> plans)
        {
            var clock = Stopwatch.StartNew();
            var needs = InventoryNeeds.For(plans);
            await needs.ApplyAsync(client, concurrency);
            output.WriteLine($"     setup: {needs.Summary()} in {clock.Elapsed.TotalSeconds:0.0} s");
        }

        /// <summary>Trivial grain calls through the gateway, closed loop, for a fixed time: calls per second.</summary>
        public async Task<double> CallsAsync(TimeSpan duration)
        {
            long calls = 0;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
            {
                var echo = client.GetGrain<IBenchEchoGrain>(worker);
                while (clock.Elapsed < duration)
                {
                    await echo.PingAsync(worker);
                    Interlocked.Increment(ref calls);
                }
            }));
            return calls / clock.Elapsed.TotalSeconds;
        }

        /// <summary>
        /// The stream baseline, shaped like the pipeline: streams of four events each, published through a grain, at the
        /// same concurrency — but one trivial subscriber per stream and no state anywhere.
        /// </summary>
        public async Task<ThroughputResult> StreamAsync(string prefix, int streams)
        {
            var before = await probe.SampleAsync();
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, streams), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, _) =>
            {
                var producer = client.GetGrain<IBenchProducerGrain>($"{prefix}-{i}");
                for (var sequence = 1; sequence <= BenchOrders.EventsPerOrder; sequence++)
                {
                    await producer.PublishAsync(sequence);
                }
            });
            var publishSeconds = clock.Elapsed.TotalSeconds;
            long events = (long)streams * BenchOrders.EventsPerOrder;
            var after = await probe.WaitForAsync("stream baseline deliveries", s => s.BenchDeliveries, before.BenchDeliveries + events, drainTimeout);
            var seconds = clock.Elapsed.TotalSeconds;
            return new ThroughputResult("stream baseline", streams, events, events, publishSeconds, seconds, 0, SiloCost.Between(before, after, seconds));
        }

        /// <summary>
        /// Orders through their whole life, closed loop; counts only once every subscriber applied every event. With
        /// <paramref name="commandLatency"/>, each command's send→confirm time in µs goes into it.
        /// </summary>
        public async Task<ThroughputResult> PipelineAsync(string phase, IReadOnlyList<OrderPlan> plans, HistogramBase? commandLatency = null)
        {
            var before = await probe.SampleAsync();
            var clock = Stopwatch.StartNew();
            var refused = await BenchChecks.RunOrdersAsync(client, plans, concurrency, commandLatency);
            var commandSeconds = clock.Elapsed.TotalSeconds;
            var after = await WaitAppliedAsync(phase, before, plans);
            var seconds = clock.Elapsed.TotalSeconds;
            var events = BenchOrders.Events(plans);
            return new ThroughputResult(phase, plans.Count, events, events * subscriberCount, commandSeconds, seconds, refused,
                SiloCost.Between(before, after, seconds));
        }

        /// <summary>Fixed-rate load; waits for the subscribers to catch up afterwards so the next phase starts clean.</summary>
        public async Task<PacedResult> PacedAsync(IReadOnlyList<OrderPlan> plans, double ordersPerSecond)
        {
            var before = await probe.SampleAsync();
            var (gen0, gen1, gen2, paused) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
            var result = await PacedLoad.RunAsync(client, plans, ordersPerSecond);
            var tool = $"load tool GC {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}, " +
                       $"paused {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:0} ms";
            var after = await WaitAppliedAsync("paced load", before, plans);
            var cost = SiloCost.Between(before, after, result.Seconds);
            output.WriteLine($"     {result.Orders} orders in {result.Seconds:0.0} s, p99 {result.FromIntended.P99:0.00} ms, " +
                             $"silo CPU {cost.CpuPercent:0} %, {cost.DescribeGc((after.TakenAt - before.TakenAt).TotalSeconds)}; {tool}");
            output.WriteLine($"     from send, p50/p99 ms by command: {result.DescribeSteps()}");
            return result;
        }

        /// <summary>
        /// Memory is the managed heap after a full, compacting GC: before (everything earlier deactivated and idle for
        /// <paramref name="idle"/>), right after the orders (held), and after deactivating and idling again.
        /// </summary>
        public async Task<(ThroughputResult Scale, MemoryResult Memory)> ScaleAsync(IReadOnlyList<OrderPlan> plans, TimeSpan idle)
        {
            // Set up before the idle deactivation, so the stock and coupon records it activates are not in the "empty" heap.
            await SetUpAsync(plans);
            var management = client.GetGrain<IManagementGrain>(0);
            await probe.DeactivateIdleAsync();
            await Task.Delay(idle);
            var empty = await probe.SampleAsync(fullGc: true);
            var storedBefore = await probe.Control.GetStoredRecordsAsync();
            var scale = await PipelineAsync("scale", plans);
            var heldActivations = await management.GetTotalActivationCount();
            var held = await probe.SampleAsync(fullGc: true);
            var afterActivations = await probe.DeactivateIdleAsync();
            await Task.Delay(idle);
            var rested = await probe.SampleAsync(fullGc: true);
            var stored = StoredPerOrder.Between(storedBefore, await probe.Control.GetStoredRecordsAsync(), plans.Count);
            return (scale, new MemoryResult(plans.Count, empty.HeldBytes, held.HeldBytes, rested.HeldBytes, heldActivations, afterActivations,
                held.WorkingSetBytes, rested.WorkingSetBytes, stored));
        }

        public Task<long> CountLostAsync(IReadOnlyList<OrderPlan> plans) => BenchChecks.CountLostAsync(client, plans);

        private Task<SiloSample> WaitAppliedAsync(string phase, SiloSample before, IReadOnlyList<OrderPlan> plans) =>
            probe.WaitAppliedAsync(phase, before, plans, subscriberCount, drainTimeout);
    }
}
