using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Effects;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Orders;
using Orleans.Concurrency;
using Orleans.Storage;

namespace OrderFlow.Grains.Verification;

/// <summary>
/// The non-repairing checker (<see cref="IStoredStateGrain"/>): reads each record through the silo's keyed
/// <see cref="IGrainStorage"/> — the same provider and state name the owning grain uses; ledger entries through the
/// same <see cref="ILedgerEntryStore"/> the ledgers use — and never calls the order,
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

    internal static readonly (string GrainType, string StateName) CatalogHead = ("order-catalog", "catalog");
    internal static readonly (string GrainType, string StateName) CatalogSegmentRow = ("order-catalog-segment", "segment");

    internal static (string GrainType, string StateName) LedgerOf(LedgerKind kind) => kind switch
    {
        LedgerKind.Points => ("ledger-points", LedgerStateNames.Points),
        LedgerKind.Coupon => ("coupon-uses", LedgerStateNames.Coupon),
        LedgerKind.Gmv => ("ledger-gmv", LedgerStateNames.Gmv),
        LedgerKind.Stock => ("stock", LedgerStateNames.Stock),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown ledger kind"),
    };

    private static bool IsReservationLedger(LedgerKind kind) => kind is LedgerKind.Stock or LedgerKind.Coupon;

    public async Task<IReadOnlyList<StoredOrder>> ReadOrdersAsync(IReadOnlyList<string> orderIds)
    {
        Check(orderIds, "order id");
        return await Task.WhenAll(orderIds.Select(ReadOrderAsync));
    }

    public async Task<IReadOnlyList<StoredLedger>> ReadLedgersAsync(LedgerKind kind, IReadOnlyList<string> keys)
    {
        Check(keys, "ledger key");
        return await Task.WhenAll(keys.Select(async key =>
        {
            var (exists, head) = await ReadHeadAsync(kind, key);
            return head switch
            {
                ReservationHead r => new StoredLedger(kind, key, exists && r.Exists, 0, r.Entries, r.Available, r.Reserved, r.Committed, r.Pending.Count, r.Version),
                BalanceHead b => new StoredLedger(kind, key, exists, b.Balance, b.Entries, Version: b.Version),
                _ => throw new InvalidOperationException("unknown ledger head"),
            };
        }));
    }

    public async Task<IReadOnlyList<StoredEntry>> ReadEntriesAsync(IReadOnlyList<EntryRef> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count > IStoredStateGrain.MaxBatch)
        {
            throw new ArgumentException($"at most {IStoredStateGrain.MaxBatch} entries per call, got {entries.Count}", nameof(entries));
        }

        foreach (var entry in entries)
        {
            Check([entry.LedgerKey], "ledger key");
            if (string.IsNullOrEmpty(entry.EntryKey) || entry.EntryKey.Length > 2 * Ids.MaxLength)
            {
                throw new ArgumentException("an entry key is 1-256 characters", nameof(entries));
            }
        }

        // A ledger's last commit may still be only in its head's journal (its entries are written right after): the
        // newer of the journal's copy and the entry's own record is what the ledger holds.
        var heads = new Dictionary<(LedgerKind, string), Task<(bool, LedgerHead)>>();
        foreach (var (kind, key) in entries.Select(e => (e.Kind, e.LedgerKey)).Distinct())
        {
            heads[(kind, key)] = ReadHeadAsync(kind, key);
        }

        // The entries of one ledger in one read of the entry store (point reads in parallel on Azure).
        var store = services.GetRequiredService<ILedgerEntryStore>();
        var records = new Dictionary<EntryRef, LedgerEntry?>();
        foreach (var ledger in entries.GroupBy(entry => (entry.Kind, entry.LedgerKey)))
        {
            var keys = ledger.Select(entry => entry.EntryKey).Distinct(StringComparer.Ordinal).ToArray();
            var (grainType, stateName) = LedgerOf(ledger.Key.Kind);
            var read = await store.ReadAsync(BalanceLedgerGrain.EntriesOf(GrainId.Create(grainType, ledger.Key.LedgerKey), stateName), keys);
            for (var i = 0; i < keys.Length; i++)
            {
                records[new EntryRef(ledger.Key.Kind, ledger.Key.LedgerKey, keys[i])] = read[i].RecordExists ? read[i].State : null;
            }
        }

        return await Task.WhenAll(entries.Select(async entry =>
        {
            var (_, head) = await heads[(entry.Kind, entry.LedgerKey)];
            var journaled = head.Journal.FirstOrDefault(j => j.Key == entry.EntryKey);
            var stored = records[entry];
            var newest = journaled is not null && (stored is null || journaled.Version > stored.Version) ? journaled : stored;
            return newest is null
                ? new StoredEntry(entry.Kind, entry.LedgerKey, entry.EntryKey, false, 0, null)
                : new StoredEntry(entry.Kind, entry.LedgerKey, entry.EntryKey, true, newest.Amount, newest.Reservation);
        }));
    }

    public async Task<IReadOnlyList<StoredOrderDetail>> ReadOrderDetailsAsync(IReadOnlyList<string> orderIds)
    {
        Check(orderIds, "order id");
        return await Task.WhenAll(orderIds.Select(async id =>
        {
            var (exists, o) = await ReadAsync<OrderState>(StorageNames.Orders, Order.StateName, Order.GrainType, id);
            return new StoredOrderDetail(id, exists, o.Status, o.UserId, o.Items.ToArray(), o.Total, o.PaidAmount, o.PaymentId,
                o.CouponId, o.ActivityId, o.PlacementEpoch, o.LastSequence, o.Events.ToArray());
        }));
    }

    public async Task<IReadOnlyList<CatalogSegment>> ReadCatalogHeadAsync(int shard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, IOrderRelayGrain.Shards);
        var head = new GrainState<CatalogHeadState>(new CatalogHeadState());
        await Storage(StorageNames.Orders).ReadStateAsync(CatalogHead.StateName,
            GrainId.Create(GrainType.Create(CatalogHead.GrainType), GrainIdKeyExtensions.CreateIntegerKey(shard)), head);
        head.State ??= new CatalogHeadState();
        var closed = head.State.Closed;
        var open = await ReadCatalogSegmentAsync(shard, closed.Count);
        return [.. closed, new CatalogSegment(closed.Count, open.Count, open.FirstOrDefault()?.CreatedAt, open.LastOrDefault()?.CreatedAt, Open: true)];
    }

    public async Task<IReadOnlyList<CatalogEntry>> ReadCatalogSegmentAsync(int shard, int number)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, IOrderRelayGrain.Shards);
        ArgumentOutOfRangeException.ThrowIfNegative(number);
        var (_, segment) = await ReadAsync<CatalogSegmentState>(StorageNames.Orders, CatalogSegmentRow.StateName, CatalogSegmentRow.GrainType,
            IOrderCatalogSegmentGrain.KeyOf(shard, number));
        return segment.Entries.ToArray();
    }

    private async Task<(bool Exists, LedgerHead Head)> ReadHeadAsync(LedgerKind kind, string key)
    {
        var (grainType, stateName) = LedgerOf(kind);
        return IsReservationLedger(kind)
            ? await ReadAsync<ReservationHead>(StorageNames.Ledgers, stateName, grainType, key) is var (e1, r) ? (e1, r) : default
            : await ReadAsync<BalanceHead>(StorageNames.Ledgers, stateName, grainType, key) is var (e2, b) ? (e2, b) : default;
    }

    private IGrainStorage Storage(string name) => services.GetRequiredKeyedService<IGrainStorage>(name);

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
