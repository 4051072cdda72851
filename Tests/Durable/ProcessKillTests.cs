using System.Diagnostics;
using OrderFlow.Client;
using OrderFlow.Contracts;
using Xunit.Abstractions;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// S7 as an operator meets it: two silo processes on the Azure profile, the demo driving orders through both gateways,
/// and one silo process killed with SIGKILL mid-traffic. The demo's resilient caller retries what was in flight with
/// the same command ids; the demo then verifies from storage alone (nothing repaired by looking).
/// </summary>
public sealed class ProcessKillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_demo_completes_with_nothing_refused_lost_or_doubled_when_a_silo_process_is_killed_under_load()
    {
        var clusterId = $"kill-{Guid.NewGuid():N}"[..17];
        var settings = new Dictionary<string, string>
        {
            // A missing event is read from the order's log after 5 s instead of 30 s: the catch-up after the kill is shorter.
            ["OrderMessaging__GapRepairAfter"] = "00:00:05",
            // An order the relay found behind during the failover is looked at again within 10 s (default up to 2 min).
            ["OrderRelay__MaxRecheck"] = "00:00:10",
        };
        await using var silo1 = await SiloProcess.StartAsync(clusterId, settings);
        await using var silo2 = await SiloProcess.StartAsync(clusterId, settings);
        using var host = await ClusterConnection.ConnectAsync([silo1.Gateway, silo2.Gateway], clusterId);
        var client = host.Client();

        var runId = $"pk{Guid.NewGuid():N}"[..10];
        var demoOutput = new StringWriter();
        var clock = Stopwatch.StartNew();
        var demo = DemoCommand.RunAsync(client, new DemoCommand.Settings(160, 16, TimeSpan.FromSeconds(180), runId), demoOutput);

        // Kill once traffic is flowing: the first orders of the run are stored as paid or further.
        var stored = client.GetGrain<IStoredStateGrain>(0);
        var firstOrders = Enumerable.Range(0, 40).Select(i => OrderPlan.Create(runId, i).OrderId).ToArray();
        await Infrastructure.Eventually.Until(async () => demo.IsCompleted ? -1 : (await stored.ReadOrdersAsync(firstOrders)).Count(o => o.LastSequence >= 2),
            paid => paid is < 0 or >= 15, TimeSpan.FromSeconds(120), paid => $"the demo never got going: {paid} of the first 40 orders paid");

        Assert.False(demo.IsCompleted, "the demo finished before the kill; give it more orders");
        var killedAt = clock.Elapsed;
        silo2.KillHard();
        output.WriteLine($"silo process on port {silo2.SiloPort} killed with SIGKILL {killedAt.TotalSeconds:0.0} s into the demo");

        var exitCode = await demo;
        var text = demoOutput.ToString();
        output.WriteLine(text);
        output.WriteLine($"demo ended {(clock.Elapsed - killedAt).TotalSeconds:0.0} s after the kill");
        Assert.True(exitCode == 0, $"demo exit code {exitCode}:\n{text}\nsurviving silo log (tail):\n{Tail(silo1.Log)}");
        var result = text.Split('\n').Single(line => line.StartsWith("RESULT orders=", StringComparison.Ordinal));
        Assert.Contains(" discrepancies=0", text.Split('\n').Single(line => line.StartsWith("RESULT checked=", StringComparison.Ordinal)));
        foreach (var field in new[] { "lost=0", "behind=0", "out_of_order_applied=0", "ledger_mismatches=0", "refused=0", "failed=0", "parked=0" })
        {
            Assert.Contains($" {field}", result);
        }

        // A quiet period: with no client touching any order, the relay settles and forgets every order, so
        // `subscribers status` shows nothing undelivered anywhere.
        var operations = client.GetGrain<IOperationsGrain>(0);
        var lag = await Infrastructure.Eventually.Until(() => operations.GetLagAsync(), rows => rows.All(r => r.Orders == 0), TimeSpan.FromSeconds(90),
            rows => "undelivered: " + string.Join(", ", rows.Where(r => r.Orders > 0).Select(r => $"{r.Subscriber}={r.Orders}")));
        output.WriteLine($"relay empty {(clock.Elapsed - killedAt).TotalSeconds:0.0} s after the kill: {string.Join(", ", lag.Select(r => $"{r.Subscriber}={r.Orders}"))}");
    }

    private static string Tail(string log) => string.Join('\n', log.Split('\n').TakeLast(40));
}
