using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class OrderLifecycleTests(PipelineFixture fixture)
{
    private readonly OrderDriver _orders = new(fixture.Grains);

    [Fact]
    public async Task Full_lifecycle_produces_events_numbered_one_to_four_and_publishes_them_all()
    {
        var id = OrderDriver.NewId("life-");
        await _orders.FullLifecycleAsync(id, "user-life", OrderDriver.Items(("sku-a", 2, 10.50m)));

        var order = await _orders.Order(id).GetAsync();
        Assert.Equal(OrderStatus.Received, order.Status);
        Assert.Equal(4, order.LastSequence);
        Assert.Equal(4, order.PublishedSequence);
        var events = await _orders.Order(id).GetEventsAsync(0);
        Assert.Equal([1L, 2, 3, 4], events.Select(e => e.Sequence));
        Assert.Equal(["OrderPlaced", "OrderPaid", "OrderShipped", "OrderReceived"], events.Select(e => e.Kind));
        Assert.All(events, e => Assert.Equal(id, e.OrderId));
        Assert.Equal(4, events.Select(e => e.EventId).Distinct().Count());
    }

    public static TheoryData<string, OrderErrorCode> IllegalSteps => new()
    {
        { "ship-before-pay", OrderErrorCode.IllegalTransition },
        { "receive-before-ship", OrderErrorCode.IllegalTransition },
        { "place-twice", OrderErrorCode.IllegalTransition },
        { "pay-wrong-amount", OrderErrorCode.AmountMismatch },
        { "cancel-after-ship", OrderErrorCode.IllegalTransition },
        { "pay-twice-new-id", OrderErrorCode.IllegalTransition },
        { "cancel-after-cancel", OrderErrorCode.IllegalTransition },
    };

    [Theory]
    [MemberData(nameof(IllegalSteps))]
    public async Task Illegal_transition_is_refused_with_a_typed_error_and_writes_nothing(string step, OrderErrorCode expected)
    {
        var id = OrderDriver.NewId($"illegal-{step}-");
        var order = _orders.Order(id);
        var total = await _orders.PlaceAsync(id, "user-illegal", OrderDriver.Items(("sku-b", 1, 5m)));
        switch (step)
        {
            case "cancel-after-ship":
                await _orders.PayAsync(id, total);
                await _orders.ShipAsync(id);
                break;
            case "pay-twice-new-id":
                await _orders.PayAsync(id, total);
                break;
            case "cancel-after-cancel":
                await _orders.CancelAsync(id);
                break;
        }

        var before = await order.GetAsync();
        var result = step switch
        {
            "ship-before-pay" => await order.ShipAsync(new ShipOrder("s1")),
            "receive-before-ship" => await order.ConfirmReceiptAsync(new ConfirmReceipt("r1")),
            // Refused by the decision, before any reservation: the stock of sku-b exists (the first placement made it).
            "place-twice" => await order.PlaceAsync(new PlaceOrder("p2", "user-illegal", OrderDriver.Items(("sku-b", 1, 5m)))),
            "pay-wrong-amount" => await order.PayAsync(new PayOrder("pay-x", $"payment-x-{id}", total + 0.01m)),
            "cancel-after-ship" => await order.CancelAsync(new CancelOrder("c1")),
            "pay-twice-new-id" => await order.PayAsync(new PayOrder("pay-again", $"payment-y-{id}", total)),
            "cancel-after-cancel" => await order.CancelAsync(new CancelOrder("c2")),
            _ => throw new ArgumentOutOfRangeException(nameof(step)),
        };

        Assert.False(result.Accepted);
        Assert.Equal(expected, result.Error!.Code);
        Assert.Equal(before.Status, result.Status);
        var ex = Assert.Throws<OrderRejectedException>(() => result.EnsureAccepted());
        Assert.Equal(expected, ex.Code);
        var after = await order.GetAsync();
        Assert.Equal(before.LastSequence, after.LastSequence);
        Assert.Equal(before.Status, after.Status);
    }

    [Fact]
    public async Task Command_on_an_order_never_placed_is_refused_as_not_found()
    {
        var id = OrderDriver.NewId("ghost-");
        var result = await _orders.Order(id).PayAsync(new PayOrder("pay-1", $"payment-{id}", 10m));
        Assert.Equal(OrderErrorCode.OrderNotFound, result.Error!.Code);
        Assert.Equal(OrderStatus.None, (await _orders.Order(id).GetAsync()).Status);
    }

    public static TheoryData<string> BadPlacements => new()
    {
        "no-items", "zero-quantity", "negative-price", "fraction-of-a-cent", "blank-user", "blank-command-id", "whitespace-sku", "blank-coupon",
        "slash-user", "hash-sku", "question-coupon", "backslash-activity", "control-command-id", "colon-sku", "long-user", "non-ascii-user",
    };

    [Theory]
    [MemberData(nameof(BadPlacements))]
    public async Task Bad_input_is_refused_as_invalid_and_nothing_is_written_or_published(string kind)
    {
        var id = OrderDriver.NewId($"bad-{kind}-");
        var good = OrderDriver.Items(("sku-c", 1, 3m));
        var command = kind switch
        {
            "no-items" => new PlaceOrder("p", "user-bad", []),
            "zero-quantity" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku-c", 0, 3m))),
            "negative-price" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku-c", 1, -3m))),
            "fraction-of-a-cent" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku-c", 1, 3.001m))),
            "blank-user" => new PlaceOrder("p", " ", good),
            "blank-command-id" => new PlaceOrder("", "user-bad", good),
            "whitespace-sku" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku c", 1, 3m))),
            "blank-coupon" => new PlaceOrder("p", "user-bad", good, CouponId: ""),
            "slash-user" => new PlaceOrder("p", "user/bad", good),
            "hash-sku" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku#c", 1, 3m))),
            "question-coupon" => new PlaceOrder("p", "user-bad", good, CouponId: "c?1"),
            "backslash-activity" => new PlaceOrder("p", "user-bad", good, ActivityId: "a\\1"),
            "control-command-id" => new PlaceOrder("p\u0007", "user-bad", good),
            "colon-sku" => new PlaceOrder("p", "user-bad", OrderDriver.Items(("sku:c", 1, 3m))),
            "long-user" => new PlaceOrder("p", new string('u', Ids.MaxLength + 1), good),
            "non-ascii-user" => new PlaceOrder("p", "usér", good),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var result = await _orders.Order(id).PlaceAsync(command);

        Assert.False(result.Accepted);
        Assert.Equal(OrderErrorCode.InvalidCommand, result.Error!.Code);
        Assert.False(string.IsNullOrWhiteSpace(result.Error.Message));
        var order = await _orders.Order(id).GetAsync();
        Assert.Equal(OrderStatus.None, order.Status);
        Assert.Equal(0, order.LastSequence);
        Assert.Empty(await _orders.Order(id).GetEventsAsync(0));
        var report = await _orders.Operations.InspectAsync(id);
        Assert.All(report.Subscribers, s => Assert.Equal(0, s.AppliedSequence + s.BufferedSequences.Count));
    }

    [Fact]
    public async Task Repeated_command_returns_the_same_result_and_produces_one_event()
    {
        var id = OrderDriver.NewId("repeat-");
        var total = await _orders.PlaceAsync(id, "user-repeat", OrderDriver.Items(("sku-d", 3, 7.25m)));
        var pay = new PayOrder("pay-once", $"payment-{id}", total);

        var first = await _orders.Order(id).PayAsync(pay);
        var second = await _orders.Order(id).PayAsync(pay);
        var third = await _orders.Order(id).PayAsync(pay);

        Assert.True(first.Accepted);
        Assert.False(first.Repeated);
        Assert.Equal(2, first.Sequence);
        foreach (var again in new[] { second, third })
        {
            Assert.True(again.Accepted);
            Assert.True(again.Repeated);
            Assert.Equal(first.Sequence, again.Sequence);
            Assert.Equal(first.Status, again.Status);
        }

        Assert.Equal(2, (await _orders.Order(id).GetAsync()).LastSequence);
        var report = await _orders.WaitCaughtUpAsync(id);
        Assert.All(report.Subscribers, s => Assert.Equal(Handed.Runs(s.Subscriber, "PA"), s.HandlerRuns));
        var points = await fixture.Grains.GetGrain<IPointsAccountGrain>("user-repeat").GetAsync();
        Assert.Equal(decimal.Floor(total), await fixture.Grains.GetGrain<IPointsAccountGrain>("user-repeat").GetEntryAsync($"{id}:award"));
    }

    [Fact]
    public async Task Command_id_reused_by_a_different_command_is_refused()
    {
        var id = OrderDriver.NewId("reuse-");
        var items = OrderDriver.Items(("sku-e", 1, 1m));
        await _orders.EnsureInventoryAsync(items);
        (await _orders.Order(id).PlaceAsync(new PlaceOrder("same-id", "user-reuse", items))).EnsureAccepted();
        var result = await _orders.Order(id).CancelAsync(new CancelOrder("same-id"));
        Assert.Equal(OrderErrorCode.CommandIdReused, result.Error!.Code);
        Assert.Equal(OrderStatus.Placed, (await _orders.Order(id).GetAsync()).Status);
    }

    /// <summary>
    /// Azure Table storage folds <c>/ \ # ?</c> in row keys to <c>_</c>: these ids would share x_1's row there. They are
    /// refused in every profile before any write (the Azure-profile twin is in Durable/HostileInputTests).
    /// </summary>
    [Theory]
    [InlineData("x/1")]
    [InlineData("x\\1")]
    [InlineData("x#1")]
    [InlineData("x?1")]
    [InlineData("x\u00011")]
    [InlineData("x 1")]
    public async Task Order_ids_outside_the_alphabet_are_refused_and_nothing_is_written(string suffix)
    {
        var id = OrderDriver.NewId("alpha-") + suffix;
        var result = await _orders.Order(id).PlaceAsync(new PlaceOrder("p", "user-alpha", OrderDriver.Items(("sku-alpha", 1, 1m))));
        Assert.Equal(OrderErrorCode.InvalidCommand, result.Error!.Code);
        Assert.Contains("order id", result.Error.Message);
        Assert.Equal(0, (await _orders.Order(id).GetAsync()).LastSequence);
    }

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    public async Task Dot_and_dot_dot_are_refused_for_anything_new_an_http_path_cannot_carry_them(string dots)
    {
        Assert.True(Ids.IsValid(dots)); // still readable where stored before
        Assert.Null(Ids.NewIdProblem("...", "id"));
        var placed = await _orders.Order(dots).PlaceAsync(new PlaceOrder("p", "user-dots", OrderDriver.Items(("sku-dots", 1, 1m))));
        Assert.Equal(OrderErrorCode.InvalidCommand, placed.Error!.Code);
        Assert.Equal(0, (await _orders.Order(dots).GetAsync()).LastSequence);

        var id = OrderDriver.NewId("dots-");
        PlaceOrder[] places =
        [
            new("p1", dots, OrderDriver.Items(("sku-dots", 1, 1m))),
            new("p2", "user-dots", OrderDriver.Items((dots, 1, 1m))),
            new("p3", "user-dots", OrderDriver.Items(("sku-dots", 1, 1m)), dots),
            new("p4", "user-dots", OrderDriver.Items(("sku-dots", 1, 1m)), null, dots),
        ];
        foreach (var place in places)
        {
            Assert.Equal(OrderErrorCode.InvalidCommand, (await _orders.Order(id).PlaceAsync(place)).Error!.Code);
        }

        Assert.Equal(0, (await _orders.Order(id).GetAsync()).LastSequence);
        Assert.False((await _orders.Grains.GetGrain<IStockGrain>(dots).SetAvailableAsync(5)).Accepted);
    }

    [Fact]
    public async Task A_cancel_reason_beyond_its_bound_is_refused_before_the_write()
    {
        var id = OrderDriver.NewId("reason-");
        await _orders.PlaceAsync(id, "user-reason", OrderDriver.Items(("sku-reason", 1, 2m)));
        var refused = await _orders.Order(id).CancelAsync(new CancelOrder("cancel-huge", new string('r', 60_000)));
        Assert.Equal(OrderErrorCode.InvalidCommand, refused.Error!.Code);
        var withControl = await _orders.Order(id).CancelAsync(new CancelOrder("cancel-control", "line\u001b[2Jbreak"));
        Assert.Equal(OrderErrorCode.InvalidCommand, withControl.Error!.Code);
        Assert.Equal((OrderStatus.Placed, 1L), ((await _orders.Order(id).GetAsync()).Status, (await _orders.Order(id).GetAsync()).LastSequence));

        var accepted = await _orders.Order(id).CancelAsync(new CancelOrder("cancel-ok", new string('r', TextLimits.MaxReasonLength)));
        Assert.True(accepted.Accepted, accepted.Error?.Message);
        var published = await _orders.WaitCaughtUpAsync(id);
        Assert.Equal(2, published.Order.PublishedSequence);
    }

    [Fact]
    public async Task An_event_larger_than_the_transport_carries_is_refused_before_the_write()
    {
        // The pipeline fixture sets MaxEventBytes to 8 KiB; 100 lines of 128-character SKUs make a ~15 KB event.
        var id = OrderDriver.NewId("huge-");
        var lines = Enumerable.Range(0, 100).Select(i => ($"{i:000}-" + new string('s', Ids.MaxLength - 4), 1, 1m)).ToArray();
        var result = await _orders.Order(id).PlaceAsync(new PlaceOrder("p", "user-huge", OrderDriver.Items(lines)));
        Assert.Equal(OrderErrorCode.InvalidCommand, result.Error!.Code);
        Assert.Contains("bytes", result.Error.Message);
        Assert.Equal(0, (await _orders.Order(id).GetAsync()).LastSequence);
    }

    [Fact]
    public async Task A_command_id_is_bound_to_its_content_and_equal_amounts_are_equal_content()
    {
        var id = OrderDriver.NewId("fingerprint-");
        var order = _orders.Order(id);
        var place = new PlaceOrder("place-1", "user-fp", OrderDriver.Items(("sku-fp", 2, 22.40m)));
        await _orders.EnsureInventoryAsync(place.Items);
        Assert.True((await order.PlaceAsync(place)).Accepted);
        Assert.Equal(OrderErrorCode.CommandIdReused,
            (await order.PlaceAsync(place with { Items = OrderDriver.Items(("sku-fp", 3, 22.40m)) })).Error!.Code);
        Assert.True((await order.PlaceAsync(place with { Items = OrderDriver.Items(("sku-fp", 2, 22.4m)) })).Repeated);

        var (payment, otherPayment) = ($"payment-1-{id}", $"payment-2-{id}");
        Assert.True((await order.PayAsync(new PayOrder("pay-1", payment, 44.80m))).Accepted);
        var same = await order.PayAsync(new PayOrder("pay-1", payment, 44.8m));
        Assert.True(same.Accepted && same.Repeated, same.Error?.Message);
        Assert.Equal(OrderErrorCode.CommandIdReused, (await order.PayAsync(new PayOrder("pay-1", otherPayment, 44.80m))).Error!.Code);
        Assert.Equal(OrderErrorCode.CommandIdReused, (await order.PayAsync(new PayOrder("pay-1", payment, 45m))).Error!.Code);
        Assert.Equal(2, (await order.GetAsync()).LastSequence);
    }
}
