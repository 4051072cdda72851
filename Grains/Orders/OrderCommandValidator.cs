using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>Checks a command's own fields, before the order's state is looked at. Returns null when valid.</summary>
internal static class OrderCommandValidator
{
    public const int MaxIdLength = 128;
    public const int MaxLines = 100;
    public const int MaxQuantity = 10_000;
    public const decimal MaxUnitPrice = 10_000_000m;

    public static string? ValidateOrderId(string orderId) =>
        IsValidId(orderId) ? null : $"order id must be 1-{MaxIdLength} characters without whitespace";

    public static string? Validate(OrderCommand? command)
    {
        if (command is null)
        {
            return "command is missing";
        }

        if (!IsValidId(command.CommandId))
        {
            return $"command id must be 1-{MaxIdLength} characters without whitespace";
        }

        return command switch
        {
            PlaceOrder place => ValidatePlace(place),
            PayOrder pay when !IsValidId(pay.PaymentId) => "payment id must be 1-128 characters without whitespace",
            PayOrder pay when pay.Amount <= 0 => "payment amount must be positive",
            _ => null,
        };
    }

    private static string? ValidatePlace(PlaceOrder place)
    {
        if (!IsValidId(place.UserId))
        {
            return "user id must be 1-128 characters without whitespace";
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
            if (line is null || !IsValidId(line.Sku))
            {
                return "every item needs a SKU of 1-128 characters without whitespace";
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

        if (place.CouponId is not null && !IsValidId(place.CouponId))
        {
            return "coupon id, when given, must be 1-128 characters without whitespace";
        }

        if (place.ActivityId is not null && !IsValidId(place.ActivityId))
        {
            return "activity id, when given, must be 1-128 characters without whitespace";
        }

        return null;
    }

    private static bool IsValidId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxIdLength && !id.Any(char.IsWhiteSpace);
}
