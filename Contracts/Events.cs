namespace OrderFlow.Contracts;

/// <summary>
/// Base of every order event. Each event carries its own identity: a unique event id, the order id,
/// the per-order sequence number (1, 2, 3, ... with no gaps) and when it happened.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.OrderEvent.v1")]
public abstract record OrderEvent(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] string OrderId,
    [property: Id(2)] long Sequence,
    [property: Id(3)] DateTimeOffset OccurredAt)
{
    /// <summary>A short, stable name of the event kind, used in drills, dead letters and logs.</summary>
    public string Kind => GetType().Name;

    /// <summary>True for the event that ends an order (received or cancelled): no event follows it.</summary>
    public bool IsFinal => this is OrderReceived or OrderCancelled;

    /// <summary>
    /// The W3C <c>traceparent</c> of the command that produced the event (its span in the order grain), stored with the
    /// event so every later hop — publish, an outbox retry, the relay, a subscriber catching up from the order's log —
    /// continues that trace. Null when telemetry was off, and in events stored before it was carried (a field added
    /// under a new id: older records and messages read as null). Not part of the event's meaning: no rule reads it.
    /// </summary>
    [Id(4)] public string? TraceParent { get; init; }

    /// <summary>
    /// The kinds of the order's earlier events, sequences 1 to <see cref="Sequence"/> − 1, one letter each
    /// (<see cref="OrderEventKinds"/>): set on the copy the order publishes, never stored in its log. It lets the order's
    /// dispatcher leave out a subscriber for an event kind it does nothing for, and that subscriber step over such events
    /// when a later one arrives, without reading the order's log. Null (an event published before it was carried, or
    /// read from the log) means "unknown": every subscriber is then handed the event and no step is taken over a gap.
    /// </summary>
    [Id(5)] public string? EarlierKinds { get; init; }

    /// <summary>This event's <see cref="EarlierKinds"/> if it has one for every earlier sequence, else null.</summary>
    public string? KnownEarlierKinds => EarlierKinds is { } kinds && kinds.Length == Sequence - 1 ? kinds : null;
}

/// <summary>One letter per event kind, for <see cref="OrderEvent.EarlierKinds"/>; '?' for a kind it does not know.</summary>
public static class OrderEventKinds
{
    public static char CodeOf(Type eventType) =>
        eventType == typeof(OrderPlaced) ? 'P'
        : eventType == typeof(OrderPaid) ? 'A'
        : eventType == typeof(OrderShipped) ? 'S'
        : eventType == typeof(OrderReceived) ? 'R'
        : eventType == typeof(OrderCancelled) ? 'C'
        : '?';

    /// <summary>The kinds of the first <paramref name="count"/> events of <paramref name="log"/>, in sequence order.</summary>
    public static string Of(IReadOnlyList<OrderEvent> log, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, log.Count);
        return string.Create(count, log, static (letters, events) =>
        {
            for (var i = 0; i < letters.Length; i++)
            {
                letters[i] = CodeOf(events[i].GetType());
            }
        });
    }
}

/// <summary>An order was placed.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderPlaced.v1")]
public sealed record OrderPlaced(
    Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt,
    [property: Id(4)] string UserId,
    [property: Id(5)] IReadOnlyList<OrderLine> Items,
    [property: Id(6)] decimal Total,
    [property: Id(7)] string? CouponId,
    [property: Id(8)] string? ActivityId) : OrderEvent(EventId, OrderId, Sequence, OccurredAt);

/// <summary>An order was paid. Carries what downstream systems need to apply the payment's effects.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderPaid.v1")]
public sealed record OrderPaid(
    Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt,
    [property: Id(4)] string UserId,
    [property: Id(5)] string PaymentId,
    [property: Id(6)] decimal Amount,
    [property: Id(7)] IReadOnlyList<OrderLine> Items,
    [property: Id(8)] string? CouponId,
    [property: Id(9)] string? ActivityId) : OrderEvent(EventId, OrderId, Sequence, OccurredAt);

/// <summary>A paid order was shipped.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderShipped.v1")]
public sealed record OrderShipped(
    Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt,
    [property: Id(4)] string UserId) : OrderEvent(EventId, OrderId, Sequence, OccurredAt);

/// <summary>The buyer confirmed receipt of a shipped order.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderReceived.v1")]
public sealed record OrderReceived(
    Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt,
    [property: Id(4)] string UserId) : OrderEvent(EventId, OrderId, Sequence, OccurredAt);

/// <summary>
/// An order was cancelled. When <see cref="WasPaid"/> is true every effect of the payment must be reversed;
/// the event carries the payment's details so a subscriber can do that without asking the order.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.OrderCancelled.v1")]
public sealed record OrderCancelled(
    Guid EventId, string OrderId, long Sequence, DateTimeOffset OccurredAt,
    [property: Id(4)] string UserId,
    [property: Id(5)] bool WasPaid,
    [property: Id(6)] decimal RefundAmount,
    [property: Id(7)] IReadOnlyList<OrderLine> Items,
    [property: Id(8)] string? CouponId,
    [property: Id(9)] string? ActivityId,
    [property: Id(10)] string? Reason) : OrderEvent(EventId, OrderId, Sequence, OccurredAt);
