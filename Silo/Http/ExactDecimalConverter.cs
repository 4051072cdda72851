using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>
/// Reads a JSON number into a <see cref="decimal"/> only when the decimal holds it exactly (<see cref="DecimalText"/>):
/// System.Text.Json rounds a number with more digits than a decimal keeps, so a payment of
/// 1.000000000000000000000000000001 was read as 1 and accepted for an order of 1. Such a number is a 400 like any
/// other malformed body, before any grain is called. Writes as System.Text.Json does.
/// </summary>
public sealed class ExactDecimalConverter : JsonConverter<decimal>
{
    public override decimal Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDecimal(out var value))
        {
            throw new JsonException("expected a number that fits a decimal");
        }

        var text = reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence) : Encoding.UTF8.GetString(reader.ValueSpan);
        return DecimalText.IsExact(text, value)
            ? value
            : throw new JsonException($"the number {Ids.Printable(text, 60)} has more digits than are kept exactly (at most 28 significant, 28 after the point)");
    }

    public override void Write(Utf8JsonWriter writer, decimal value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}
