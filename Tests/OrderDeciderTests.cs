using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Orders;
using Orleans.Serialization;

namespace OrderFlow.Tests;

/// <summary>
/// The order's rules without a cluster: <see cref="OrderDecider"/> given a state and a command. The grain around it
/// (storage, event size, outbox, stream) is covered by <see cref="OrderLifecycleTests"/>.
/// </summary>
public sealed class OrderDeciderTests
{
    private const string OrderId = "order-1";
    private const string UserId = "user-1";
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    // 2 × 10.50 + 1 × 3.25
    private const decimal Total = 24.25m;
    private static readonly OrderLine[] Lines = [new("sku-a", 2, 10.50m), new("sku-b", 1, 3.25m)];

    private static PlaceOrder Place(string commandId = "place") => new(commandId, UserId, Lines, "coupon-1", "activity-1");

    private static PayOrder Pay(string commandId = "pay", string paymentId = "payment-1", decimal amount = Total) => new(commandId, paymentId, amount);

    private static OrderDecision Decide(OrderState state, OrderCommand command, Guid? eventId = null) =>
        OrderDecider.Decide(OrderId, state, command, eventId ?? Guid.NewGuid(), Now);

    /// <summary>Decides a command that must be accepted and records it, as the grain does before its write.</summary>
    private static OrderDecision.Accept Accepted(OrderState state, OrderCommand command)
    {
        var decision = Decide(state, command);
        var accepted = Assert.IsType<OrderDecision.Accept>(decision);
        OrderDecider.Record(state, command.CommandId, accepted);
        return accepted;
    }

    /// <summary>An order walked along the legal path until it reaches <paramref name="status"/>.</summary>
    private static OrderState OrderIn(OrderStatus status)
    {
        var state = new OrderState();
        OrderCommand[] path = status switch
        {
            OrderStatus.None => [],
            OrderStatus.Placed => [Place()],
            OrderStatus.Paid => [Place(), Pay()],
            OrderStatus.Shipped => [Place(), Pay(), new ShipOrder("ship")],
            OrderStatus.Received => [Place(), Pay(), new ShipOrder("ship"), new ConfirmReceipt("receive")],
            OrderStatus.Cancelled => [Place(), new CancelOrder("cancel")],
            _ => throw new ArgumentOutOfRangeException(nameof(status)),
        };
        foreach (var command in path)
        {
            Accepted(state, command);
        }

        Assert.Equal(status, state.Status);
        return state;
    }

    private static OrderCommand Command(string kind, string commandId) => kind switch
    {
        nameof(PlaceOrder) => Place(commandId),
        nameof(PayOrder) => Pay(commandId),
        nameof(ShipOrder) => new ShipOrder(commandId),
        nameof(ConfirmReceipt) => new ConfirmReceipt(commandId),
        nameof(CancelOrder) => new CancelOrder(commandId),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static readonly string[] Kinds = [nameof(PlaceOrder), nameof(PayOrder), nameof(ShipOrder), nameof(ConfirmReceipt), nameof(CancelOrder)];

    private static readonly HashSet<(OrderStatus, string)> Legal =
    [
        (OrderStatus.None, nameof(PlaceOrder)),
        (OrderStatus.Placed, nameof(PayOrder)),
        (OrderStatus.Placed, nameof(CancelOrder)),
        (OrderStatus.Paid, nameof(ShipOrder)),
        (OrderStatus.Paid, nameof(CancelOrder)),
        (OrderStatus.Shipped, nameof(ConfirmReceipt)),
    ];

    [Fact]
    public void Placing_an_order_is_accepted_as_OrderPlaced_with_the_total_of_its_lines()
    {
        var eventId = Guid.NewGuid();
        var accepted = Assert.IsType<OrderDecision.Accept>(Decide(new OrderState(), Place(), eventId));

        var placed = Assert.IsType<OrderPlaced>(accepted.Event);
        Assert.Equal((eventId, OrderId, 1L, Now), (placed.EventId, placed.OrderId, placed.Sequence, placed.OccurredAt));
        Assert.Equal((UserId, Total, "coupon-1", "activity-1"), (placed.UserId, placed.Total, placed.CouponId, placed.ActivityId));
        Assert.Equal(Lines, placed.Items);
        Assert.Equal((nameof(PlaceOrder), 1L, OrderStatus.Placed), (accepted.Processed.Kind, accepted.Processed.Sequence, accepted.Processed.Status));
        Assert.NotNull(accepted.Processed.Fingerprint);
    }

    [Fact]
    public void Deciding_changes_nothing_in_the_state()
    {
        var state = OrderIn(OrderStatus.Placed);

        Assert.IsType<OrderDecision.Accept>(Decide(state, Pay()));

        Assert.Equal((OrderStatus.Placed, 1L, 0m, null), (state.Status, state.LastSequence, state.PaidAmount, state.PaymentId));
        Assert.False(state.Commands.ContainsKey("pay"));
    }

    [Fact]
    public void Paying_the_total_of_a_placed_order_is_accepted_as_OrderPaid_with_what_the_effects_need()
    {
        var state = OrderIn(OrderStatus.Placed);

        var accepted = Accepted(state, Pay(amount: Total));

        var paid = Assert.IsType<OrderPaid>(accepted.Event);
        Assert.Equal((2L, UserId, "payment-1", Total), (paid.Sequence, paid.UserId, paid.PaymentId, paid.Amount));
        Assert.Equal(Lines, paid.Items);
        Assert.Equal(("coupon-1", "activity-1"), (paid.CouponId, paid.ActivityId));
        Assert.Equal(OrderStatus.Paid, accepted.Processed.Status);
    }

    [Fact]
    public void Shipping_a_paid_order_is_accepted_as_OrderShipped()
    {
        var accepted = Accepted(OrderIn(OrderStatus.Paid), new ShipOrder("ship"));

        var shipped = Assert.IsType<OrderShipped>(accepted.Event);
        Assert.Equal((3L, UserId), (shipped.Sequence, shipped.UserId));
        Assert.Equal(OrderStatus.Shipped, accepted.Processed.Status);
    }

    [Fact]
    public void Confirming_receipt_of_a_shipped_order_is_accepted_as_OrderReceived()
    {
        var accepted = Accepted(OrderIn(OrderStatus.Shipped), new ConfirmReceipt("receive"));

        var received = Assert.IsType<OrderReceived>(accepted.Event);
        Assert.Equal((4L, UserId), (received.Sequence, received.UserId));
        Assert.Equal(OrderStatus.Received, accepted.Processed.Status);
        Assert.True(received.IsFinal);
    }

    [Fact]
    public void Cancelling_a_placed_order_refunds_nothing()
    {
        var accepted = Accepted(OrderIn(OrderStatus.Placed), new CancelOrder("cancel", "changed my mind"));

        var cancelled = Assert.IsType<OrderCancelled>(accepted.Event);
        Assert.Equal((2L, UserId, false, 0m, "changed my mind"), (cancelled.Sequence, cancelled.UserId, cancelled.WasPaid, cancelled.RefundAmount, cancelled.Reason));
        Assert.Equal(Lines, cancelled.Items);
        Assert.Equal(("coupon-1", "activity-1"), (cancelled.CouponId, cancelled.ActivityId));
        Assert.Equal(OrderStatus.Cancelled, accepted.Processed.Status);
    }

    [Fact]
    public void Cancelling_a_paid_order_refunds_the_paid_amount()
    {
        var accepted = Accepted(OrderIn(OrderStatus.Paid), new CancelOrder("cancel"));

        var cancelled = Assert.IsType<OrderCancelled>(accepted.Event);
        Assert.Equal((3L, true, Total, null), (cancelled.Sequence, cancelled.WasPaid, cancelled.RefundAmount, cancelled.Reason));
        Assert.Equal(Lines, cancelled.Items);
    }

    [Fact]
    public void Each_accepted_event_takes_the_sequence_after_the_last_one()
    {
        var state = new OrderState();
        var sequences = new List<long>();
        foreach (var command in new OrderCommand[] { Place(), Pay(), new ShipOrder("ship"), new ConfirmReceipt("receive") })
        {
            var expected = state.LastSequence + 1;
            var accepted = Accepted(state, command);
            Assert.Equal(expected, accepted.Event.Sequence);
            Assert.Equal(expected, accepted.Processed.Sequence);
            sequences.Add(accepted.Event.Sequence);
        }

        Assert.Equal([1L, 2, 3, 4], sequences);
        Assert.Equal(OrderStatus.Received, state.Status);
        Assert.Equal(sequences, state.Events.Select(e => e.Sequence));
    }

    public static TheoryData<OrderStatus, string> IllegalSteps()
    {
        var data = new TheoryData<OrderStatus, string>();
        foreach (var status in new[] { OrderStatus.Placed, OrderStatus.Paid, OrderStatus.Shipped, OrderStatus.Received, OrderStatus.Cancelled })
        {
            foreach (var kind in Kinds.Where(kind => !Legal.Contains((status, kind))))
            {
                data.Add(status, kind);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(IllegalSteps))]
    public void A_command_the_status_does_not_allow_is_refused_as_an_illegal_transition(OrderStatus status, string kind)
    {
        var state = OrderIn(status);

        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(state, Command(kind, "next")));

        Assert.Equal(OrderErrorCode.IllegalTransition, rejected.Code);
        Assert.Equal($"{kind} is not allowed when the order is {status}", rejected.Message);
    }

    [Theory]
    [InlineData(nameof(PayOrder))]
    [InlineData(nameof(ShipOrder))]
    [InlineData(nameof(ConfirmReceipt))]
    [InlineData(nameof(CancelOrder))]
    public void A_command_on_an_order_never_placed_is_refused_as_not_found(string kind)
    {
        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(new OrderState(), Command(kind, "first")));

        Assert.Equal(OrderErrorCode.OrderNotFound, rejected.Code);
        Assert.Equal($"order {OrderId} has not been placed", rejected.Message);
    }

    [Theory]
    [InlineData("24.26")]
    [InlineData("24.24")]
    [InlineData("0.01")]
    public void Paying_another_amount_than_the_total_is_refused_as_a_mismatch(string amount)
    {
        var paid = decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture);

        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(OrderIn(OrderStatus.Placed), Pay(amount: paid)));

        Assert.Equal(OrderErrorCode.AmountMismatch, rejected.Code);
        Assert.Equal($"paid {amount} but the order total is 24.25", rejected.Message);
    }

    public static TheoryData<string, string> BadInput => new()
    {
        { "missing-command-id", "command id is missing" },
        { "blank-command-id", "command id must be" },
        { "command-id-outside-the-alphabet", "command id must be" },
        { "user-id-outside-the-alphabet", "user id must be" },
        { "no-items", "an order needs at least one item" },
        { "zero-quantity", "quantity of sku-a must be between 1 and" },
        { "fraction-of-a-cent", "unit price of sku-a must be positive" },
        { "negative-payment", "payment amount must be positive" },
        { "oversized-reason", $"cancel reason must be at most {TextLimits.MaxReasonLength} characters, was {TextLimits.MaxReasonLength + 1}" },
        { "control-character-in-reason", "cancel reason must not contain control characters" },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void Invalid_input_is_refused_as_an_invalid_command(string kind, string message)
    {
        var state = OrderIn(OrderStatus.Placed);
        OrderCommand command = kind switch
        {
            "missing-command-id" => Pay(commandId: null!),
            "blank-command-id" => Pay(commandId: ""),
            "command-id-outside-the-alphabet" => Pay(commandId: "pay/1"),
            "user-id-outside-the-alphabet" => Place("place-2") with { UserId = "user#1" },
            "no-items" => Place("place-2") with { Items = [] },
            "zero-quantity" => Place("place-2") with { Items = [new("sku-a", 0, 1m)] },
            "fraction-of-a-cent" => Place("place-2") with { Items = [new("sku-a", 1, 1.001m)] },
            "negative-payment" => Pay(amount: -Total),
            "oversized-reason" => new CancelOrder("cancel", new string('r', TextLimits.MaxReasonLength + 1)),
            "control-character-in-reason" => new CancelOrder("cancel", "line\u001b[2Jbreak"),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(state, command));

        Assert.Equal(OrderErrorCode.InvalidCommand, rejected.Code);
        Assert.StartsWith(message, rejected.Message);
    }

    [Theory]
    [InlineData("order/1")]
    [InlineData("order 1")]
    [InlineData("")]
    public void An_order_id_outside_the_alphabet_is_refused_as_an_invalid_command(string orderId)
    {
        var decision = OrderDecider.Decide(orderId, new OrderState(), Place(), Guid.NewGuid(), Now);

        var rejected = Assert.IsType<OrderDecision.Rejected>(decision);
        Assert.Equal(OrderErrorCode.InvalidCommand, rejected.Code);
        Assert.StartsWith("order id must be", rejected.Message);
    }

    [Fact]
    public void Invalid_input_is_refused_even_under_a_command_id_already_seen()
    {
        var state = OrderIn(OrderStatus.Placed);

        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(state, Place() with { Items = [] }));

        Assert.Equal(OrderErrorCode.InvalidCommand, rejected.Code);
    }

    [Fact]
    public void A_repeated_command_is_answered_with_its_first_outcome_even_after_the_order_moved_on()
    {
        var state = OrderIn(OrderStatus.Placed);
        var first = Accepted(state, Pay());
        Accepted(state, new ShipOrder("ship"));

        var repeat = Assert.IsType<OrderDecision.Repeat>(Decide(state, Pay()));

        Assert.Equal(first.Processed, repeat.Earlier);
        Assert.Equal((2L, OrderStatus.Paid), (repeat.Earlier.Sequence, repeat.Earlier.Status));
        Assert.Equal(3L, state.LastSequence);
    }

    [Fact]
    public void A_command_id_reused_by_another_kind_of_command_is_refused()
    {
        var state = OrderIn(OrderStatus.Placed);

        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(state, new CancelOrder("place")));

        Assert.Equal(OrderErrorCode.CommandIdReused, rejected.Code);
        Assert.Equal("command id place was already used by PlaceOrder", rejected.Message);
    }

    [Theory]
    [InlineData("payment-2", "24.25")]
    [InlineData("payment-1", "24.26")]
    public void A_command_id_reused_with_other_content_is_refused(string paymentId, string amount)
    {
        var state = OrderIn(OrderStatus.Placed);
        Accepted(state, Pay("pay-1", "payment-1", Total));

        var other = Pay("pay-1", paymentId, decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture));
        var rejected = Assert.IsType<OrderDecision.Rejected>(Decide(state, other));

        Assert.Equal(OrderErrorCode.CommandIdReused, rejected.Code);
        Assert.Equal("command id pay-1 was already used by a PayOrder with different content", rejected.Message);
    }

    [Fact]
    public void Amounts_that_differ_only_in_trailing_zeros_are_the_same_content()
    {
        var state = new OrderState();
        Accepted(state, new PlaceOrder("place", UserId, [new("sku-a", 2, 22.40m)]));
        Accepted(state, Pay("pay-1", amount: 44.80m));

        var samePlace = Decide(state, new PlaceOrder("place", UserId, [new("sku-a", 2, 22.4m)]));
        var samePay = Decide(state, Pay("pay-1", amount: 44.8m));

        Assert.Equal(1L, Assert.IsType<OrderDecision.Repeat>(samePlace).Earlier.Sequence);
        Assert.Equal(2L, Assert.IsType<OrderDecision.Repeat>(samePay).Earlier.Sequence);
    }

    [Fact]
    public void A_command_stored_before_fingerprints_existed_is_matched_by_kind_only()
    {
        var state = OrderIn(OrderStatus.Paid);
        var legacy = new ProcessedCommand(nameof(PayOrder), 2, OrderStatus.Paid);
        state.Commands["pay-legacy"] = legacy;

        var otherContent = Decide(state, Pay("pay-legacy", "payment-9", 1m));
        var otherKind = Decide(state, new CancelOrder("pay-legacy"));

        Assert.Same(legacy, Assert.IsType<OrderDecision.Repeat>(otherContent).Earlier);
        Assert.Equal(OrderErrorCode.CommandIdReused, Assert.IsType<OrderDecision.Rejected>(otherKind).Code);
    }

    [Fact]
    public void Applying_OrderPlaced_sets_the_status_user_items_total_coupon_and_activity()
    {
        var state = new OrderState();

        OrderDecider.Apply(state, new OrderPlaced(Guid.NewGuid(), OrderId, 1, Now, UserId, Lines, Total, "coupon-1", "activity-1"));

        Assert.Equal((OrderStatus.Placed, UserId, Total, "coupon-1", "activity-1"), (state.Status, state.UserId, state.Total, state.CouponId, state.ActivityId));
        Assert.Equal(Lines, state.Items);
        Assert.Equal((0m, null), (state.PaidAmount, state.PaymentId));
    }

    [Fact]
    public void Applying_OrderPaid_sets_the_status_paid_amount_and_payment_id()
    {
        var state = OrderIn(OrderStatus.Placed);

        OrderDecider.Apply(state, new OrderPaid(Guid.NewGuid(), OrderId, 2, Now, UserId, "payment-7", Total, Lines, null, null));

        Assert.Equal((OrderStatus.Paid, Total, "payment-7"), (state.Status, state.PaidAmount, state.PaymentId));
        Assert.Equal((UserId, Total, "coupon-1"), (state.UserId, state.Total, state.CouponId));
    }

    [Fact]
    public void Applying_shipped_received_and_cancelled_changes_only_the_status()
    {
        var state = OrderIn(OrderStatus.Paid);
        var cancelled = new OrderCancelled(Guid.NewGuid(), OrderId, 3, Now, UserId, true, Total, Lines, null, null, null);

        var statuses = new List<OrderStatus>();
        foreach (OrderEvent evt in new OrderEvent[] { new OrderShipped(Guid.NewGuid(), OrderId, 3, Now, UserId), new OrderReceived(Guid.NewGuid(), OrderId, 4, Now, UserId), cancelled })
        {
            OrderDecider.Apply(state, evt);
            statuses.Add(state.Status);
        }

        Assert.Equal([OrderStatus.Shipped, OrderStatus.Received, OrderStatus.Cancelled], statuses);
        Assert.Equal((UserId, Total, Total, "payment-1"), (state.UserId, state.Total, state.PaidAmount, state.PaymentId));
        Assert.Equal(Lines, state.Items);
    }

    [Fact]
    public void Recording_an_accepted_command_adds_its_event_to_the_log_and_remembers_its_id()
    {
        var state = OrderIn(OrderStatus.Placed);
        var accepted = Assert.IsType<OrderDecision.Accept>(Decide(state, Pay()));

        OrderDecider.Record(state, "pay", accepted);

        Assert.Same(accepted.Event, state.Events[^1]);
        Assert.Equal(2L, state.LastSequence);
        Assert.Equal(accepted.Processed, state.Commands["pay"]);
        Assert.Equal(OrderStatus.Paid, state.Status);
        Assert.Equal(0L, state.PublishedSequence);
    }

    [Fact]
    public void Later_events_share_the_placements_order_id_and_lines_so_the_record_holds_them_once()
    {
        var serializer = new ServiceCollection().AddSerializer()
            .BuildServiceProvider().GetRequiredService<Serializer>();
        var state = new OrderState();
        // Each command with its own copy of the order id, as the grain's key gives it (GetPrimaryKeyString decodes anew),
        // and the record written and read back after each one, as a reactivated order has it.
        foreach (var command in new OrderCommand[] { Place(), Pay(), new ShipOrder("ship"), new CancelOrder("cancel-late"), new ConfirmReceipt("receive") })
        {
            if (OrderDecider.Decide(new string(OrderId.AsSpan()), state, command, Guid.NewGuid(), Now) is OrderDecision.Accept accepted)
            {
                OrderDecider.Record(state, command.CommandId, accepted);
            }

            state = serializer.Deserialize<OrderState>(serializer.SerializeToArray(state))!;
        }

        var (placed, paid, received) = ((OrderPlaced)state.Events[0], (OrderPaid)state.Events[1], (OrderReceived)state.Events[3]);
        Assert.Same(placed.Items, paid.Items);
        Assert.Same(placed.OrderId, paid.OrderId);
        Assert.Same(placed.OrderId, received.OrderId);
        Assert.Equal(Lines, paid.Items);
        Assert.Equal(OrderId, received.OrderId);
    }
}
