using OrderFlow.Contracts;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

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
/// <para>
/// The row is read on first need (<see cref="DeferredState{T}"/>), and not at all for a new order: a first call that
/// inserts version 1 starts from no row, and its write is an insert. If the row existed after all (the insert repeated,
/// after the subscriber lost its lazily written progress), storage refuses the insert, the row is re-read and the
/// change applied to it again, where it is a no-op.
/// </para>
/// </summary>
[GrainType("order-replica")]
public sealed class OrderReplicaGrain : Grain, IOrderReplicaGrain
{
    private readonly DeferredState<ReplicaState> _stored;
    private readonly GuardedState<ReplicaState> _row;

    public OrderReplicaGrain()
    {
        _stored = new DeferredState<ReplicaState>("replica", GrainContext.GrainId,
            GrainContext.ActivationServices.GetRequiredKeyedService<IGrainStorage>(StorageNames.Ledgers));
        _row = new GuardedState<ReplicaState>(_stored);
    }

    public async Task<ReplicaRow> ApplyAsync(ReplicaChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        await _stored.LoadAsync(knownNew: change is { Version: 1, Operation: ReplicaOperation.Insert });
        var assumedNew = _stored.IsAssumedNew;
        try
        {
            return await ApplyLoadedAsync(change);
        }
        catch (InconsistentStateException) when (assumedNew && _row.IsTrusted)
        {
            // The insert was refused: the row exists. GuardedState re-read it; apply the change to what is stored.
            return await ApplyLoadedAsync(change);
        }
    }

    private async Task<ReplicaRow> ApplyLoadedAsync(ReplicaChange change)
    {
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

    public async Task<ReplicaRow> GetAsync()
    {
        // Not read yet, or assumed new and not written yet: only a read can say what is stored.
        await _stored.ConfirmNewAsync();

        return Snapshot();
    }

    private ReplicaRow Snapshot() =>
        new(_row.State.Exists, _row.State.Status, _row.State.Total, _row.State.Version, _row.State.Violations, _row.State.Changes);
}
