using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Effects;

[GenerateSerializer, Alias("effects.ReplicaState.v1")]
public sealed class ReplicaState
{
    [Id(0)] public bool Exists { get; set; }
    [Id(1)] public OrderStatus Status { get; set; }
    [Id(2)] public decimal Total { get; set; }
    [Id(3)] public long Version { get; set; }
    [Id(4)] public int Violations { get; set; }
    [Id(5)] public int Changes { get; set; }
}

/// <summary>
/// A downstream table row kept by the order-sync subscriber, with the plain semantics of a SQL table: insert
/// needs a missing row, update and delete need an existing one. Applied out of order, insert/update/delete
/// corrupt it (the seed's data-sync example); every such change is counted in <see cref="ReplicaRow.Violations"/>.
/// The version (event sequence) makes a repeated change a no-op.
/// </summary>
[GrainType("order-replica")]
public sealed class OrderReplicaGrain([PersistentState("replica", StorageNames.Ledgers)] IPersistentState<ReplicaState> row)
    : Grain, IOrderReplicaGrain
{
    private readonly GuardedState<ReplicaState> _row = new(row);

    public async Task<ReplicaRow> ApplyAsync(ReplicaChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var state = _row.State;
        if (change.Version <= state.Version)
        {
            return Snapshot();
        }

        var fits = change.Version == state.Version + 1 && change.Operation switch
        {
            ReplicaOperation.Insert => !state.Exists,
            ReplicaOperation.Skip => true,
            _ => state.Exists,
        };
        if (!fits)
        {
            state.Violations++;
        }

        switch (change.Operation)
        {
            case ReplicaOperation.Insert:
            case ReplicaOperation.Update when state.Exists:
                state.Exists = true;
                state.Status = change.Status;
                state.Total = change.Total ?? state.Total;
                break;
            case ReplicaOperation.Delete:
                state.Exists = false;
                state.Status = change.Status;
                break;
        }

        state.Version = change.Version;
        state.Changes++;
        await _row.WriteOrReloadAsync(this);

        if (state.Status.IsFinal())
        {
            // The row is final: free the activation now rather than after the idle collection age.
            DeactivateOnIdle();
        }

        return Snapshot();
    }

    public Task<ReplicaRow> GetAsync() => Task.FromResult(Snapshot());

    private ReplicaRow Snapshot() =>
        new(_row.State.Exists, _row.State.Status, _row.State.Total, _row.State.Version, _row.State.Violations, _row.State.Changes);
}
