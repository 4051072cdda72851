using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>Correctness checks shared by the embedded and the durable bench.</summary>
public static class BenchChecks
{
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
