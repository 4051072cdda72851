using System.CommandLine.Parsing;
using System.Diagnostics;
using HdrHistogram;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// <c>bench --workload brokers</c> (issue 14): the workload RabbitMQ, NATS JetStream and this project were compared on —
/// 20,000 orders × 4 events (placed, paid, shipped, received), 128 concurrent order flows each sending an order's next
/// event only after the previous one was confirmed, every subscriber applying each order's events in order;
/// deliveries/s = events × subscribers / (first publish → last subscriber applied its last event). Reported in the same
/// run as Orleans' trivial baselines, with command latency at that saturation (the brokers' publish→confirm),
/// publish→apply latency, the silo's and this client's CPU apart, and loss and exactness checked from stored state only
/// (<see cref="BenchChecks.CountLostAsync"/> and the audit), never by a call that could repair.
/// </summary>
public static partial class BenchCommand
{
    public sealed record BrokersSettings(int Orders, int Concurrency, int BaselineSeconds, string OutDir, TimeSpan DrainTimeout)
    {
        public static BrokersSettings Read(SymbolResult given, BenchOptions o)
        {
            o.EnsureOnly(given, "embedded --workload brokers", o.Orders, o.Concurrency, o.BaselineSeconds, o.Out, o.DrainTimeoutSeconds);
            return new BrokersSettings(
                BenchOptions.Number(given, o.Orders, 20_000, 100, 1_000_000),
                BenchOptions.Number(given, o.Concurrency, 128, 1, 4096),
                BenchOptions.Number(given, o.BaselineSeconds, 5, 1, 600),
                given.GetValue(o.Out) ?? "artifacts",
                TimeSpan.FromSeconds(BenchOptions.Number(given, o.DrainTimeoutSeconds, 600, 1, 3600)));
        }
    }

    /// <summary>What one brokers-workload run measured; written as JSON, printed, and summed up in the RESULT line.</summary>
    public sealed record BrokersReport(
        string RunId, DateTimeOffset StartedAt, string Machine, string Settings, IReadOnlyList<string> Subscribers,
        double BaselineCallsPerSecond, ThroughputResult StreamBaseline, ThroughputResult Workload, LatencySummary Commands,
        LatencyPercentiles PublishToApply, double ClientCpuPercent, IReadOnlyList<CallsPerEvent> GrainCalls, long Lost, long Audited, long AuditDiscrepancies,
        double TotalSeconds)
    {
        /// <summary>Every grain call the silo took during the workload, per order event; null when the silo did not count them (<c>Benchmarks:CountGrainCalls=false</c>).</summary>
        public double? GrainCallsPerEvent => GrainCalls.Count == 0 ? null : GrainCalls.Sum(c => c.Calls);

        public string ResultLine() =>
            "RESULT workload=brokers " +
            $"workload_deliveries_per_s={BenchReport.F(Workload.DeliveriesPerSecond, "0")} workload_p50_ms={BenchReport.F(Commands.P50, "0.00")} " +
            $"workload_p99_ms={BenchReport.F(Commands.P99, "0.00")} publish_to_apply_p50_ms={BenchReport.F(PublishToApply.P50, "0.00")} " +
            $"publish_to_apply_p99_ms={BenchReport.F(PublishToApply.P99, "0.00")} silo_cpu_percent={BenchReport.F(Workload.Silo.CpuPercent, "0")} " +
            $"client_cpu_percent={BenchReport.F(ClientCpuPercent, "0")} grain_calls_per_event={(GrainCallsPerEvent is { } calls ? BenchReport.F(calls, "0.00") : "n/a")} baseline_calls_per_s={BenchReport.F(BaselineCallsPerSecond, "0")} " +
            $"baseline_deliveries_per_s={BenchReport.F(StreamBaseline.DeliveriesPerSecond, "0")} lost={Lost} audit_discrepancies={AuditDiscrepancies}";
    }

    public static async Task<int> RunBrokersAsync(IClusterClient client, BrokersSettings args, TextWriter output)
    {
        var (orders, concurrency, baselineSeconds, outDir, drainTimeout) = args;
        var total = Stopwatch.StartNew();
        var runId = $"r{DateTime.UtcNow:HHmmss}{Random.Shared.Next(100):00}";
        if (await StartAsync(client) is not var (probe, _, subscribers, machine))
        {
            return 1;
        }

        var settings = $"orders={orders} events_per_order={BenchOrders.EventsPerOrder} concurrency={concurrency} baseline_seconds={baselineSeconds}";
        output.WriteLine($"bench {runId} (workload brokers): {settings}");
        output.WriteLine($"  machine: {machine}; load average {LoadAverage()}");
        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");
        var phases = new Phases(client, probe, concurrency, subscribers.Count, drainTimeout, output);

        output.WriteLine("  warm-up ...");
        await phases.CallsAsync(TimeSpan.FromSeconds(1));
        await phases.StreamAsync($"{runId}-ws", 500);
        var warmPlans = BenchOrders.Create($"{runId}-w", 500);
        await phases.SetUpAsync(warmPlans);
        await phases.PipelineAsync("warm-up", warmPlans);

        output.WriteLine("  1/3 baselines: trivial grain calls, trivial stream deliveries (same shape: 4 events per stream) ...");
        var callsPerSecond = await phases.CallsAsync(TimeSpan.FromSeconds(baselineSeconds));
        var stream = await phases.StreamAsync($"{runId}-s", orders * subscribers.Count);

        output.WriteLine($"  2/3 the workload: {orders:N0} orders × {BenchOrders.EventsPerOrder} events, {concurrency} flows, stock and coupons set up first ...");
        var plans = BenchOrders.Create($"{runId}-b", orders);
        await phases.SetUpAsync(plans);
        await probe.Control.TakeApplyLatencyAsync(); // a new period: only this phase's events
        var commands = new LongConcurrentHistogram(1, 3_600_000_000L, 3);
        var callsBefore = await probe.Control.GetGrainCallsAsync();
        var clientCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var workload = await phases.PipelineAsync("brokers workload", plans, commands);
        var clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientCpuBefore;
        var grainCalls = CallsPerEvent.Between(callsBefore, await probe.Control.GetGrainCallsAsync(), (long)orders * BenchOrders.EventsPerOrder);
        var publishToApply = await probe.Control.TakeApplyLatencyAsync();

        output.WriteLine("  3/3 checks from stored state: lost events, then the audit of every order's effects ...");
        var lost = await phases.CountLostAsync(plans);
        var audited = await AuditRuns.RunOrdersAsync(client.GetGrain<IAuditGrain>(0), plans.Select(p => p.OrderId).ToArray(), report =>
        {
            foreach (var discrepancy in report.Discrepancies.Take(5))
            {
                output.WriteLine($"     discrepancy: {discrepancy}");
            }
        });

        var report = new BrokersReport(runId, DateTimeOffset.UtcNow - total.Elapsed, machine, settings, subscribers, callsPerSecond, stream, workload,
            LatencySummary.From(commands), publishToApply, 100 * clientCpu.TotalSeconds / workload.Seconds, grainCalls, lost, audited.Checked, audited.Discrepancies,
            total.Elapsed.TotalSeconds);
        output.WriteLine($"  trivial grain calls: {callsPerSecond:N0}/s; trivial stream deliveries: {stream.DeliveriesPerSecond:N0}/s");
        output.WriteLine($"  workload: {workload.Deliveries:N0} deliveries in {workload.Seconds:0.00} s = {workload.DeliveriesPerSecond:N0} deliveries/s " +
                         $"({workload.OrdersPerSecond:N0} orders/s, commands done in {workload.CommandSeconds:0.00} s, refused {workload.Refused})");
        output.WriteLine($"  command send→confirm at saturation: p50 {report.Commands.P50:0.00} ms, p99 {report.Commands.P99:0.00} ms, " +
                         $"p99.9 {report.Commands.P999:0.00} ms, max {report.Commands.Max:0.00} ms ({report.Commands.Count:N0} commands)");
        output.WriteLine($"  publish→apply (accepted by the order grain → a subscriber's handler done): p50 {publishToApply.P50:0.00} ms, " +
                         $"p99 {publishToApply.P99:0.00} ms, p99.9 {publishToApply.P999:0.00} ms, max {publishToApply.Max:0.00} ms ({publishToApply.Count:N0} applications)");
        output.WriteLine($"  CPU: silo {workload.Silo.CpuPercent:0} %, client {report.ClientCpuPercent:0} % (of one core; {Environment.ProcessorCount} cores); " +
                         $"silo {workload.CpuMicrosPerDelivery:0} µs and {workload.AllocatedBytesPerDelivery:N0} B allocated per delivery; " +
                         $"duplicates dropped {workload.Silo.Duplicates}; {workload.Silo.DescribeGc(workload.Seconds)}");
        output.WriteLine(grainCalls.Count == 0
            ? "  grain calls per event: not counted (the silo runs with Benchmarks:CountGrainCalls=false)"
            : $"  grain calls per event: {report.GrainCallsPerEvent:0.00} (the bench's own polling included): " +
              string.Join(", ", grainCalls.Take(16).Select(c => $"{c.GrainType} {c.Calls:0.00}")) +
              (grainCalls.Count > 16 ? $", {grainCalls.Count - 16} more {grainCalls.Skip(16).Sum(c => c.Calls):0.00}" : ""));
        output.WriteLine($"  stored state: lost {lost}; audit of {audited.Checked:N0} orders: {audited.Discrepancies} discrepancies");
        var path = await BenchChecks.WriteJsonAsync(report, outDir, "bench-brokers");
        output.WriteLine($"  json: {path}; load average now {LoadAverage()}");
        output.WriteLine(report.ResultLine());
        return lost == 0 && audited.Discrepancies == 0 && workload.Refused == 0 ? 0 : 1;
    }
}
