using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// How an audit walks many orders: the CLI's <c>audit</c>, the demo's last step and the HTTP API's <c>POST /audit</c>
/// all go through here, so they check the same orders in the same batches.
/// </summary>
public static class AuditRuns
{
    /// <summary>Most orders one audit of named orders takes (larger sets: the whole catalog).</summary>
    public const int MaxOrders = 1000;

    /// <summary>Audits <paramref name="orderIds"/> in batches of <see cref="IStoredStateGrain.MaxBatch"/>, handing each report to <paramref name="onReport"/>.</summary>
    public static async Task<AuditTotals> RunOrdersAsync(IAuditGrain audit, IReadOnlyList<string> orderIds, Action<AuditReport> onReport)
    {
        var total = AuditTotals.Empty;
        foreach (var batch in orderIds.Chunk(IStoredStateGrain.MaxBatch))
        {
            var report = await audit.AuditOrdersAsync(batch);
            onReport(report);
            total += report;
        }

        return total;
    }

    /// <summary>Audits every order of the catalog, segment by segment (each segment is one call); returns the totals and the segments walked.</summary>
    public static async Task<(AuditTotals Total, int Segments)> RunAllAsync(IGrainFactory grains, Action<AuditReport> onReport)
    {
        var audit = grains.GetGrain<IAuditGrain>(0);
        var stored = grains.GetGrain<IStoredStateGrain>(0);
        var total = AuditTotals.Empty;
        var segments = 0;
        for (var shard = 0; shard < IOrderRelayGrain.Shards; shard++)
        {
            foreach (var segment in await stored.ReadCatalogHeadAsync(shard))
            {
                var report = await audit.AuditSegmentAsync(shard, segment.Number);
                onReport(report);
                total += report;
                segments++;
            }
        }

        return (total, segments);
    }
}

/// <summary>What several audit calls found, added up.</summary>
public readonly record struct AuditTotals(long Checked, long Discrepancies, long Notes)
{
    public static AuditTotals Empty => default;

    public static AuditTotals operator +(AuditTotals total, AuditReport report) =>
        new(total.Checked + report.Checked, total.Discrepancies + report.Discrepancies.Count, total.Notes + report.Notes.Count);
}
