namespace OrderFlow.Contracts;

/// <summary>One line of an order: a SKU, how many, and the price of one.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderLine.v1")]
public sealed record OrderLine(
    [property: Id(0)] string Sku,
    [property: Id(1)] int Quantity,
    [property: Id(2)] decimal UnitPrice);

/// <summary>
/// Base of every order command. <see cref="CommandId"/> makes a command idempotent: sending the same
/// command id again returns the first result and produces no second event.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.OrderCommand.v1")]
public abstract record OrderCommand([property: Id(0)] string CommandId);

/// <summary>Places a new order.</summary>
[GenerateSerializer, Immutable, Alias("orders.PlaceOrder.v1")]
public sealed record PlaceOrder(
    string CommandId,
    [property: Id(1)] string UserId,
    [property: Id(2)] IReadOnlyList<OrderLine> Items,
    [property: Id(3)] string? CouponId = null,
    [property: Id(4)] string? ActivityId = null) : OrderCommand(CommandId);

/// <summary>Records the payment of a placed order. The amount must equal the order total.</summary>
[GenerateSerializer, Immutable, Alias("orders.PayOrder.v1")]
public sealed record PayOrder(
    string CommandId,
    [property: Id(1)] string PaymentId,
    [property: Id(2)] decimal Amount) : OrderCommand(CommandId);

/// <summary>Ships a paid order.</summary>
[GenerateSerializer, Immutable, Alias("orders.ShipOrder.v1")]
public sealed record ShipOrder(string CommandId) : OrderCommand(CommandId);

/// <summary>Confirms that the buyer received a shipped order.</summary>
[GenerateSerializer, Immutable, Alias("orders.ConfirmReceipt.v1")]
public sealed record ConfirmReceipt(string CommandId) : OrderCommand(CommandId);

/// <summary>Cancels an order that has not been shipped yet.</summary>
[GenerateSerializer, Immutable, Alias("orders.CancelOrder.v1")]
public sealed record CancelOrder(
    string CommandId,
    [property: Id(1)] string? Reason = null) : OrderCommand(CommandId);
