using System.Text;

namespace OrderFlow.Contracts;

/// <summary>
/// The one alphabet of every id the system accepts (order, command, user, SKU, coupon, activity, payment ids):
/// 1–128 characters of <c>A-Z a-z 0-9 . _ -</c>. Anything else is refused before any write, in every profile:
/// Azure Table storage folds <c>/ \ # ?</c> in keys to <c>_</c> (so <c>x/1</c> and <c>x_1</c> would share a row),
/// control characters are illegal in keys, and <c>:</c> separates the CLI's <c>--item SKU:QTY:PRICE</c>.
/// </summary>
public static class Ids
{
    public const int MaxLength = 128;

    /// <summary>How the alphabet reads in error messages.</summary>
    public const string Rule = "1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'";

    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// For an id that names something new (an order placed and the ids a placement brings, a SKU's stock or a coupon's uses
    /// set, a sale created): <see cref="Problem"/>, and not <c>.</c> or <c>..</c>, which an HTTP path normalizes away (the thing could be
    /// made through the CLI but never reached over HTTP). Ids already stored that way stay readable and usable.
    /// </summary>
    public static string? NewIdProblem(string? id, string what) =>
        Problem(id, what) ?? (id is "." or ".." ? $"{what} must not be '.' or '..' (an HTTP path cannot carry it)" : null);

    /// <summary>Null when <paramref name="id"/> is valid; otherwise a one-line reason naming <paramref name="what"/>.</summary>
    public static string? Problem(string? id, string what) =>
        IsValid(id) ? null : id is null ? $"{what} is missing" : $"{what} must be {Rule}, was '{Printable(id)}'";

    /// <summary>
    /// Text safe to print on a terminal or in a log line: control and other non-printable characters become
    /// <c>\uXXXX</c>, and anything past <paramref name="max"/> characters is cut with an ellipsis.
    /// </summary>
    public static string Printable(string? text, int max = 64)
    {
        if (text is null)
        {
            return "";
        }

        var builder = new StringBuilder(Math.Min(text.Length, max) + 8);
        foreach (var c in text)
        {
            if (builder.Length >= max)
            {
                builder.Append('…');
                break;
            }

            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\u200e' or '\u200f' or '\u202a' or '\u202b' or '\u202c' or '\u202d' or '\u202e')
            {
                builder.Append($"\\u{(int)c:x4}");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }
}

/// <summary>Bounds of the free-text fields a command may carry (they travel inside events, so they bound event size).</summary>
public static class TextLimits
{
    /// <summary>Longest cancel reason, in characters.</summary>
    public const int MaxReasonLength = 500;

    /// <summary>Null when <paramref name="text"/> is absent or within bounds (no control characters); otherwise the reason.</summary>
    public static string? Problem(string? text, string what, int maxLength) =>
        text is null ? null
        : text.Length > maxLength ? $"{what} must be at most {maxLength} characters, was {text.Length}"
        : text.Any(char.IsControl) ? $"{what} must not contain control characters"
        : null;
}
