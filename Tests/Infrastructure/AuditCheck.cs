using OrderFlow.Contracts;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// The audit (<see cref="IAuditGrain"/>, stored state only) over a test's orders, as the last word of the chaos and fault
/// tests: every order against every effect, zero discrepancies.
/// </summary>
public static class AuditCheck
{
    public static async Task<AuditReport> AssertCleanAsync(IGrainFactory grains, IReadOnlyList<string> orderIds)
    {
        var found = new List<AuditFinding>();
        var notes = new List<AuditFinding>();
        var checkedOrders = 0;
        foreach (var batch in orderIds.Chunk(IStoredStateGrain.MaxBatch))
        {
            var report = await grains.GetGrain<IAuditGrain>(0).AuditOrdersAsync(batch);
            checkedOrders += report.Checked;
            found.AddRange(report.Discrepancies);
            notes.AddRange(report.Notes);
        }

        Assert.True(found.Count == 0, $"the audit found {found.Count} discrepancies, e.g. " +
            string.Join("; ", found.Take(5).Select(f => $"{f.OrderId} {f.Area}: {f.Detail}")));
        return new AuditReport(checkedOrders, found, notes);
    }
}
