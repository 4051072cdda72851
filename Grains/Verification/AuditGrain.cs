using OrderFlow.Contracts;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Verification;

/// <summary>
/// The audit (<see cref="IAuditGrain"/>): reads each order, its inboxes, its ledger entries and its replica row through
/// the non-repairing checker (<see cref="IStoredStateGrain"/>, which reads storage directly) and reconciles them with
/// <see cref="AuditRules"/>. It calls no order, subscriber or ledger grain, so it activates nothing and repairs nothing.
/// </summary>
[StatelessWorker, Reentrant]
[GrainType("audit")]
public sealed class AuditGrain : Grain, IAuditGrain
{
    private IStoredStateGrain Stored => GrainFactory.GetGrain<IStoredStateGrain>(0);

    public async Task<AuditReport> AuditOrdersAsync(IReadOnlyList<string> orderIds)
    {
        ArgumentNullException.ThrowIfNull(orderIds);
        if (orderIds.Count > IStoredStateGrain.MaxBatch)
        {
            throw new ArgumentException($"at most {IStoredStateGrain.MaxBatch} orders per call, got {orderIds.Count}", nameof(orderIds));
        }

        if (orderIds.FirstOrDefault(id => !Ids.IsValid(id)) is { } bad)
        {
            throw new ArgumentException(Ids.Problem(bad, "order id"), nameof(orderIds));
        }

        var audits = await AuditBatchAsync(orderIds.Distinct(StringComparer.Ordinal).ToArray());
        return Report(audits, withSums: false);
    }

    public async Task<AuditReport> AuditSegmentAsync(int shard, int number)
    {
        var entries = await Stored.ReadCatalogSegmentAsync(shard, number);
        // A segment holds an order once (a retry after the segment closed lands in a later segment).
        var ids = entries.Select(e => e.OrderId).Distinct(StringComparer.Ordinal).ToArray();
        var audits = new List<AuditRules.OrderAudit>(ids.Length);
        foreach (var batch in ids.Chunk(IStoredStateGrain.MaxBatch))
        {
            audits.AddRange(await AuditBatchAsync(batch));
        }

        return Report(audits, withSums: true);
    }

    private async Task<IReadOnlyList<AuditRules.OrderAudit>> AuditBatchAsync(IReadOnlyList<string> ids)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        var detailsTask = Stored.ReadOrderDetailsAsync(ids);
        var progressTask = Stored.ReadOrdersAsync(ids);
        var replicasTask = Stored.ReadReplicasAsync(ids);
        var details = await detailsTask;

        var wanted = details.Select(AuditRules.EntriesOf).ToArray();
        var refs = wanted.SelectMany(r => r).Distinct().ToArray();
        // The checker answers in the order asked.
        var reads = await Task.WhenAll(refs.Chunk(IStoredStateGrain.MaxBatch).Select(chunk => Stored.ReadEntriesAsync(chunk)));
        var found = refs.Zip(reads.SelectMany(r => r)).ToDictionary(p => p.First, p => p.Second);

        var progress = await progressTask;
        var replicas = await replicasTask;
        return details.Select((detail, i) =>
            AuditRules.Check(detail, progress[i], wanted[i].Select(r => found[r]).ToArray(), replicas[i])).ToArray();
    }

    private static AuditReport Report(IReadOnlyList<AuditRules.OrderAudit> audits, bool withSums)
    {
        var notes = audits.SelectMany(a => a.Notes).ToList();
        if (withSums)
        {
            notes.AddRange(AuditRules.Total(audits.SelectMany(a => a.Sums)).Select(AuditRules.SumNote));
        }

        return new AuditReport(audits.Count(a => a.Checked), audits.SelectMany(a => a.Discrepancies).ToArray(), notes.ToArray());
    }
}
