using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// What a command says, reduced to a short hash, stored with its command id: the same id with different content is
/// refused (<see cref="OrderErrorCode.CommandIdReused"/>), as an idempotency key is bound to its request body. The
/// content is normalized first, so 44.8 and 44.80 are the same amount.
/// </summary>
internal static class CommandFingerprint
{
    public static string Of(OrderCommand command)
    {
        var text = new StringBuilder(command.GetType().Name);
        void Field(string? value) => text.Append('|').Append(value?.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(value);
        switch (command)
        {
            case PlaceOrder place:
                Field(place.UserId);
                Field(place.CouponId);
                Field(place.ActivityId);
                foreach (var line in place.Items)
                {
                    Field(line.Sku);
                    Field(line.Quantity.ToString(CultureInfo.InvariantCulture));
                    Field(Normalize(line.UnitPrice));
                }

                break;
            case PayOrder pay:
                Field(pay.PaymentId);
                Field(Normalize(pay.Amount));
                break;
            case CancelOrder cancel:
                Field(cancel.Reason);
                break;
        }

        return Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())).AsSpan(0, 16));
    }

    /// <summary>A decimal without trailing zeros: 44.80 → "44.8", 10.00 → "10".</summary>
    private static string Normalize(decimal value) => (value / 1.0000000000000000000000000000m).ToString(CultureInfo.InvariantCulture);
}
