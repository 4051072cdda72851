using OrderFlow.Contracts;

namespace OrderFlow.Grains.Ledgers;

/// <summary>
/// The reservation rules of one SKU or coupon, with nothing of Orleans in them: given the key's head figures and one
/// order's reservation as stored, what a call does. Each returns the answer and the order's reservation after it (null:
/// unchanged); the head's figures move only together with a change of that reservation's state, so every call is
/// idempotent. Checks come first, changes after, so a refused call changes nothing. Tested without a cluster
/// (ReservationRulesTests).
/// </summary>
public static class ReservationRules
{
    /// <summary>
    /// The order's ledger entry holding its reservation. Its key and the reservation's order id are one instance (a
    /// reservation changed by <c>with</c> keeps the stored record's id, not the caller's), so the stored entry holds the
    /// id once: Orleans' serializer writes an instance it already wrote in the record as a reference.
    /// </summary>
    public static LedgerEntry EntryOf(string orderId, Reservation reservation) =>
        new() { Key = string.Equals(reservation.OrderId, orderId, StringComparison.Ordinal) ? reservation.OrderId : orderId, Reservation = reservation };

    public static (ReservationResult Result, Reservation? Next) Reserve(
        ReservationHead head, Reservation? current, string orderId, long epoch, long quantity, DateTimeOffset now, int maxPending)
    {
        if (!head.Exists)
        {
            return (new ReservationResult(ReservationOutcome.Unknown, 0, "no stock record"), null);
        }

        var givenBack = 0L;
        if (current is not null)
        {
            if (current.Epoch > epoch || current.Epoch == epoch && current.State == ReservationState.Released)
            {
                return (Refused(head, ReservationOutcome.Fenced, $"placement epoch {epoch} of order {orderId} was fenced"), null);
            }

            if (current.State is ReservationState.Committed or ReservationState.Restored)
            {
                return (Refused(head, ReservationOutcome.Conflict, $"order {orderId} already has a {current.State} reservation here"), null);
            }

            if (current.State == ReservationState.Reserved)
            {
                if (current.Epoch == epoch && current.Quantity == quantity)
                {
                    return (new ReservationResult(ReservationOutcome.AlreadyDone, head.Available), null);
                }

                // An earlier try of this placement (a crashed one, or a fenced epoch whose release has not arrived yet)
                // holds a reservation: it is replaced, its units count as available for this one.
                givenBack = current.Quantity;
            }
        }

        if (givenBack == 0 && !head.Pending.ContainsKey(orderId) && head.Pending.Count >= maxPending)
        {
            return (Refused(head, ReservationOutcome.Busy, $"{head.Pending.Count} placements in flight here; retry later"), null);
        }

        if (head.Available + givenBack < quantity)
        {
            return (Refused(head, ReservationOutcome.Insufficient, $"{quantity} asked, {head.Available + givenBack} available"), null);
        }

        head.Available += givenBack - quantity;
        head.Reserved += quantity - givenBack;
        head.Pending[orderId] = new PendingReservation(epoch, quantity, now);
        return (new ReservationResult(ReservationOutcome.Done, head.Available), new Reservation(orderId, epoch, quantity, ReservationState.Reserved, now));
    }

    /// <summary>The order wrote its placement: the reservation needs no check-back. True when the head changed.</summary>
    public static bool Confirm(ReservationHead head, string orderId, long epoch) =>
        head.Pending.TryGetValue(orderId, out var pending) && pending.Epoch == epoch && head.Pending.Remove(orderId);

    /// <summary>The order's check-back verdict: keep (the order holds it) or release (the order fenced that placement).</summary>
    public static (ReservationResult Result, Reservation? Next) Settle(
        ReservationHead head, Reservation? current, string orderId, long epoch, bool keep, DateTimeOffset now)
    {
        Confirm(head, orderId, epoch);
        if (keep || current is null || current.Epoch != epoch || current.State != ReservationState.Reserved)
        {
            return current is { State: ReservationState.Committed or ReservationState.Restored } && current.Epoch == epoch && !keep
                ? (Refused(head, ReservationOutcome.Conflict, $"order {orderId}'s reservation is {current.State}, not releasable by a check-back"), null)
                : (new ReservationResult(ReservationOutcome.AlreadyDone, head.Available), null);
        }

        head.Available += current.Quantity;
        head.Reserved -= current.Quantity;
        return (new ReservationResult(ReservationOutcome.Done, head.Available), current with { State = ReservationState.Released, UpdatedAt = now });
    }

    /// <summary>The order was paid: its reservation becomes a sale (stock) or a redemption (coupon).</summary>
    public static (ReservationResult Result, Reservation? Next) Commit(ReservationHead head, Reservation? current, string orderId, DateTimeOffset now)
    {
        switch (current?.State)
        {
            // Restored: committed, then given back by a cancellation after payment. A commit seen again then (the paid
            // event handled once more, after a crash lost the subscriber's lazily written progress) is already done.
            case ReservationState.Committed or ReservationState.Restored:
                return (new ReservationResult(ReservationOutcome.AlreadyDone, head.Available), null);
            case ReservationState.Reserved:
                head.Pending.Remove(orderId);
                head.Reserved -= current.Quantity;
                head.Committed += current.Quantity;
                return (new ReservationResult(ReservationOutcome.Done, head.Available), current with { State = ReservationState.Committed, UpdatedAt = now });
            default:
                return (Refused(head, ReservationOutcome.Conflict,
                    current is null ? $"order {orderId} holds no reservation here" : $"order {orderId}'s reservation is {current.State}"), null);
        }
    }

    /// <summary>The order was cancelled: whatever it holds goes back (released before payment, restored after).</summary>
    public static (ReservationResult Result, Reservation? Next) Release(ReservationHead head, Reservation? current, string orderId, DateTimeOffset now)
    {
        switch (current?.State)
        {
            case ReservationState.Reserved:
                head.Pending.Remove(orderId);
                head.Reserved -= current.Quantity;
                head.Available += current.Quantity;
                return (new ReservationResult(ReservationOutcome.Done, head.Available), current with { State = ReservationState.Released, UpdatedAt = now });
            case ReservationState.Committed:
                head.Committed -= current.Quantity;
                head.Available += current.Quantity;
                return (new ReservationResult(ReservationOutcome.Done, head.Available), current with { State = ReservationState.Restored, UpdatedAt = now });
            default:
                // Nothing held (released already, restored already, or never reserved): nothing to give back.
                return (new ReservationResult(ReservationOutcome.AlreadyDone, head.Available), null);
        }
    }

    private static ReservationResult Refused(ReservationHead head, ReservationOutcome outcome, string message) =>
        new(outcome, head.Available, message);
}
