using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Effects;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Orders;
using Orleans.Concurrency;
using Orleans.Storage;

namespace OrderFlow.Grains.Verification;

/// <summary>
/// The non-repairing checker (<see cref="IStoredStateGrain"/>): reads each record through the silo's keyed
/// <see cref="IGrainStorage"/> — the same provider and state name the owning grain uses — and never calls the order,
/// subscriber or effect grains, whose activation would publish outboxes and catch inboxes up.
/// </summary>
// Reentrant: it only reads storage, so callers (the relay driver among them) never queue behind each other's reads.
[StatelessWorker, Reentrant]
[GrainType("stored-state")]
public sealed class StoredStateGrain(SubscriberCatalog catalog, IServiceProvider services) : Grain, IStoredStateGrain
{
    // The owning grains' [PersistentState] names; a test pins that they match (StoredStateTests).
    internal static readonly (string GrainType, string StateName) Order = ("order", "order");
    internal static readonly (string GrainType, string StateName) Replica = ("order-replica", "replica");

    internal static (string GrainType, string StateName) LedgerOf(LedgerKind kind) => kind switch
    {
        LedgerKind.Points => ("ledger-points", "points"),
        LedgerKind.Coupon => ("ledger-coupon", "coupon"),
        LedgerKind.Gmv => ("ledger-gmv", "gmv"),
        LedgerKind.Stock => ("ledger-stock", "stock"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown ledger kind"),
    };

    public async Task<IReadOnlyList<StoredOrder>> ReadOrdersAsync(IReadOnlyList<string> orderIds)
    {
        Check(orderIds, "order id");
        return await Task.WhenAll(orderIds.Select(ReadOrderAsync));
    }

    public async Task<IReadOnlyList<StoredLedger>> ReadLedgersAsync(LedgerKind kind, IReadOnlyList<string> keys)
    {
        Check(keys, "ledger key");
        var (grainType, stateName) = LedgerOf(kind);
        return await Task.WhenAll(keys.Select(async key =>
        {
            var (exists, state) = await ReadAsync<LedgerState>(StorageNames.Ledgers, stateName, grainType, key);
            return new StoredLedger(kind, key, exists, state.Balance, state.Entries.Count);
        }));
    }

    public async Task<IReadOnlyList<ReplicaRow?>> ReadReplicasAsync(IReadOnlyList<string> orderIds)
    {
        Check(orderIds, "order id");
        return await Task.WhenAll(orderIds.Select(async id =>
        {
            var (exists, row) = await ReadAsync<ReplicaState>(StorageNames.Ledgers, Replica.StateName, Replica.GrainType, id);
            return exists ? new ReplicaRow(row.Exists, row.Status, row.Total, row.Version, row.Violations, row.Changes) : null;
        }));
    }

    private async Task<StoredOrder> ReadOrderAsync(string orderId)
    {
        var order = ReadAsync<OrderState>(StorageNames.Orders, Order.StateName, Order.GrainType, orderId);
        var inboxes = Task.WhenAll(catalog.Names.Select(async name =>
        {
            var (stateName, storageName) = catalog.InboxOf(name);
            var (exists, s) = await ReadAsync<SubscriberState>(storageName, stateName, name, orderId);
            return new StoredSubscriber(name, exists, s.AppliedSequence, s.Inbox.Keys.ToArray(), s.Parked, s.Finished,
                s.Skipped.ToArray(), s.Attempts, s.DuplicatesIgnored, s.FailedAttempts, s.GapRepairs, s.TransientFailures, s.HandlerRuns);
        }));
        var (_, o) = await order;
        return new StoredOrder(orderId, o.Status, o.LastSequence, o.PublishedSequence, await inboxes);
    }

    private async Task<(bool Exists, T State)> ReadAsync<T>(string storageName, string stateName, string grainType, string key)
        where T : class, new()
    {
        var storage = services.GetRequiredKeyedService<IGrainStorage>(storageName);
        var record = new GrainState<T>(new T());
        await storage.ReadStateAsync(stateName, GrainId.Create(grainType, key), record);
        return (record.RecordExists, record.State ?? new T());
    }

    private static void Check(IReadOnlyList<string> keys, string what)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count > IStoredStateGrain.MaxBatch)
        {
            throw new ArgumentException($"at most {IStoredStateGrain.MaxBatch} keys per call, got {keys.Count}", nameof(keys));
        }

        if (keys.FirstOrDefault(key => !Ids.IsValid(key)) is { } bad)
        {
            throw new ArgumentException(Ids.Problem(bad, what), nameof(keys));
        }
    }
}
