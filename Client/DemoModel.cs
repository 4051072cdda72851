using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>What the demo does with one order, and therefore which effects it expects downstream.</summary>
public sealed record OrderPlan(
    string OrderId, string UserId, IReadOnlyList<OrderLine> Items, string? CouponId, string? ActivityId,
    OrderPlan.Fate Ending, bool RepeatPayment)
{
    public enum Fate
    {
        Received,
        CancelledBeforePayment,
        CancelledAfterPayment,
    }

    public decimal Total => Items.Sum(line => line.Quantity * line.UnitPrice);

    /// <summary>Paid and not cancelled: the payment's effects must stay in every ledger.</summary>
    public bool KeepsPayment => Ending == Fate.Received;

    public int CommandCount => Ending switch
    {
        Fate.CancelledBeforePayment => 2,
        Fate.CancelledAfterPayment => 3,
        _ => 4,
    } + (RepeatPayment && Ending != Fate.CancelledBeforePayment ? 1 : 0);

    public static OrderPlan Create(string runId, int i)
    {
        var items = Enumerable.Range(0, 1 + i % 3)
            .Select(k => new OrderLine($"{runId}-sku{(i * 7 + k) % 20}", 1 + (i + k) % 3, 10m + (i * 13 + k * 7) % 9000 / 100m))
            .ToArray();
        var fate = (i % 10) switch
        {
            3 => Fate.CancelledBeforePayment,
            7 => Fate.CancelledAfterPayment,
            _ => Fate.Received,
        };
        return new OrderPlan($"{runId}-o{i}", $"{runId}-u{i % 100}", items,
            i % 2 == 0 ? $"{runId}-c{i}" : null, i % 3 != 2 ? $"{runId}-a{i % 4}" : null, fate, i % 20 == 5);
    }

    /// <summary>The events the order's commands produce, in sequence order (a repeated payment adds none).</summary>
    public IReadOnlyList<OrderStatus> Events => Ending switch
    {
        Fate.CancelledBeforePayment => [OrderStatus.Placed, OrderStatus.Cancelled],
        Fate.CancelledAfterPayment => [OrderStatus.Placed, OrderStatus.Paid, OrderStatus.Cancelled],
        _ => [OrderStatus.Placed, OrderStatus.Paid, OrderStatus.Shipped, OrderStatus.Received],
    };

    /// <summary>
    /// Every balance movement (points, GMV) the order's events cause, with the event and the subscriber that makes it.
    /// Stock and the coupon are reservations instead: <see cref="Holds"/>.
    /// </summary>
    public IEnumerable<(long Sequence, string Subscriber, LedgerKind Kind, string Key, decimal Delta)> Effects()
    {
        if (Ending == Fate.CancelledBeforePayment)
        {
            yield break;
        }

        // Paid is event 2; a cancellation after payment (event 3) reverses every effect of it.
        foreach (var (sequence, sign) in Ending == Fate.CancelledAfterPayment ? new[] { (2L, 1), (3L, -1) } : [(2L, 1)])
        {
            yield return (sequence, "points", LedgerKind.Points, UserId, sign * decimal.Floor(Total));
            if (ActivityId is not null)
            {
                yield return (sequence, "activity-gmv", LedgerKind.Gmv, ActivityId, sign * Total);
            }
        }
    }

    /// <summary>
    /// What the order's placement reserves — each SKU's units (its lines summed) and one use of its coupon — with the
    /// subscriber whose stored progress says how far the reservation moved since (<see cref="HoldAfter"/>).
    /// </summary>
    public IEnumerable<(LedgerKind Kind, string Key, long Quantity, string Subscriber)> Holds()
    {
        foreach (var sku in Items.GroupBy(line => line.Sku, StringComparer.Ordinal))
        {
            yield return (LedgerKind.Stock, sku.Key, sku.Sum(line => (long)line.Quantity), "inventory");
        }

        if (CouponId is not null)
        {
            yield return (LedgerKind.Coupon, CouponId, 1, "coupon");
        }
    }

    /// <summary>
    /// Where the order's reservations stand after the events that <paramref name="applied"/> says the reservation's
    /// subscriber applied: the placement reserved (before its event was written), payment commits, a cancellation gives
    /// back what the order held (released before payment, restored after).
    /// </summary>
    public ReservationState HoldAfter(Func<long, bool> applied)
    {
        var state = ReservationState.Reserved;
        for (var i = 1; i < Events.Count; i++)
        {
            if (applied(i + 1))
            {
                state = Events[i] switch
                {
                    OrderStatus.Paid => ReservationState.Committed,
                    OrderStatus.Cancelled => state == ReservationState.Committed ? ReservationState.Restored : ReservationState.Released,
                    _ => state,
                };
            }
        }

        return state;
    }

    /// <summary>The replica row (exists, status, version) after the events that <paramref name="applied"/> says were applied.</summary>
    public (bool Exists, OrderStatus Status, long Version)? ReplicaAfter(Func<long, bool> applied)
    {
        (bool, OrderStatus, long) row = (false, OrderStatus.None, 0);
        for (var i = 0; i < Events.Count; i++)
        {
            if (applied(i + 1))
            {
                row = (Events[i] != OrderStatus.Cancelled, Events[i], i + 1);
            }
        }

        return row;
    }

    /// <summary>The commands, in order. A repeated payment reuses its command id and must change nothing.</summary>
    public IEnumerable<Func<Task<CommandResult>>> Steps(IOrderGrain order)
    {
        yield return () => order.PlaceAsync(new PlaceOrder($"{OrderId}-place", UserId, Items, CouponId, ActivityId));
        if (Ending == Fate.CancelledBeforePayment)
        {
            yield return () => order.CancelAsync(new CancelOrder($"{OrderId}-cancel", "changed my mind"));
            yield break;
        }

        var pay = new PayOrder($"{OrderId}-pay", $"pay-{OrderId}", Total);
        yield return () => order.PayAsync(pay);
        if (RepeatPayment)
        {
            yield return () => order.PayAsync(pay);
        }

        if (Ending == Fate.CancelledAfterPayment)
        {
            yield return () => order.CancelAsync(new CancelOrder($"{OrderId}-cancel", "refund requested"));
            yield break;
        }

        yield return () => order.ShipAsync(new ShipOrder($"{OrderId}-ship"));
        yield return () => order.ConfirmReceiptAsync(new ConfirmReceipt($"{OrderId}-receive"));
    }
}

/// <summary>Totals over every (order, subscriber) pair, from stored state.</summary>
public sealed record Tally(long Events, long Applied, long Duplicates, long Retried, long Parked, long GapRepairs, long Pending, long Lost,
    long Behind, long Unpublished)
{
    public static Tally From(IReadOnlyList<StoredOrder> orders)
    {
        long events = 0, applied = 0, duplicates = 0, retried = 0, parked = 0, repairs = 0, pending = 0, lost = 0, behind = 0, unpublished = 0;
        foreach (var order in orders)
        {
            events += order.LastSequence;
            // Stored neither as published (a lazy mark: an order writes it with its next event only) nor as applied by
            // every subscriber.
            var appliedByAll = order.Subscribers.Count == 0 ? 0 : order.Subscribers.Min(sub => sub.AppliedSequence);
            unpublished += Math.Max(0, order.LastSequence - Math.Max(order.PublishedSequence, appliedByAll));
            foreach (var s in order.Subscribers)
            {
                var state = order.Delivery(s);
                applied += Math.Min(s.AppliedSequence, order.LastSequence) - s.SkippedSequences.Count;
                duplicates += s.DuplicatesIgnored;
                retried += s.FailedAttempts;
                parked += state == DeliveryState.Parked ? 1 : 0;
                behind += state == DeliveryState.Behind ? 1 : 0;
                repairs += s.GapRepairs;
                pending += order.Held(s);
                // Neither applied nor held in the durable inbox of a finished order: nothing stored will deliver it.
                lost += order.Missing(s);
            }
        }

        return new Tally(events, applied, duplicates, retried, parked, repairs, pending, lost, behind, unpublished);
    }
}

/// <summary>
/// Compares every effect ledger and replica row, as stored, with what the client was told. A subscriber that has not
/// applied an event (parked, or skipped by an operator) is expected not to have its effect, event by event, from its
/// stored applied sequence: a parked order explains exactly its own missing effects, never a mismatch elsewhere.
/// </summary>
public static class LedgerCheck
{
    public sealed record Result(long OutOfOrder, int Mismatches, int HeldBack);

    /// <summary>How long to wait for reservations still pending (a placement whose silo died awaits its check-back).</summary>
    public static readonly TimeSpan PendingWait = TimeSpan.FromSeconds(60);

    public static async Task<Result> RunAsync(
        IStoredStateGrain stored, IReadOnlyList<OrderPlan> plans, IReadOnlyList<StoredOrder> orders, InventoryNeeds initial, TextWriter output)
    {
        var mismatches = 0;
        void Mismatch(string what)
        {
            mismatches++;
            if (mismatches <= 10)
            {
                output.WriteLine($"  MISMATCH {what}");
            }
        }

        var byId = orders.ToDictionary(o => o.OrderId, StringComparer.Ordinal);
        var expected = new Dictionary<(LedgerKind Kind, string Key), decimal>();
        var heldBack = 0;
        foreach (var plan in plans)
        {
            var order = byId[plan.OrderId];
            foreach (var (sequence, subscriber, kind, key, delta) in plan.Effects())
            {
                expected.TryAdd((kind, key), 0m);
                var inbox = order.Subscribers.FirstOrDefault(s => s.Subscriber == subscriber);
                if (inbox is null || !AppliedAt(inbox, sequence))
                {
                    heldBack++;
                    continue;
                }

                expected[(kind, key)] += delta;
            }
        }

        // Reservations: per SKU and coupon, units reserved by placed orders and committed by paid ones, as far as the
        // subscriber that moves them has applied the order's events; what is left is available.
        var holds = initial.Keys().ToDictionary(key => key, key => (Reserved: 0L, Committed: 0L));
        foreach (var plan in plans)
        {
            var order = byId[plan.OrderId];
            if (!order.Exists)
            {
                // Never placed (its placement was refused or failed): it holds nothing.
                continue;
            }

            foreach (var (kind, key, quantity, subscriber) in plan.Holds())
            {
                var inbox = order.Subscribers.FirstOrDefault(s => s.Subscriber == subscriber);
                var state = plan.HoldAfter(seq => inbox is not null && AppliedAt(inbox, seq));
                if (state != plan.HoldAfter(_ => true))
                {
                    heldBack++;
                }

                var (reserved, committed) = holds[(kind, key)];
                holds[(kind, key)] = state switch
                {
                    ReservationState.Reserved => (reserved + quantity, committed),
                    ReservationState.Committed => (reserved, committed + quantity),
                    _ => (reserved, committed),
                };
            }
        }

        foreach (var group in holds.GroupBy(pair => pair.Key.Kind))
        {
            foreach (var batch in group.Chunk(IStoredStateGrain.MaxBatch))
            {
                var ledgers = await ReadSettledAsync(stored, group.Key, batch.Select(pair => pair.Key.Key).ToArray());
                foreach (var (pair, ledger) in batch.Zip(ledgers))
                {
                    var (reserved, committed) = pair.Value;
                    var available = initial.Initial(pair.Key.Kind, pair.Key.Key) - reserved - committed;
                    if (!ledger.Exists || (ledger.Available, ledger.Reserved, ledger.Committed, ledger.Pending) != (available, reserved, committed, 0))
                    {
                        Mismatch($"{group.Key} {ledger.Key}: exists {ledger.Exists}, available {ledger.Available}, reserved {ledger.Reserved}, " +
                                 $"committed {ledger.Committed}, pending {ledger.Pending}; expected available {available}, reserved {reserved}, committed {committed}, pending 0");
                    }
                }
            }
        }

        foreach (var group in expected.GroupBy(pair => pair.Key.Kind))
        {
            foreach (var batch in group.Chunk(IStoredStateGrain.MaxBatch))
            {
                var ledgers = await stored.ReadLedgersAsync(group.Key, batch.Select(pair => pair.Key.Key).ToArray());
                foreach (var (pair, ledger) in batch.Zip(ledgers))
                {
                    if (ledger.Balance != pair.Value)
                    {
                        Mismatch($"{group.Key} {ledger.Key}: balance {ledger.Balance}, expected {pair.Value}");
                    }
                }
            }
        }

        // Replicas: the order-sync row must stand where order-sync's stored progress says, with no change out of order.
        long outOfOrder = 0;
        foreach (var batch in plans.Chunk(IStoredStateGrain.MaxBatch))
        {
            var rows = await stored.ReadReplicasAsync(batch.Select(p => p.OrderId).ToArray());
            foreach (var (plan, row) in batch.Zip(rows))
            {
                outOfOrder += row?.Violations ?? 0;
                var sync = byId[plan.OrderId].Subscribers.FirstOrDefault(s => s.Subscriber == "order-sync");
                var want = sync is null ? null : plan.ReplicaAfter(seq => AppliedAt(sync, seq));
                var (exists, status, version) = (row?.Exists ?? false, row?.Status ?? OrderStatus.None, row?.Version ?? 0);
                if (want is not null && (exists, status, version) != want.Value)
                {
                    Mismatch($"replica of {plan.OrderId}: version {version} status {status} exists {exists}, expected {want}");
                }
            }
        }

        return new Result(outOfOrder, mismatches, heldBack);
    }

    /// <summary>
    /// Reads the ledgers until none holds a pending reservation (or <see cref="PendingWait"/> has passed): a placement
    /// whose silo died leaves its reservations pending until the check-back settles them.
    /// </summary>
    private static async Task<IReadOnlyList<StoredLedger>> ReadSettledAsync(IStoredStateGrain stored, LedgerKind kind, IReadOnlyList<string> keys)
    {
        var deadline = DateTimeOffset.UtcNow + PendingWait;
        while (true)
        {
            var ledgers = await stored.ReadLedgersAsync(kind, keys);
            if (ledgers.All(l => l.Pending == 0) || DateTimeOffset.UtcNow > deadline)
            {
                return ledgers;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }

    private static bool AppliedAt(StoredSubscriber inbox, long sequence) =>
        (inbox.Finished || sequence <= inbox.AppliedSequence) && !inbox.SkippedSequences.Contains(sequence);
}
