namespace OrderFlow.Contracts;

/// <summary>Where an order is in its life: placed → paid → shipped → received; cancelled only before shipping.</summary>
public enum OrderStatus
{
    None = 0,
    Placed = 1,
    Paid = 2,
    Shipped = 3,
    Received = 4,
    Cancelled = 5,
}

public static class OrderStatusExtensions
{
    /// <summary>Received and cancelled orders are finished: they accept no further command and produce no further event.</summary>
    public static bool IsFinal(this OrderStatus status) => status is OrderStatus.Received or OrderStatus.Cancelled;
}

/// <summary>Why a command was refused. A refused command writes nothing and publishes nothing.</summary>
public enum OrderErrorCode
{
    /// <summary>The command's own fields are invalid (missing ids, empty items, non-positive quantity or price...).</summary>
    InvalidCommand = 1,

    /// <summary>The command is valid but not allowed in the order's current status.</summary>
    IllegalTransition = 2,

    /// <summary>The order has never been placed.</summary>
    OrderNotFound = 3,

    /// <summary>The paid amount differs from the order total.</summary>
    AmountMismatch = 4,

    /// <summary>The command id was already used by a different kind of command on this order.</summary>
    CommandIdReused = 5,

    /// <summary>A line asks for more units of a SKU than it has available (the message names the SKU): nothing reserved.</summary>
    OutOfStock = 6,

    /// <summary>A line names a SKU that has no stock record (operators create it with <c>stock set</c>): nothing reserved.</summary>
    UnknownSku = 7,

    /// <summary>The coupon was never issued or has no use left: nothing reserved.</summary>
    CouponUnavailable = 8,

    /// <summary>The payment id already paid another order.</summary>
    PaymentIdReused = 9,

    /// <summary>
    /// A retriable refusal: too many placements in flight on one SKU or coupon, or too many orders awaiting payment in
    /// one payment deadline shard. The order was not written and what it reserved went back; retry later.
    /// </summary>
    TryLater = 10,

    /// <summary>The order was not paid within <c>Orders:PaymentTimeout</c>: it was cancelled and takes no payment.</summary>
    PaymentTimedOut = 11,
}

/// <summary>A typed, human-readable reason for refusing a command.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderError.v1")]
public sealed record OrderError(
    [property: Id(0)] OrderErrorCode Code,
    [property: Id(1)] string Message);

/// <summary>
/// The outcome of an order command. An accepted command names the sequence number of the event it produced;
/// repeating the same command id returns the same outcome with <see cref="Repeated"/> set and produces no event.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.CommandResult.v1")]
public sealed record CommandResult(
    [property: Id(0)] string OrderId,
    [property: Id(1)] bool Accepted,
    [property: Id(2)] long Sequence,
    [property: Id(3)] OrderStatus Status,
    [property: Id(4)] OrderError? Error,
    [property: Id(5)] bool Repeated)
{
    public static CommandResult Rejected(string orderId, OrderStatus status, OrderErrorCode code, string message) =>
        new(orderId, false, 0, status, new OrderError(code, message), false);

    /// <summary>Throws <see cref="OrderRejectedException"/> when the command was refused; returns this result otherwise.</summary>
    public CommandResult EnsureAccepted() =>
        Accepted ? this : throw new OrderRejectedException(OrderId, Error!.Code, Error.Message);
}

/// <summary>Thrown by <see cref="CommandResult.EnsureAccepted"/> for a refused command.</summary>
public sealed class OrderRejectedException(string orderId, OrderErrorCode code, string message)
    : Exception($"order {orderId}: {code}: {message}")
{
    public string OrderId { get; } = orderId;
    public OrderErrorCode Code { get; } = code;
}

/// <summary>A read-only view of an order.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderSnapshot.v1")]
public sealed record OrderSnapshot(
    [property: Id(0)] string OrderId,
    [property: Id(1)] OrderStatus Status,
    [property: Id(2)] string? UserId,
    [property: Id(3)] IReadOnlyList<OrderLine> Items,
    [property: Id(4)] decimal Total,
    [property: Id(5)] decimal PaidAmount,
    [property: Id(6)] string? CouponId,
    [property: Id(7)] string? ActivityId,
    [property: Id(8)] long LastSequence,
    [property: Id(9)] long PublishedSequence,
    [property: Id(10)] string? PublishError = null,
    [property: Id(11)] DateTimeOffset? PublishFailingSince = null);

/// <summary>
/// The single writer of one order (key = order id). It validates each command, assigns the next per-order
/// sequence number, writes the event and the new state in one write (its outbox), then publishes the event
/// to the order's stream.
/// </summary>
[Alias("orders.IOrderGrain")]
[ClientCallable]
public interface IOrderGrain : IGrainWithStringKey
{
    [Alias("Place")] Task<CommandResult> PlaceAsync(PlaceOrder command);
    [Alias("Pay")] Task<CommandResult> PayAsync(PayOrder command);
    [Alias("Ship")] Task<CommandResult> ShipAsync(ShipOrder command);
    [Alias("ConfirmReceipt")] Task<CommandResult> ConfirmReceiptAsync(ConfirmReceipt command);
    [Alias("Cancel")] Task<CommandResult> CancelAsync(CancelOrder command);

    [Alias("Get")] Task<OrderSnapshot> GetAsync();

    /// <summary>The order's own event log after <paramref name="afterSequence"/>, in order: used for gap repair and backfill.</summary>
    [Alias("GetEvents")] Task<IReadOnlyList<OrderEvent>> GetEventsAsync(long afterSequence);
}
