using System.Diagnostics;
using System.Text.Json;
using HdrHistogram;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>What the embedded and the durable bench share: driving orders, the loss check, the JSON output.</summary>
public static class BenchChecks
{
    /// <summary>
    /// Every plan's commands in order, <paramref name="concurrency"/> orders at a time; returns the refused commands. With
    /// <paramref name="latency"/> (a histogram safe for concurrent writers), each command's send→confirm time in µs.
    /// </summary>
    public static async Task<int> RunOrdersAsync(IClusterClient client, IReadOnlyList<OrderPlan> plans, int concurrency, HistogramBase? latency = null)
    {
        var refused = 0;
        // Transient failures (a silo failing over) are retried with the same command, as the demo does.
        var caller = new ResilientCaller();
        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (plan, _) =>
        {
            foreach (var step in plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)))
            {
                var sent = Stopwatch.GetTimestamp();
                var accepted = (await caller.ExecuteAsync(step)).Accepted;
                // Retries through a failover included (the caller's view); clamped to the histogram's hour.
                latency?.RecordValue(Math.Clamp((long)Stopwatch.GetElapsedTime(sent).TotalMicroseconds, 1, 3_600_000_000L));
                if (!accepted)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        });
        return refused;
    }

    /// <summary>Writes <c>{prefix}-{time}.json</c> and <c>{prefix}-latest.json</c> into <paramref name="outDir"/>; returns the first path.</summary>
    public static async Task<string> WriteJsonAsync<T>(T report, string outDir, string prefix)
    {
        Directory.CreateDirectory(outDir);
        var json = JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true });
        var path = Path.Combine(outDir, $"{prefix}-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(path, json);
        await File.WriteAllTextAsync(Path.Combine(outDir, $"{prefix}-latest.json"), json);
        return path;
    }

    /// <summary>
    /// Lost = an event of a finished order that a subscriber's stored inbox neither applied nor holds, or an inbox that
    /// has not stored the order's end: the demo's count, read from storage (nothing is activated, so nothing repaired).
    /// </summary>
    public static async Task<long> CountLostAsync(IClusterClient client, IReadOnlyList<OrderPlan> plans)
    {
        // The bench's counters see an event applied just before its inbox write lands: give the last writes a moment.
        var stored = client.GetGrain<IStoredStateGrain>(0);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var orders = new List<StoredOrder>();
            foreach (var batch in plans.Select(p => p.OrderId).Chunk(IStoredStateGrain.MaxBatch))
            {
                orders.AddRange(await stored.ReadOrdersAsync(batch));
            }

            var tally = Tally.From(orders);
            if (tally.Lost + tally.Behind == 0 || DateTime.UtcNow > deadline)
            {
                return tally.Lost + tally.Behind;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }
}
