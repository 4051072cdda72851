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

/// <summary>The effect ledgers the pipeline writes (points per user, coupon uses, activity GMV, stock per SKU).</summary>
public enum LedgerKind
{
    Points = 1,
    Coupon = 2,
    Gmv = 3,
    Stock = 4,
}

/// <summary>One ledger's stored balance and number of processed keys; <see cref="Exists"/> false when nothing was stored.</summary>
[GenerateSerializer, Immutable, Alias("verify.StoredLedger.v1")]
public sealed record StoredLedger(
    [property: Id(0)] LedgerKind Kind,
    [property: Id(1)] string Key,
    [property: Id(2)] bool Exists,
    [property: Id(3)] decimal Balance,
    [property: Id(4)] int Entries);

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
}
