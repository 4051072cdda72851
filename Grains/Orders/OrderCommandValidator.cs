using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// Checks a command's own fields, before the order's state is looked at. Returns null when valid. Every id follows
/// <see cref="Ids"/>; every number and list has a bound; free text is bounded by <see cref="TextLimits"/>.
/// </summary>
internal static class OrderCommandValidator
{
    public const int MaxLines = 100;
    public const int MaxQuantity = 10_000;
    public const decimal MaxUnitPrice = 10_000_000m;

    public static string? ValidateOrderId(string orderId) => Ids.Problem(orderId, "order id");

    /// <summary>The order id of a placement: as <see cref="ValidateOrderId"/>, and not <c>.</c> or <c>..</c> (<see cref="Ids.NewIdProblem"/>).</summary>
    public static string? ValidateOrderId(string orderId, OrderCommand? command) =>
        command is PlaceOrder ? Ids.NewIdProblem(orderId, "order id") : ValidateOrderId(orderId);

    /// <summary>
    /// Checks a caller's command: its fields, and that its command id is not one the system keeps for its own commands
    /// (<see cref="OrderDecider.PaymentTimeoutCommandId"/>). A caller that used it on an order would make the system's
    /// cancellation a reuse of that id, refused: the order would never time out, and its payment would be taken late.
    /// </summary>
    public static string? Validate(OrderCommand? command) =>
        Validate(command, systemCommand: false);

    /// <summary>Checks a command; <paramref name="systemCommand"/>: the system's own (the payment timeout's cancellation).</summary>
    public static string? Validate(OrderCommand? command, bool systemCommand)
    {
        if (command is null)
        {
            return "command is missing";
        }

        if (!systemCommand && OrderDecider.IsReservedCommandId(command.CommandId))
        {
            return $"command id '{command.CommandId}' is reserved for the system's payment timeout";
        }

        return Ids.Problem(command.CommandId, "command id") ?? command switch
        {
            PlaceOrder place => ValidatePlace(place),
            PayOrder pay => Ids.Problem(pay.PaymentId, "payment id")
                ?? (pay.Amount <= 0 || pay.Amount > MaxLines * MaxQuantity * MaxUnitPrice || decimal.Round(pay.Amount, 2) != pay.Amount
                    ? "payment amount must be positive, in whole cents and at most the largest possible order total"
                    : null),
            CancelOrder cancel => TextLimits.Problem(cancel.Reason, "cancel reason", TextLimits.MaxReasonLength),
            _ => null,
        };
    }

    private static string? ValidatePlace(PlaceOrder place)
    {
        if (Ids.NewIdProblem(place.UserId, "user id") is { } user)
        {
            return user;
        }

        if (place.Items is null || place.Items.Count == 0)
        {
            return "an order needs at least one item";
        }

        if (place.Items.Count > MaxLines)
        {
            return $"an order holds at most {MaxLines} lines";
        }

        foreach (var line in place.Items)
        {
            if (line is null)
            {
                return "an item is missing";
            }

            if (Ids.NewIdProblem(line.Sku, "SKU") is { } sku)
            {
                return sku;
            }

            if (line.Quantity < 1 || line.Quantity > MaxQuantity)
            {
                return $"quantity of {line.Sku} must be between 1 and {MaxQuantity}";
            }

            if (line.UnitPrice <= 0 || line.UnitPrice > MaxUnitPrice || decimal.Round(line.UnitPrice, 2) != line.UnitPrice)
            {
                return $"unit price of {line.Sku} must be positive, at most {MaxUnitPrice} and in whole cents";
            }
        }

        return (place.CouponId is null ? null : Ids.NewIdProblem(place.CouponId, "coupon id"))
            ?? (place.ActivityId is null ? null : Ids.NewIdProblem(place.ActivityId, "activity id"));
    }
}
