using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// The order's rules, with nothing of Orleans in them: given the order's state and a command, what happens — refused,
/// answered as a repeat, or accepted with its event — and what an accepted event does to the state.
/// <see cref="OrderGrain"/> is the shell around it (storage, event size, outbox, stream); these rules are tested
/// without a cluster (OrderDeciderTests). The event id and time are passed in, so the same input decides the same.
/// </summary>
public static partial class OrderDecider
{
    /// <summary>
    /// Decides <paramref name="command"/> against <paramref name="state"/> without changing it. The checks run in this
    /// order: the ids and fields (<see cref="OrderCommandValidator"/>), a command id seen before, then the state machine.
    /// An accepted event gets the next sequence, <see cref="OrderState.LastSequence"/> + 1.
    /// </summary>
    public static OrderDecision Decide(string orderId, OrderState state, OrderCommand command, Guid eventId, DateTimeOffset now) =>
        Decide(orderId, state, command, eventId, now, systemCommand: false);

    /// <summary>
    /// As <see cref="Decide(string, OrderState, OrderCommand, Guid, DateTimeOffset)"/>; <paramref name="systemCommand"/>
    /// for the system's own command (the payment timeout's cancellation), whose command id no caller may use.
    /// </summary>
    public static OrderDecision Decide(string orderId, OrderState state, OrderCommand command, Guid eventId, DateTimeOffset now, bool systemCommand)
    {
        if ((OrderCommandValidator.ValidateOrderId(orderId, command) ?? OrderCommandValidator.Validate(command, systemCommand)) is { } invalid)
        {
            return new OrderDecision.Rejected(OrderErrorCode.InvalidCommand, invalid);
        }

        var kind = command.GetType().Name;
        var fingerprint = CommandFingerprint.Of(command);
        if (state.Commands.TryGetValue(command.CommandId, out var earlier))
        {
            // Same command id again: answer as the first time, write and publish nothing new — but only for the same
            // command. An id reused for other content is refused, like an idempotency key sent with another body.
            // Records stored before fingerprints existed have none: for them the kind is all that can be compared.
            return earlier.Kind != kind
                ? new OrderDecision.Rejected(OrderErrorCode.CommandIdReused, $"command id {command.CommandId} was already used by {earlier.Kind}")
                : earlier.Fingerprint is not null && earlier.Fingerprint != fingerprint
                    ? new OrderDecision.Rejected(OrderErrorCode.CommandIdReused, $"command id {command.CommandId} was already used by a {kind} with different content")
                    : new OrderDecision.Repeat(earlier);
        }

        var (evt, error) = Transition(orderId, state, command, state.LastSequence + 1, eventId, now);
        return error is not null
            ? new OrderDecision.Rejected(error.Code, error.Message)
            : new OrderDecision.Accept(evt!, new ProcessedCommand(kind, evt!.Sequence, StatusAfter(evt), fingerprint));
    }

    /// <summary>An accepted command's whole effect: the event applied and added to the log (the outbox), the command id recorded.</summary>
    public static void Record(OrderState state, string commandId, OrderDecision.Accept accepted)
    {
        Apply(state, accepted.Event);
        state.Events.Add(accepted.Event);
        state.Commands[commandId] = accepted.Processed;
    }

    /// <summary>The event's effect on the order's fields: its status, and what the event brings (items, total, payment).</summary>
    public static void Apply(OrderState state, OrderEvent evt)
    {
        state.Status = StatusAfter(evt);
        switch (evt)
        {
            case OrderPlaced placed:
                state.UserId = placed.UserId;
                state.Items = placed.Items.ToList();
                state.Total = placed.Total;
                state.CouponId = placed.CouponId;
                state.ActivityId = placed.ActivityId;
                break;
            case OrderPaid paid:
                state.PaidAmount = paid.Amount;
                state.PaymentId = paid.PaymentId;
                break;
        }
    }

    private static OrderStatus StatusAfter(OrderEvent evt) => evt switch
    {
        OrderPlaced => OrderStatus.Placed,
        OrderPaid => OrderStatus.Paid,
        OrderShipped => OrderStatus.Shipped,
        OrderReceived => OrderStatus.Received,
        OrderCancelled => OrderStatus.Cancelled,
        _ => throw new ArgumentOutOfRangeException(nameof(evt), evt.Kind, "not an order event this decider knows"),
    };

    private static (OrderEvent? Event, OrderError? Error) Transition(
        string orderId, OrderState state, OrderCommand command, long sequence, Guid id, DateTimeOffset now)
    {
        var status = state.Status;
        if (status == OrderStatus.None && command is not PlaceOrder)
        {
            return (null, new OrderError(OrderErrorCode.OrderNotFound, $"order {orderId} has not been placed"));
        }

        // A later event takes the order id and the lines from the placement's own instances: Orleans' serializer writes
        // an object it has already written in the same record as a reference, so the order's record (its log) holds
        // them once, not once per event (a full order's record: 1,000 -> 940 bytes when each command comes with its own copy of the order id).
        var placement = state.Events is [OrderPlaced first, ..] ? first : null;
        orderId = placement?.OrderId ?? orderId;
        IReadOnlyList<OrderLine> Lines() => placement?.Items ?? state.Items.ToArray();

        switch (command)
        {
            case PlaceOrder place when status == OrderStatus.None:
                var total = place.Items.Sum(line => line.Quantity * line.UnitPrice);
                return (new OrderPlaced(id, orderId, sequence, now, place.UserId, place.Items.ToArray(), total, place.CouponId, place.ActivityId), null);

            case PayOrder pay when status == OrderStatus.Placed:
                return pay.Amount != state.Total
                    ? (null, new OrderError(OrderErrorCode.AmountMismatch, $"paid {pay.Amount} but the order total is {state.Total}"))
                    : (new OrderPaid(id, orderId, sequence, now, state.UserId!, pay.PaymentId, pay.Amount, Lines(), state.CouponId, state.ActivityId), null);

            case ShipOrder when status == OrderStatus.Paid:
                return (new OrderShipped(id, orderId, sequence, now, state.UserId!), null);

            case ConfirmReceipt when status == OrderStatus.Shipped:
                return (new OrderReceived(id, orderId, sequence, now, state.UserId!), null);

            case CancelOrder cancel when status is OrderStatus.Placed or OrderStatus.Paid:
                var wasPaid = status == OrderStatus.Paid;
                return (new OrderCancelled(id, orderId, sequence, now, state.UserId!, wasPaid, wasPaid ? state.PaidAmount : 0m,
                    Lines(), state.CouponId, state.ActivityId, cancel.Reason), null);

            default:
                return (null, new OrderError(OrderErrorCode.IllegalTransition, $"{command.GetType().Name} is not allowed when the order is {status}"));
        }
    }
}

/// <summary>What <see cref="OrderDecider.Decide"/> made of a command: exactly one of the three cases below.</summary>
public abstract record OrderDecision
{
    private OrderDecision()
    {
    }

    /// <summary>Refused: nothing is written or published.</summary>
    public sealed record Rejected(OrderErrorCode Code, string Message) : OrderDecision;

    /// <summary>The command id was seen before with the same command: its first outcome is the answer.</summary>
    public sealed record Repeat(ProcessedCommand Earlier) : OrderDecision;

    /// <summary>Accepted: the event to write and publish, and the record that answers the command id from now on.</summary>
    public sealed record Accept(OrderEvent Event, ProcessedCommand Processed) : OrderDecision;
}
