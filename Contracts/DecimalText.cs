using System.Globalization;

namespace OrderFlow.Contracts;

/// <summary>
/// Whether a number's text is exactly the <see cref="decimal"/> it parsed to. Parsing rounds a number with more
/// significant digits than a decimal keeps (28–29), or a scale beyond 28, without a word: "1.000000000000000000000000000001"
/// read as 1 and passed the whole-cents check (red-team finding). The HTTP API and the CLI refuse such text instead.
/// </summary>
public static class DecimalText
{
    /// <summary>True when <paramref name="text"/> (digits, an optional sign, point and exponent) denotes exactly <paramref name="parsed"/>.</summary>
    public static bool IsExact(ReadOnlySpan<char> text, decimal parsed) =>
        Canonical(text) is { } literal && Canonical(parsed.ToString(CultureInfo.InvariantCulture)) is { } value && literal == value;

    /// <summary>The number as (negative, significant digits, exponent) with value = ±0.DIGITS × 10^exponent; zero is (false, "", 0); null if not a number's text.</summary>
    private static (bool Negative, string Digits, long Exponent)? Canonical(ReadOnlySpan<char> text)
    {
        var i = 0;
        var negative = false;
        if (i < text.Length && text[i] is '-' or '+')
        {
            negative = text[i] == '-';
            i++;
        }

        var digits = new System.Text.StringBuilder(text.Length);
        long point = -1;
        for (; i < text.Length && text[i] is not ('e' or 'E'); i++)
        {
            if (text[i] == '.' && point < 0)
            {
                point = digits.Length;
            }
            else if (char.IsAsciiDigit(text[i]))
            {
                digits.Append(text[i]);
            }
            else
            {
                return null;
            }
        }

        var exponent = 0L;
        if (i < text.Length && !long.TryParse(text[(i + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out exponent))
        {
            return null;
        }

        if (point < 0)
        {
            point = digits.Length;
        }

        var (start, end) = (0, digits.Length);
        while (start < end && digits[start] == '0')
        {
            start++;
            point--;
        }

        while (end > start && digits[end - 1] == '0')
        {
            end--;
        }

        return start == end ? (false, "", 0) : (negative, digits.ToString(start, end - start), point + exponent);
    }
}
