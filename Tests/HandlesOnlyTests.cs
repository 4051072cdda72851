using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Tests;

/// <summary>Which events the dispatcher hands a subscriber that declares <see cref="HandlesOnlyAttribute"/>, and how far it steps over the rest.</summary>
public sealed class HandlesOnlyTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.UnixEpoch;

    private static OrderShipped Shipped(string? earlierKinds) => new(Guid.NewGuid(), "o-1", 3, At, "u-1") { EarlierKinds = earlierKinds };

    private static OrderReceived Received(string? earlierKinds) => new(Guid.NewGuid(), "o-1", 4, At, "u-1") { EarlierKinds = earlierKinds };

    [Fact]
    public void A_subscriber_is_handed_the_kinds_it_declares_the_final_event_and_any_event_that_does_not_say_what_came_before()
    {
        const string paidOrCancelled = "AC";
        Assert.False(HandlesOnlyAttribute.MustDeliver(paidOrCancelled, Shipped("PA")));
        Assert.True(HandlesOnlyAttribute.MustDeliver("AS", Shipped("PA")));
        Assert.True(HandlesOnlyAttribute.MustDeliver(null, Shipped("PA"))); // declares nothing: every event
        Assert.True(HandlesOnlyAttribute.MustDeliver(paidOrCancelled, Received("PAS"))); // the order's last event
        Assert.True(HandlesOnlyAttribute.MustDeliver(paidOrCancelled, Shipped(null))); // published before kinds were carried
        Assert.True(HandlesOnlyAttribute.MustDeliver(paidOrCancelled, Shipped("P"))); // kinds for fewer events than came before
    }

    [Fact]
    public void A_subscriber_steps_over_events_it_has_nothing_to_do_for_up_to_the_first_it_handles()
    {
        const string paidOrCancelled = "AC";
        Assert.Equal(1, HandlesOnlyAttribute.SkippableThrough(paidOrCancelled, 0, Received("PAS"))); // stops before paid
        Assert.Equal(3, HandlesOnlyAttribute.SkippableThrough(paidOrCancelled, 2, Received("PAS"))); // paid applied: shipped too
        Assert.Equal(2, HandlesOnlyAttribute.SkippableThrough(paidOrCancelled, 2, Shipped("PA"))); // nothing between
        Assert.Equal(0, HandlesOnlyAttribute.SkippableThrough(null, 0, Received("PAS")));
        Assert.Equal(0, HandlesOnlyAttribute.SkippableThrough(paidOrCancelled, 0, Received(null)));
        Assert.Equal(0, HandlesOnlyAttribute.SkippableThrough(paidOrCancelled, 0, Received("?AS"))); // an unknown kind may matter
    }

    [Fact]
    public void A_declaration_names_one_or_more_event_types_that_have_a_kind_letter()
    {
        Assert.Throws<ArgumentException>(() => new HandlesOnlyAttribute());
        Assert.Throws<ArgumentException>(() => new HandlesOnlyAttribute(typeof(OrderEvent))); // the base: no letter, never handed
        Assert.Throws<ArgumentException>(() => new HandlesOnlyAttribute(typeof(OrderPaid), typeof(string)));
        Assert.Equal([typeof(OrderPaid)], new HandlesOnlyAttribute(typeof(OrderPaid)).EventTypes);
    }

    [Fact]
    public void The_published_kinds_name_each_earlier_event_by_its_letter()
    {
        IReadOnlyList<OrderEvent> log =
        [
            new OrderPlaced(Guid.NewGuid(), "o-1", 1, At, "u-1", [], 0m, null, null),
            new OrderPaid(Guid.NewGuid(), "o-1", 2, At, "u-1", "p-1", 0m, [], null, null),
            Shipped(null),
        ];

        Assert.Equal("", OrderEventKinds.Of(log, 0));
        Assert.Equal("PAS", OrderEventKinds.Of(log, 3));
        Assert.Equal("AC", HandlesOnlyAttribute.KindsOf(typeof(Grains.Subscribers.CouponSubscriber)));
        Assert.Null(HandlesOnlyAttribute.KindsOf(typeof(Grains.Subscribers.OrderSyncSubscriber)));
    }
}
