using OrderFlow.Contracts;
using OrderFlow.Grains.Orders;

namespace OrderFlow.Tests;

/// <summary>
/// The payment deadline rules of <see cref="OrderDecider"/> without a cluster; the grain's reminder around them is
/// covered by <see cref="PaymentTimeoutTests"/>.
/// </summary>
public sealed class PaymentDeadlineTests
{
    private const string OrderId = "order-1";
    private static readonly DateTimeOffset PlacedAt = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(30);
    private static readonly OrderLine[] Lines = [new("sku-a", 2, 10.50m)];
    private const decimal Total = 21m;

    private static OrderDecision Record(OrderState state, OrderCommand command, DateTimeOffset at)
    {
        var decision = OrderDecider.Decide(OrderId, state, command, Guid.NewGuid(), at,
            systemCommand: ReferenceEquals(command, OrderDecider.PaymentTimeoutCancelFor(state)));
        if (decision is OrderDecision.Accept accepted)
        {
            OrderDecider.Record(state, command.CommandId, accepted);
        }

        return decision;
    }

    private static OrderState Placed()
    {
        var state = new OrderState();
        Assert.IsType<OrderDecision.Accept>(Record(state, new PlaceOrder("place", "user-1", Lines), PlacedAt));
        return state;
    }

    private static PayOrder Pay(string commandId = "pay") => new(commandId, "payment-1", Total);

    [Fact]
    public void A_caller_cannot_use_the_payment_timeouts_command_id_so_the_order_still_times_out()
    {
        var id = OrderDecider.PaymentTimeoutCommandId;
        var refused = Assert.IsType<OrderDecision.Rejected>(Record(new OrderState(), new PlaceOrder(id, "user-1", Lines), PlacedAt));
        Assert.Equal(OrderErrorCode.InvalidCommand, refused.Code);
        Assert.Contains("reserved", refused.Message);

        var state = Placed();
        OrderCommand[] others = [new CancelOrder(id, "mine"), new CancelOrder(id, OrderDecider.PaymentTimeoutReason), new PayOrder(id, "payment-1", Total), new ShipOrder(id)];
        foreach (var command in others)
        {
            Assert.Equal(OrderErrorCode.InvalidCommand, Assert.IsType<OrderDecision.Rejected>(Record(state, command, PlacedAt + TimeSpan.FromMinutes(1))).Code);
        }

        Assert.Equal(OrderStatus.Placed, state.Status);
        Assert.DoesNotContain(id, state.Commands.Keys);
        // So the system's own cancellation is still its first use, and a payment after the deadline loses to it.
        Assert.IsType<OrderDecision.Accept>(Record(state, OrderDecider.PaymentTimeoutCancel, PlacedAt + Timeout));
        Assert.True(OrderDecider.WasCancelledByPaymentTimeout(state));
        Assert.NotNull(OrderDecider.RefuseLatePayment(OrderId, state, Pay(), Timeout));
    }

    [Fact]
    public void An_order_whose_caller_took_the_timeouts_command_id_before_it_was_reserved_still_times_out()
    {
        // As stored before the id was reserved: the placement itself carried "payment-timeout".
        var state = new OrderState();
        var legacy = new PlaceOrder(OrderDecider.PaymentTimeoutCommandId, "user-1", Lines);
        OrderDecider.Record(state, legacy.CommandId,
            Assert.IsType<OrderDecision.Accept>(OrderDecider.Decide(OrderId, state, legacy, Guid.NewGuid(), PlacedAt, systemCommand: true)));

        var cancel = OrderDecider.PaymentTimeoutCancelFor(state);
        Assert.Equal(OrderDecider.PaymentTimeoutFallbackCommandId, cancel.CommandId);
        Assert.False(OrderDecider.WasCancelledByPaymentTimeout(state));
        Assert.IsType<OrderDecision.Accept>(Record(state, cancel, PlacedAt + Timeout));
        Assert.True(OrderDecider.WasCancelledByPaymentTimeout(state));
        Assert.Equal(OrderErrorCode.PaymentTimedOut, OrderDecider.RefuseLatePayment(OrderId, state, Pay(), Timeout)!.Code);
        // A second tick is a repeat; a caller cannot send the fallback id either.
        Assert.IsType<OrderDecision.Repeat>(Record(state, OrderDecider.PaymentTimeoutCancelFor(state), PlacedAt + Timeout + TimeSpan.FromMinutes(1)));
        Assert.Equal(OrderErrorCode.InvalidCommand,
            Assert.IsType<OrderDecision.Rejected>(Record(Placed(), new CancelOrder(OrderDecider.PaymentTimeoutFallbackCommandId, "mine"), PlacedAt)).Code);
    }

    [Fact]
    public void The_deadline_is_the_placement_time_plus_the_timeout_and_is_due_from_that_instant_on()
    {
        var state = Placed();
        var deadline = PlacedAt + Timeout;

        Assert.Equal(deadline, OrderDecider.PaymentDeadline(state, Timeout));
        Assert.False(OrderDecider.IsPaymentOverdue(state, deadline - TimeSpan.FromTicks(1), Timeout));
        Assert.True(OrderDecider.IsPaymentOverdue(state, deadline, Timeout));
        Assert.True(OrderDecider.IsPaymentOverdue(state, deadline + TimeSpan.FromDays(3), Timeout));
    }

    [Theory]
    [InlineData(OrderStatus.None)]
    [InlineData(OrderStatus.Paid)]
    [InlineData(OrderStatus.Shipped)]
    [InlineData(OrderStatus.Cancelled)]
    public void An_order_that_waits_for_no_payment_has_no_deadline_and_is_never_overdue(OrderStatus status)
    {
        var state = status == OrderStatus.None ? new OrderState() : Placed();
        var later = PlacedAt + TimeSpan.FromMinutes(1);
        OrderCommand[] path = status switch
        {
            OrderStatus.Paid => [Pay()],
            OrderStatus.Shipped => [Pay(), new ShipOrder("ship")],
            OrderStatus.Cancelled => [new CancelOrder("cancel", "changed my mind")],
            _ => [],
        };
        foreach (var command in path)
        {
            Assert.IsType<OrderDecision.Accept>(Record(state, command, later));
        }

        Assert.Equal(status, state.Status);
        Assert.Null(OrderDecider.PaymentDeadline(state, Timeout));
        Assert.False(OrderDecider.IsPaymentOverdue(state, PlacedAt + TimeSpan.FromDays(365), Timeout));
    }

    [Fact]
    public void The_timeout_cancels_with_its_reason_once_and_a_new_payment_after_it_is_refused_as_timed_out()
    {
        var state = Placed();
        var deadline = PlacedAt + Timeout;

        var cancel = Assert.IsType<OrderDecision.Accept>(Record(state, OrderDecider.PaymentTimeoutCancel, deadline));
        var cancelled = Assert.IsType<OrderCancelled>(cancel.Event);
        Assert.Equal(("payment timeout", false, 0m, 2L), (cancelled.Reason, cancelled.WasPaid, cancelled.RefundAmount, cancelled.Sequence));
        Assert.True(OrderDecider.WasCancelledByPaymentTimeout(state));

        // A second tick is a repeat of the same command id: no second event.
        Assert.IsType<OrderDecision.Repeat>(Record(state, OrderDecider.PaymentTimeoutCancel, deadline + TimeSpan.FromMinutes(1)));
        Assert.Equal(2L, state.LastSequence);

        var refused = OrderDecider.RefuseLatePayment(OrderId, state, Pay(), Timeout);
        Assert.Equal(OrderErrorCode.PaymentTimedOut, refused?.Code);
        Assert.Contains(OrderId, refused!.Message);
    }

    [Fact]
    public void A_cancellation_by_the_buyer_leaves_a_later_payment_to_the_ordinary_rules()
    {
        var state = Placed();
        Assert.IsType<OrderDecision.Accept>(Record(state, new CancelOrder("cancel", "changed my mind"), PlacedAt + TimeSpan.FromMinutes(1)));

        Assert.False(OrderDecider.WasCancelledByPaymentTimeout(state));
        Assert.Null(OrderDecider.RefuseLatePayment(OrderId, state, Pay(), Timeout));
        var decided = Assert.IsType<OrderDecision.Rejected>(Record(state, Pay(), PlacedAt + Timeout));
        Assert.Equal(OrderErrorCode.IllegalTransition, decided.Code);
    }

    [Fact]
    public void A_payment_accepted_before_the_deadline_is_answered_as_a_repeat_after_it()
    {
        var state = Placed();
        Assert.IsType<OrderDecision.Accept>(Record(state, Pay(), PlacedAt + Timeout - TimeSpan.FromMilliseconds(1)));
        var afterDeadline = PlacedAt + Timeout + TimeSpan.FromMinutes(5);

        Assert.False(OrderDecider.IsPaymentOverdue(state, afterDeadline, Timeout));
        Assert.Null(OrderDecider.RefuseLatePayment(OrderId, state, Pay(), Timeout));
        Assert.IsType<OrderDecision.Repeat>(Record(state, Pay(), afterDeadline));
        Assert.Equal(OrderStatus.Paid, state.Status);
    }

    [Fact]
    public void A_payment_reusing_the_timeout_command_id_is_refused_as_a_reserved_id_not_as_a_late_payment()
    {
        var state = Placed();
        Assert.IsType<OrderDecision.Accept>(Record(state, OrderDecider.PaymentTimeoutCancel, PlacedAt + Timeout));

        Assert.Null(OrderDecider.RefuseLatePayment(OrderId, state, Pay(OrderDecider.PaymentTimeoutCommandId), Timeout));
        var decided = Assert.IsType<OrderDecision.Rejected>(Record(state, Pay(OrderDecider.PaymentTimeoutCommandId), PlacedAt + Timeout));
        Assert.Equal(OrderErrorCode.InvalidCommand, decided.Code);
        Assert.Contains("reserved", decided.Message);
    }
}
