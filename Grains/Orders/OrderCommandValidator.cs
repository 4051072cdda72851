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

    public static string? Validate(OrderCommand? command)
    {
        if (command is null)
        {
            return "command is missing";
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
        if (Ids.Problem(place.UserId, "user id") is { } user)
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

            if (Ids.Problem(line.Sku, "SKU") is { } sku)
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

        return (place.CouponId is null ? null : Ids.Problem(place.CouponId, "coupon id"))
            ?? (place.ActivityId is null ? null : Ids.Problem(place.ActivityId, "activity id"));
    }
}
