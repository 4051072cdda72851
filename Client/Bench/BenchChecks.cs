using System.Text.Json;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>What the embedded and the durable bench share: driving orders, the loss check, the JSON output.</summary>
public static class BenchChecks
{
    /// <summary>Every plan's commands in order, <paramref name="concurrency"/> orders at a time; returns the refused commands.</summary>
    public static async Task<int> RunOrdersAsync(IClusterClient client, IReadOnlyList<OrderPlan> plans, int concurrency)
    {
        var refused = 0;
        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (plan, _) =>
        {
            foreach (var step in plan.Steps(client.GetGrain<IOrderGrain>(plan.OrderId)))
            {
                if (!(await step()).Accepted)
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

    /// <summary>Lost = an event a subscriber neither applied nor holds: the same count as the demo's.</summary>
    public static async Task<long> CountLostAsync(IClusterClient client, IReadOnlyList<OrderPlan> plans)
    {
        var ops = client.GetGrain<IOperationsGrain>(0);
        var reports = new List<OrderReport>();
        foreach (var batch in plans.Select(p => p.OrderId).Chunk(100))
        {
            reports.AddRange(await ops.InspectManyAsync(batch));
        }

        return Tally.From(reports).Lost;
    }
}
