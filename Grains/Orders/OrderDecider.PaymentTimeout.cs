using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// The payment deadline: an order placed at <c>T</c> and still unpaid at <c>T + timeout</c> is cancelled by the
/// system, and a payment decided at or after that moment loses to the timeout even if the timeout's own tick has not
/// come yet. Pure, like the rest of the decider: the time and the timeout are passed in (OrderDeciderTests).
/// </summary>
public static partial class OrderDecider
{
    /// <summary>
    /// The command id of the system's cancellation: fixed, so a second tick (or a tick after a write whose answer was
    /// lost) is answered as a repeat and the order is cancelled once.
    /// </summary>
    public const string PaymentTimeoutCommandId = "payment-timeout";

    /// <summary>The cancel reason subscribers see on the system's cancellation.</summary>
    public const string PaymentTimeoutReason = "payment timeout";

    /// <summary>
    /// The system's cancellation's id on an order whose <see cref="PaymentTimeoutCommandId"/> a caller took before that id
    /// was reserved (a placement or payment stored with it): the usual id would be refused as reused, and the order would
    /// never time out. Reserved as well.
    /// </summary>
    public const string PaymentTimeoutFallbackCommandId = "payment-timeout.system";

    /// <summary>The command the system sends an unpaid order when its deadline has passed.</summary>
    public static CancelOrder PaymentTimeoutCancel { get; } = new(PaymentTimeoutCommandId, PaymentTimeoutReason);

    private static CancelOrder PaymentTimeoutFallbackCancel { get; } = new(PaymentTimeoutFallbackCommandId, PaymentTimeoutReason);

    /// <summary>Whether a caller's command may not carry <paramref name="commandId"/>: it is one of the system's.</summary>
    public static bool IsReservedCommandId(string? commandId) =>
        commandId is PaymentTimeoutCommandId or PaymentTimeoutFallbackCommandId;

    /// <summary>
    /// The system's cancellation for <paramref name="state"/>: <see cref="PaymentTimeoutCancel"/>, or its fallback id when a
    /// caller's command already holds the usual one (stored before it was reserved).
    /// </summary>
    public static CancelOrder PaymentTimeoutCancelFor(OrderState state) =>
        state.Commands.TryGetValue(PaymentTimeoutCommandId, out var used) && used.Kind != nameof(CancelOrder)
            ? PaymentTimeoutFallbackCancel
            : PaymentTimeoutCancel;

    /// <summary>When the order was placed (its <see cref="OrderPlaced"/>), whatever its status; null if it never was.</summary>
    public static DateTimeOffset? PlacedAt(OrderState state) => state.Events is [OrderPlaced placed, ..] ? placed.OccurredAt : null;

    /// <summary>
    /// When an order waiting for its payment must be cancelled: the placement's time plus <paramref name="timeout"/>.
    /// Null for an order that waits for no payment (not placed, paid, shipped, received or cancelled).
    /// </summary>
    public static DateTimeOffset? PaymentDeadline(OrderState state, TimeSpan timeout) =>
        state.Status == OrderStatus.Placed && state.Events is [OrderPlaced placed, ..] ? placed.OccurredAt + timeout : null;

    /// <summary>True when the order still waits for its payment and its deadline has come (<paramref name="now"/> at or after it).</summary>
    public static bool IsPaymentOverdue(OrderState state, DateTimeOffset now, TimeSpan timeout) =>
        PaymentDeadline(state, timeout) is { } deadline && now >= deadline;

    /// <summary>True when the order was cancelled by the payment timeout (not by its buyer or an operator).</summary>
    public static bool WasCancelledByPaymentTimeout(OrderState state) =>
        state.Status == OrderStatus.Cancelled
        && (state.Commands.TryGetValue(PaymentTimeoutCommandId, out var used) && used.Kind == nameof(CancelOrder)
            || state.Commands.ContainsKey(PaymentTimeoutFallbackCommandId));

    /// <summary>
    /// The refusal of a payment that lost to the timeout: <paramref name="pay"/> is new (not a repeat of an accepted
    /// payment, which keeps its first answer) and the order was cancelled by the timeout. Null when the payment did not
    /// lose to the timeout, and <see cref="Decide"/> decides it as any other command.
    /// Call it after the overdue order was cancelled (<see cref="IsPaymentOverdue"/>): the payment must lose both when
    /// the timeout's tick came first and when the payment itself arrived past the deadline.
    /// </summary>
    public static OrderDecision.Rejected? RefuseLatePayment(string orderId, OrderState state, PayOrder pay, TimeSpan timeout) =>
        WasCancelledByPaymentTimeout(state) && !state.Commands.ContainsKey(pay.CommandId)
            ? new OrderDecision.Rejected(OrderErrorCode.PaymentTimedOut,
                $"order {orderId} was not paid within {timeout} of its placement and was cancelled; it takes no payment")
            : null;
}
