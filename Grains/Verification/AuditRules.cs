using OrderFlow.Contracts;
using OrderFlow.Grains.Subscribers;

namespace OrderFlow.Grains.Verification;

/// <summary>
/// The audit's reconciliation rules, with nothing of Orleans in them: given one order as stored (its business fields and
/// event log, every subscriber's inbox, the ledger entries it should have touched and its replica row), what is a
/// discrepancy and what is only information (docs/ARCHITECTURE.md, "Audit"). Tested without a cluster (AuditRulesTests).
/// <para>
/// The expected state of each effect follows from the order's log <i>and</i> the stored progress of the subscriber that
/// makes it: once an inbox stored an event as applied (its applied sequence reached it, or it is finished), the effect
/// must be there exactly; before that the effect may be either side of the event (the handler runs before the inbox is
/// written) — that is "in flight", a note. A parked or behind inbox (<see cref="StoredOrder.Delivery"/>) is a
/// discrepancy: it needs an operator, or it means an event was lost. SMS is information only: its dedupe keys live in
/// memory, so what was texted cannot be verified from storage.
/// </para>
/// </summary>
public static class AuditRules
{
    public const string Inventory = "inventory";
    public const string Coupon = "coupon";
    public const string Points = "points";
    public const string ActivityGmv = "activity-gmv";
    public const string OrderSync = "order-sync";
    public const string Sms = "sms";

    /// <summary>The per-key total one audit saw (<see cref="IAuditGrain.AuditSegmentAsync"/>): what its orders should hold.</summary>
    public sealed record KeySum(LedgerKind Kind, string Key, long Reserved, long Committed);

    /// <summary>What auditing one order found. <see cref="Checked"/> is false for an order that was never placed.</summary>
    public sealed record OrderAudit(bool Checked, IReadOnlyList<AuditFinding> Discrepancies, IReadOnlyList<AuditFinding> Notes, IReadOnlyList<KeySum> Sums);

    public static bool IsPlaced(StoredOrderDetail order) => order.Exists && order.Status != OrderStatus.None;

    /// <summary>Every ledger entry the order's effects may have written (and the ones that must not exist), to read before <see cref="Check"/>.</summary>
    public static IReadOnlyList<EntryRef> EntriesOf(StoredOrderDetail order)
    {
        if (!IsPlaced(order))
        {
            return [];
        }

        var refs = new List<EntryRef>();
        refs.AddRange(Quantities(order).Select(q => new EntryRef(LedgerKind.Stock, q.Sku, order.OrderId)));
        if (order.CouponId is { } coupon)
        {
            refs.Add(new EntryRef(LedgerKind.Coupon, coupon, order.OrderId));
        }

        if (order.UserId is { } user)
        {
            refs.Add(new EntryRef(LedgerKind.Points, user, AwardKey(order.OrderId)));
            refs.Add(new EntryRef(LedgerKind.Points, user, RevokeKey(order.OrderId)));
        }

        if (order.ActivityId is { } activity)
        {
            refs.Add(new EntryRef(LedgerKind.Gmv, activity, GmvPaidKey(order.OrderId)));
            refs.Add(new EntryRef(LedgerKind.Gmv, activity, GmvRefundKey(order.OrderId)));
        }

        return refs;
    }

    public static string AwardKey(string orderId) => $"{orderId}:award";
    public static string RevokeKey(string orderId) => $"{orderId}:revoke";
    public static string GmvPaidKey(string orderId) => $"{orderId}:paid";
    public static string GmvRefundKey(string orderId) => $"{orderId}:refund";

    /// <summary>The sum note of one key, as <see cref="IAuditGrain.AuditSegmentAsync"/> documents it.</summary>
    public static AuditFinding SumNote(KeySum sum) =>
        new("", "sum", $"{(sum.Kind == LedgerKind.Stock ? "stock" : "coupon")} {sum.Key} reserved={sum.Reserved} committed={sum.Committed}");

    /// <summary>Adds up key sums (several batches of one segment).</summary>
    public static IReadOnlyList<KeySum> Total(IEnumerable<KeySum> sums) =>
        sums.GroupBy(s => (s.Kind, s.Key))
            .Select(g => new KeySum(g.Key.Kind, g.Key.Key, g.Sum(s => s.Reserved), g.Sum(s => s.Committed)))
            .OrderBy(s => s.Kind).ThenBy(s => s.Key, StringComparer.Ordinal)
            .ToArray();

    /// <summary>Reconciles one order with its effects; <paramref name="entries"/> are those of <see cref="EntriesOf"/> as read.</summary>
    public static OrderAudit Check(StoredOrderDetail order, StoredOrder progress, IReadOnlyList<StoredEntry> entries, ReplicaRow? replica)
    {
        ArgumentNullException.ThrowIfNull(order);
        ArgumentNullException.ThrowIfNull(progress);
        var audit = new Audit(order, progress, entries ?? [], replica);
        if (!IsPlaced(order))
        {
            // A fenced placement has no items stored: which keys it reserved is unknown here, so it is not audited.
            audit.Note("order", order.PlacementEpoch > 0
                ? $"not placed: fenced placement (epoch {order.PlacementEpoch}), nothing to reconcile"
                : "not placed: no order stored");
            return audit.Result(false);
        }

        audit.Run();
        return audit.Result(true);
    }

    private static IReadOnlyList<(string Sku, long Quantity)> Quantities(StoredOrderDetail order) =>
        order.Items.GroupBy(line => line.Sku, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Sum(line => (long)line.Quantity)))
            .OrderBy(q => q.Key, StringComparer.Ordinal)
            .ToArray();

    private sealed class Audit(StoredOrderDetail order, StoredOrder progress, IReadOnlyList<StoredEntry> entries, ReplicaRow? replica)
    {
        private readonly List<AuditFinding> _discrepancies = [];
        private readonly List<AuditFinding> _notes = [];
        private readonly List<KeySum> _sums = [];
        private readonly OrderPaid? _paid = order.Events.OfType<OrderPaid>().FirstOrDefault();
        private readonly OrderCancelled? _cancelled = order.Events.OfType<OrderCancelled>().FirstOrDefault();

        public void Note(string area, string detail) => _notes.Add(new AuditFinding(order.OrderId, area, detail));

        private void Wrong(string area, string detail) => _discrepancies.Add(new AuditFinding(order.OrderId, area, detail));

        public OrderAudit Result(bool isChecked) => new(isChecked, _discrepancies, _notes, _sums);

        public void Run()
        {
            if (order.LastSequence != order.Events.Count || order.Events.Select((e, i) => e.Sequence != i + 1).Any(gap => gap))
            {
                Wrong("order", $"event log has {order.Events.Count} events numbered [{string.Join(",", order.Events.Select(e => e.Sequence))}], last sequence {order.LastSequence}");
            }

            CheckProgress();
            CheckReservations();
            CheckBalances();
            CheckReplica();
        }

        private StoredSubscriber? Inbox(string name) =>
            progress.Subscribers.FirstOrDefault(s => string.Equals(s.Subscriber, name, StringComparison.OrdinalIgnoreCase));

        private static bool Applied(StoredSubscriber? inbox, long sequence) =>
            inbox is not null && (inbox.Finished || inbox.AppliedSequence >= sequence);

        private static bool SkippedAny(StoredSubscriber? inbox, params long[] sequences) =>
            inbox is not null && sequences.Any(seq => seq > 0 && inbox.SkippedSequences.Contains(seq));

        private static string Stage(StoredSubscriber? inbox) =>
            inbox is null ? "no inbox" : inbox.Finished ? "finished" : $"applied to {inbox.AppliedSequence}";

        private void CheckProgress()
        {
            foreach (var inbox in progress.Subscribers.OrderBy(s => s.Subscriber, StringComparer.Ordinal))
            {
                var delivery = progress.Delivery(inbox);
                var isSms = string.Equals(inbox.Subscriber, Sms, StringComparison.OrdinalIgnoreCase);
                if (inbox.SkippedSequences.Count > 0)
                {
                    Note("progress", $"{inbox.Subscriber}: an operator skipped events [{string.Join(",", inbox.SkippedSequences)}]; their effects are not checked");
                }

                var problem = delivery switch
                {
                    DeliveryState.Parked => $"{inbox.Subscriber}: parked at event {inbox.AppliedSequence + 1} of {progress.LastSequence} ({progress.Held(inbox)} held, {progress.Missing(inbox)} missing): needs an operator",
                    DeliveryState.Behind => $"{inbox.Subscriber}: behind: the order is {progress.Status} at {progress.LastSequence}, its inbox applied {inbox.AppliedSequence} ({progress.Held(inbox)} held, {progress.Missing(inbox)} missing)",
                    _ => null,
                };
                if (problem is null)
                {
                    continue;
                }

                if (isSms)
                {
                    // The texts' dedupe keys live in memory: SMS is weak-checked, so it is information only.
                    Note("sms", problem);
                }
                else
                {
                    Wrong("progress", problem);
                }
            }
        }

        // ---- stock and coupon: one reservation per key, entry key = order id ----

        private void CheckReservations()
        {
            var inventory = Inbox(Inventory);
            foreach (var (sku, quantity) in Quantities(order))
            {
                CheckReservation("stock", LedgerKind.Stock, sku, quantity, Inventory, inventory);
            }

            if (order.CouponId is { } coupon)
            {
                CheckReservation("coupon", LedgerKind.Coupon, coupon, 1, Coupon, Inbox(Coupon));
            }
        }

        private void CheckReservation(string area, LedgerKind kind, string key, long quantity, string subscriber, StoredSubscriber? inbox)
        {
            // The path of the reservation along the order's log: reserved, then committed when paid, then given back.
            var path = new List<(ReservationState State, long Sequence, string Event)> { (ReservationState.Reserved, 0, "OrderPlaced") };
            if (_paid is not null)
            {
                path.Add((ReservationState.Committed, _paid.Sequence, nameof(OrderPaid)));
            }

            if (_cancelled is not null)
            {
                path.Add((_cancelled.WasPaid ? ReservationState.Restored : ReservationState.Released, _cancelled.Sequence, nameof(OrderCancelled)));
            }

            var final = path[^1].State;
            _sums.Add(new KeySum(kind, key, final == ReservationState.Reserved ? quantity : 0, final == ReservationState.Committed ? quantity : 0));

            var entry = Find(kind, key, order.OrderId);
            if (entry?.Reservation is not { } reservation)
            {
                Wrong(area, $"{key}: no reservation stored for the order (expected {quantity} {path[^1].State})");
                return;
            }

            if (reservation.Quantity != quantity)
            {
                Wrong(area, $"{key}: reservation of {reservation.Quantity}, the order holds {quantity}");
            }

            if (reservation.Epoch != order.PlacementEpoch)
            {
                Wrong(area, $"{key}: reservation made under placement epoch {reservation.Epoch}, the order was placed under {order.PlacementEpoch}");
            }

            if (SkippedAny(inbox, path.Select(p => p.Sequence).ToArray()))
            {
                return;
            }

            var applied = path.FindLastIndex(p => p.Sequence == 0 || Applied(inbox, p.Sequence));
            var actual = path.FindIndex(p => p.State == reservation.State);
            if (actual == applied)
            {
                if (applied < path.Count - 1)
                {
                    Note("in-flight", $"{area} {key}: {reservation.State}; {subscriber} has not stored {path[applied + 1].Event} (event {path[applied + 1].Sequence}) as applied yet ({Stage(inbox)})");
                }

                return;
            }

            if (actual > applied)
            {
                if (actual == path.Count - 1)
                {
                    // The reservation is where the order's whole log puts it: the handler ran, and the inbox's progress is
                    // written lazily (keyed effects, docs/ARCHITECTURE.md step 6). Nothing is in flight.
                    return;
                }

                // The ledger is ahead of the inbox but not at the end: the handler ran, the next one has not yet.
                Note("in-flight", $"{area} {key}: already {reservation.State}; {subscriber} has not stored {path[actual].Event} (event {path[actual].Sequence}) as applied yet ({Stage(inbox)})");
                return;
            }

            Wrong(area, $"{key}: reservation {reservation.State}, expected {path[applied].State} ({subscriber} {Stage(inbox)}, order {order.Status})");
        }

        // ---- points and GMV: balances moved by processed keys ----

        private void CheckBalances()
        {
            var points = Inbox(Points);
            if (order.UserId is { } user)
            {
                CheckBalance("points", LedgerKind.Points, user, AwardKey(order.OrderId),
                    _paid is null ? null : (PointsSubscriber.PointsFor(_paid.Amount), _paid.Sequence, nameof(OrderPaid)), Points, points);
                CheckBalance("points", LedgerKind.Points, user, RevokeKey(order.OrderId),
                    _cancelled is { WasPaid: true } && Given(LedgerKind.Points, user, AwardKey(order.OrderId), points)
                        ? (-PointsSubscriber.PointsFor(_cancelled.RefundAmount), _cancelled.Sequence, nameof(OrderCancelled)) : null,
                    Points, points);
            }

            var gmv = Inbox(ActivityGmv);
            if (order.ActivityId is { } activity)
            {
                CheckBalance("gmv", LedgerKind.Gmv, activity, GmvPaidKey(order.OrderId),
                    _paid is { ActivityId: not null } ? (_paid.Amount, _paid.Sequence, nameof(OrderPaid)) : null, ActivityGmv, gmv);
                CheckBalance("gmv", LedgerKind.Gmv, activity, GmvRefundKey(order.OrderId),
                    _cancelled is { WasPaid: true, ActivityId: not null } && Given(LedgerKind.Gmv, activity, GmvPaidKey(order.OrderId), gmv)
                        ? (-_cancelled.RefundAmount, _cancelled.Sequence, nameof(OrderCancelled)) : null,
                    ActivityGmv, gmv);
            }
        }

        // A cancellation takes back only what the payment gave (PointsSubscriber, ActivityGmvSubscriber): nothing is owed
        // back when an operator skipped the payment at that subscriber and its processed key was never written.
        private bool Given(LedgerKind kind, string ledgerKey, string paymentKey, StoredSubscriber? inbox) =>
            Find(kind, ledgerKey, paymentKey) is { Exists: true } || _paid is null || !SkippedAny(inbox, _paid.Sequence);

        private void CheckBalance(string area, LedgerKind kind, string ledgerKey, string entryKey,
            (decimal Amount, long Sequence, string Event)? expected, string subscriber, StoredSubscriber? inbox)
        {
            var entry = Find(kind, ledgerKey, entryKey);
            var stored = entry is { Exists: true } ? entry.Amount : (decimal?)null;
            if (expected is not { } want)
            {
                if (stored is { } amount)
                {
                    Wrong(area, $"{ledgerKey}: {entryKey} applied {amount}, but the order's log has no event for it (or it takes back a payment that gave nothing)");
                }

                return;
            }

            if (SkippedAny(inbox, want.Sequence))
            {
                return;
            }

            if (stored is { } got)
            {
                if (got != want.Amount)
                {
                    Wrong(area, $"{ledgerKey}: {entryKey} applied {got}, expected {want.Amount}");
                }

                return;
            }

            if (Applied(inbox, want.Sequence))
            {
                Wrong(area, $"{ledgerKey}: {entryKey} missing (expected {want.Amount}); {subscriber} stored {want.Event} (event {want.Sequence}) as applied");
            }
            else
            {
                Note("in-flight", $"{area} {ledgerKey}: {entryKey} not applied yet; {subscriber} has not stored {want.Event} (event {want.Sequence}) as applied ({Stage(inbox)})");
            }
        }

        // ---- the replica row kept by order-sync ----

        private void CheckReplica()
        {
            var inbox = Inbox(OrderSync);
            if (replica is { Violations: > 0 })
            {
                Wrong("replica", $"{replica.Violations} out-of-order changes recorded on the row");
            }

            if (inbox is { SkippedSequences.Count: > 0 })
            {
                return;
            }

            // A row at the order's last version is checked whatever the inbox stored: order-sync writes its progress
            // lazily (keyed effects), so a caught-up row with the inbox behind is the usual state of an open order.
            if (!Applied(inbox, order.LastSequence) && replica?.Version != order.LastSequence)
            {
                if (replica is not null && replica.Version > order.LastSequence)
                {
                    Wrong("replica", $"row at version {replica.Version}, beyond the order's last event {order.LastSequence}");
                }
                else
                {
                    Note("in-flight", $"replica at version {replica?.Version ?? 0} of {order.LastSequence}; {OrderSync} {Stage(inbox)}");
                }

                return;
            }

            if (replica is null)
            {
                Wrong("replica", $"no row, but {OrderSync} stored event {order.LastSequence} as applied");
                return;
            }

            var expectExists = order.Status != OrderStatus.Cancelled;
            var differences = new List<string>();
            if (replica.Exists != expectExists)
            {
                differences.Add($"exists={replica.Exists}, expected {expectExists}");
            }

            if (replica.Status != order.Status)
            {
                differences.Add($"status {replica.Status}, expected {order.Status}");
            }

            if (replica.Version != order.LastSequence)
            {
                differences.Add($"version {replica.Version}, expected {order.LastSequence}");
            }

            if (expectExists && replica.Total != order.Total)
            {
                differences.Add($"total {replica.Total}, expected {order.Total}");
            }

            if (differences.Count > 0)
            {
                Wrong("replica", string.Join("; ", differences));
            }
        }

        private StoredEntry? Find(LedgerKind kind, string ledgerKey, string entryKey) =>
            entries.FirstOrDefault(e => e.Kind == kind && e.LedgerKey == ledgerKey && e.EntryKey == entryKey);
    }
}
