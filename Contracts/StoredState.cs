namespace OrderFlow.Contracts;

/// <summary>
/// Where one subscriber stands on one order, as its stored inbox says — read from storage, never from an activation.
/// <see cref="HandlerRuns"/> counts the handler runs (failed ones included) that storage knows of: with no failed
/// attempt, more runs than applied events means an event was handled twice.
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.StoredSubscriber.v1")]
public sealed record StoredSubscriber(
    [property: Id(0)] string Subscriber,
    [property: Id(1)] bool Exists,
    [property: Id(2)] long AppliedSequence,
    [property: Id(3)] IReadOnlyList<long> HeldSequences,
    [property: Id(4)] bool Parked,
    [property: Id(5)] bool Finished,
    [property: Id(6)] IReadOnlyList<long> SkippedSequences,
    [property: Id(7)] int Attempts,
    [property: Id(8)] long DuplicatesIgnored,
    [property: Id(9)] long FailedAttempts,
    [property: Id(10)] long GapRepairs,
    [property: Id(11)] long TransientFailures,
    [property: Id(12)] long HandlerRuns = 0);

/// <summary>How far one subscriber's stored inbox has taken one order (see <see cref="StoredOrder.Delivery"/>).</summary>
public enum DeliveryState
{
    /// <summary>The order's final event is applied and stored (<see cref="StoredSubscriber.Finished"/>).</summary>
    Finished = 1,

    /// <summary>
    /// The order is not finished and storage cannot tell more: progress over events with nothing to do is written
    /// lazily, so events after the stored applied sequence may be applied without a record, or not yet delivered.
    /// </summary>
    Open = 2,

    /// <summary>Parked at its head event; the held events wait behind it for an operator.</summary>
    Parked = 3,

    /// <summary>The order's final event is stored at the order, but this inbox has not stored it as applied.</summary>
    Behind = 4,
}

/// <summary>
/// One order and every subscriber's inbox for it, exactly as storage holds them. Reading it activates no order or
/// subscriber grain, so it repairs nothing: an outbox that was never published or an inbox that never reached the
/// order's last event stays visible here until the product's own durable mechanisms fix it.
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.StoredOrder.v1")]
public sealed record StoredOrder(
    [property: Id(0)] string OrderId,
    [property: Id(1)] OrderStatus Status,
    [property: Id(2)] long LastSequence,
    [property: Id(3)] long PublishedSequence,
    [property: Id(4)] IReadOnlyList<StoredSubscriber> Subscribers)
{
    public bool Exists => Status != OrderStatus.None;

    public bool IsFinal => Status.IsFinal();

    /// <summary>
    /// The stored definition of "delivered" (docs/ARCHITECTURE.md, "Caught up, from storage"): a subscriber has taken
    /// a finished order to its end when its stored inbox says <c>Finished</c> — the final event is always written,
    /// whatever the subscriber did with it, and only after every earlier event was applied or skipped. Before the
    /// final event, stored progress may lag by events with nothing to do (written lazily), so it is <c>Open</c>.
    /// </summary>
    public DeliveryState Delivery(StoredSubscriber s) =>
        s.Finished ? DeliveryState.Finished
        : s.Parked ? DeliveryState.Parked
        : IsFinal ? DeliveryState.Behind
        : DeliveryState.Open;

    /// <summary>Events at or below the order's last sequence that this inbox holds but has not applied.</summary>
    public long Held(StoredSubscriber s) => s.HeldSequences.Count(seq => seq > s.AppliedSequence && seq <= LastSequence);

    /// <summary>
    /// Events of a finished order that this inbox neither applied nor holds: lost unless something still delivers
    /// them. Zero for an open order (storage cannot tell) and for a finished inbox.
    /// </summary>
    public long Missing(StoredSubscriber s) => Delivery(s) is DeliveryState.Finished or DeliveryState.Open
        ? 0
        : Math.Max(0, LastSequence - s.AppliedSequence - Held(s));
}

/// <summary>
/// The effect ledgers. <see cref="Points"/> and <see cref="Gmv"/> are balances moved by processed keys
/// (<c>{order}:award</c>, <c>{order}:paid</c> …); <see cref="Stock"/> and <see cref="Coupon"/> are reservation ledgers
/// (one <see cref="Reservation"/> per order, keyed by the order id).
/// </summary>
public enum LedgerKind
{
    Points = 1,
    Coupon = 2,
    Gmv = 3,
    Stock = 4,
}

/// <summary>
/// One ledger's stored head row: its figures and how many entries (processed keys or reservations) it ever recorded.
/// For <see cref="LedgerKind.Points"/>/<see cref="LedgerKind.Gmv"/> only <see cref="Balance"/> applies; for
/// <see cref="LedgerKind.Stock"/>/<see cref="LedgerKind.Coupon"/> <see cref="Available"/>, <see cref="Reserved"/>,
/// <see cref="Committed"/> (sold / redeemed) and <see cref="Pending"/> (reservations not yet confirmed by their order).
/// <see cref="Exists"/> is false when nothing was stored (for stock: no stock record; for a coupon: never issued).
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.StoredLedger.v2")]
public sealed record StoredLedger(
    [property: Id(0)] LedgerKind Kind,
    [property: Id(1)] string Key,
    [property: Id(2)] bool Exists,
    [property: Id(3)] decimal Balance,
    [property: Id(4)] long Entries,
    [property: Id(5)] long Available = 0,
    [property: Id(6)] long Reserved = 0,
    [property: Id(7)] long Committed = 0,
    [property: Id(8)] int Pending = 0,
    [property: Id(9)] long Version = 0);

/// <summary>
/// One entry of a ledger as stored: for points/GMV a processed key and the amount it applied; for stock/coupon the
/// order's <see cref="Reservation"/> (entry key = order id). <see cref="Exists"/> false when the key was never recorded.
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.StoredEntry.v1")]
public sealed record StoredEntry(
    [property: Id(0)] LedgerKind Kind,
    [property: Id(1)] string LedgerKey,
    [property: Id(2)] string EntryKey,
    [property: Id(3)] bool Exists,
    [property: Id(4)] decimal Amount,
    [property: Id(5)] Reservation? Reservation);

/// <summary>Which entry of which ledger to read (<see cref="IStoredStateGrain.ReadEntriesAsync"/>).</summary>
[GenerateSerializer, Immutable, Alias("verify.EntryRef.v1")]
public sealed record EntryRef(
    [property: Id(0)] LedgerKind Kind,
    [property: Id(1)] string LedgerKey,
    [property: Id(2)] string EntryKey);

/// <summary>
/// An order's business fields as stored (what the audit reconciles the effects with). <see cref="PlacementEpoch"/>
/// counts the order's fenced placements (<see cref="IOrderPlacementGrain"/>): a record with status <c>None</c> and an
/// epoch above zero is a placement that was fenced and never written.
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.StoredOrderDetail.v1")]
public sealed record StoredOrderDetail(
    [property: Id(0)] string OrderId,
    [property: Id(1)] bool Exists,
    [property: Id(2)] OrderStatus Status,
    [property: Id(3)] string? UserId,
    [property: Id(4)] IReadOnlyList<OrderLine> Items,
    [property: Id(5)] decimal Total,
    [property: Id(6)] decimal PaidAmount,
    [property: Id(7)] string? PaymentId,
    [property: Id(8)] string? CouponId,
    [property: Id(9)] string? ActivityId,
    [property: Id(10)] long PlacementEpoch,
    [property: Id(11)] long LastSequence,
    [property: Id(12)] IReadOnlyList<OrderEvent> Events);

/// <summary>
/// The non-repairing checker: reads orders, inboxes, ledgers and replica rows straight from the keyed grain storage
/// inside a silo. Use it to verify ("nothing lost, nothing doubled"); use <see cref="IOperationsGrain.InspectAsync"/>
/// to operate (it activates the grains, and an activation publishes its outbox and catches its inbox up).
/// Each call reads at most <see cref="MaxBatch"/> keys.
/// </summary>
[Alias("verify.IStoredStateGrain")]
[ClientCallable]
public interface IStoredStateGrain : IGrainWithIntegerKey
{
    public const int MaxBatch = 100;

    [Alias("ReadOrders")] Task<IReadOnlyList<StoredOrder>> ReadOrdersAsync(IReadOnlyList<string> orderIds);
    [Alias("ReadLedgers")] Task<IReadOnlyList<StoredLedger>> ReadLedgersAsync(LedgerKind kind, IReadOnlyList<string> keys);
    [Alias("ReadReplicas")] Task<IReadOnlyList<ReplicaRow?>> ReadReplicasAsync(IReadOnlyList<string> orderIds);

    /// <summary>Ledger entries (processed keys, reservations) as stored; at most <see cref="MaxBatch"/> per call.</summary>
    [Alias("ReadEntries")] Task<IReadOnlyList<StoredEntry>> ReadEntriesAsync(IReadOnlyList<EntryRef> entries);

    /// <summary>Orders' business fields and event logs as stored; at most <see cref="MaxBatch"/> per call.</summary>
    [Alias("ReadOrderDetails")] Task<IReadOnlyList<StoredOrderDetail>> ReadOrderDetailsAsync(IReadOnlyList<string> orderIds);

    /// <summary>One catalog shard's segments as stored (its head row); the open segment's figures are as last written.</summary>
    [Alias("ReadCatalogHead")] Task<IReadOnlyList<CatalogSegment>> ReadCatalogHeadAsync(int shard);

    /// <summary>The entries of one catalog segment as stored (at most <see cref="IOrderCatalogGrain.MaxSegmentSize"/>).</summary>
    [Alias("ReadCatalogSegment")] Task<IReadOnlyList<CatalogEntry>> ReadCatalogSegmentAsync(int shard, int number);
}

/// <summary>One thing the audit found that does not add up: which order (or ledger key), what area, and what differs.</summary>
[GenerateSerializer, Immutable, Alias("verify.AuditFinding.v1")]
public sealed record AuditFinding(
    [property: Id(0)] string OrderId,
    [property: Id(1)] string Area,
    [property: Id(2)] string Detail);

/// <summary>
/// What one audit call found: how many orders it checked, every discrepancy, and information that is not a
/// discrepancy (SMS, whose dedupe keys live in memory; orders still in flight).
/// </summary>
[GenerateSerializer, Immutable, Alias("verify.AuditReport.v1")]
public sealed record AuditReport(
    [property: Id(0)] int Checked,
    [property: Id(1)] IReadOnlyList<AuditFinding> Discrepancies,
    [property: Id(2)] IReadOnlyList<AuditFinding> Notes);

/// <summary>
/// The audit (<c>audit [--order ID …] [--all]</c>): reconciles each order's stored state with every effect — stock
/// reservations (reserved / sold / released), the coupon, points, GMV, the replica row and the subscribers' progress —
/// reading stored state only (<see cref="IStoredStateGrain"/>); it activates no order, subscriber or ledger grain and
/// repairs nothing. <see cref="AuditReport.Checked"/> counts placed orders; an id with no placed order (never
/// written, or only a fenced placement) is a note, area <c>order</c>. Discrepancy areas: <c>order</c>,
/// <c>progress</c> (a parked or behind inbox), <c>stock</c>, <c>coupon</c>, <c>points</c>, <c>gmv</c>,
/// <c>replica</c>. Note areas: <c>in-flight</c> (an effect whose subscriber has not stored the event as applied yet),
/// <c>progress</c> (events an operator skipped), <c>sms</c> (SMS is weak-checked: never a discrepancy), <c>order</c>
/// and <c>sum</c> (<see cref="AuditSegmentAsync"/>). The rules: docs/ARCHITECTURE.md, "Audit".
/// </summary>
[Alias("verify.IAuditGrain")]
[ClientCallable]
public interface IAuditGrain : IGrainWithIntegerKey
{
    /// <summary>Audits these orders (at most <see cref="IStoredStateGrain.MaxBatch"/>).</summary>
    [Alias("AuditOrders")] Task<AuditReport> AuditOrdersAsync(IReadOnlyList<string> orderIds);

    /// <summary>
    /// Audits every order of catalog segment <paramref name="number"/> of shard <paramref name="shard"/> (read from
    /// storage, in batches of at most <see cref="IStoredStateGrain.MaxBatch"/>), and adds the key-level sums of what it
    /// saw to the report's notes for the caller to total across segments. One note per SKU and coupon the segment's
    /// orders name, with <see cref="AuditFinding.OrderId"/> empty, <see cref="AuditFinding.Area"/> <c>sum</c> and
    /// <see cref="AuditFinding.Detail"/> exactly <c>stock {SKU} reserved={R} committed={C}</c> or
    /// <c>coupon {coupon id} reserved={R} committed={C}</c>: the quantities those orders should hold according to
    /// their stored log (placed → reserved, paid/shipped/received → committed, cancelled → neither). Summed over every
    /// segment of every shard they must equal the key's head figures (<see cref="StoredLedger.Reserved"/>,
    /// <see cref="StoredLedger.Committed"/>) — a comparison that only holds when the audit covered every order of the
    /// key and nothing is in flight (no <c>in-flight</c> notes; a placement in flight or a fenced one still pending its
    /// check-back holds a reservation no placed order accounts for). An order listed in two segments (a catalog retry)
    /// is counted in both.
    /// </summary>
    [Alias("AuditSegment")] Task<AuditReport> AuditSegmentAsync(int shard, int number);
}
