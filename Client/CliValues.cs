using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>A bad command line: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// How the CLI reads each kind of value. Strict on purpose, so that a typo is refused instead of sent as something
/// else: ids in the one alphabet of <see cref="Ids"/>; numbers in invariant digits with no sign, exponent or thousands
/// separator (<c>19,90</c> would otherwise read as 1990.00); amounts in whole cents. Each reader is a plain function
/// that throws <see cref="UsageException"/>; the option and argument factories below run it while System.CommandLine
/// parses, so a bad value is a parse error and no command runs, let alone connects.
/// </summary>
public static class CliValues
{
    /// <summary>Longest run id the demo takes: the ids it derives from it (<c>pay-RUN-o123456</c>) must stay within <see cref="Ids.MaxLength"/>.</summary>
    public const int MaxRunIdLength = 64;

    public static string Id(string text, string what) => Ids.Problem(text, what) is { } problem ? throw new UsageException(problem) : text;

    /// <summary>An id that names something anew (an order placed, a SKU stocked, a coupon issued, a sale created): as <see cref="Id"/>, and not <c>.</c> or <c>..</c>.</summary>
    public static string NewId(string text, string what) => Ids.NewIdProblem(text, what) is { } problem ? throw new UsageException(problem) : text;

    public static int WholeNumber(string text, string option, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"option {option} must be a whole number from {min} to {max}, was '{Ids.Printable(text)}'");

    /// <summary>
    /// A count of units or uses: digits only (no sign, fraction or thousands separator: <c>1,000</c> is refused rather
    /// than read as 1000 or 1), then bounded by <paramref name="problem"/> (<see cref="InventoryLimits"/>).
    /// </summary>
    public static long Count(string text, string what, Func<long, string?> problem)
    {
        if (text.Length == 0 || !text.All(char.IsAsciiDigit))
        {
            throw new UsageException($"{what} must be a whole number in digits only (no sign, '.' or thousands separator), was '{Ids.Printable(text)}'");
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            throw new UsageException($"{what} is out of range, was '{Ids.Printable(text)}'");
        }

        return problem(value) is { } bound ? throw new UsageException(bound) : value;
    }

    public static long Sequence(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= 1
            ? value
            : throw new UsageException($"sequence must be a positive whole number, was '{Ids.Printable(text)}'");

    public static decimal Amount(string text, string what) =>
        decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) && value > 0 && decimal.Round(value, 2) == value
            && DecimalText.IsExact(text, value) // not "1.0000000000000000000000000000049", which parsing rounds to 1.00
            ? value
            : throw new UsageException($"{what} must be a positive amount in whole cents, digits and '.' only (e.g. 19.90), was '{Ids.Printable(text)}'");

    /// <summary><c>SKU:QTY:PRICE</c>, e.g. <c>sku-1:2:19.90</c>. The order checks the upper bounds.</summary>
    public static OrderLine Item(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 3)
        {
            throw new UsageException($"--item must be SKU:QTY:PRICE (e.g. sku-1:2:19.90), was '{Ids.Printable(text)}'");
        }

        var sku = NewId(parts[0], "item SKU");
        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var quantity) || quantity < 1)
        {
            throw new UsageException($"item quantity must be a whole number of at least 1, was '{Ids.Printable(parts[1])}' in --item {Ids.Printable(text)}");
        }

        return new OrderLine(sku, quantity, Amount(parts[2], $"item price in --item {Ids.Printable(text)}"));
    }

    /// <summary>An instant in ISO 8601 with an explicit offset (e.g. 2026-11-27T10:00:00Z): a local time without a zone is ambiguous.</summary>
    public static DateTimeOffset Instant(string text) =>
        DateTimeOffset.TryParseExact(text, ["yyyy-MM-ddTHH:mm:ssK", "yyyy-MM-ddTHH:mm:ss.FFFFFFFK", "yyyy-MM-ddTHH:mmK"], CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal, out var instant) && (text.EndsWith('Z') || text.Contains('+') || text.LastIndexOf('-') > 9)
            ? instant
            : throw new UsageException($"TIME must be ISO 8601 with a zone, e.g. 2026-11-27T10:00:00Z, was '{Ids.Printable(text)}'");

    public static string Reason(string text) =>
        TextLimits.Problem(text, "cancel reason", TextLimits.MaxReasonLength) is { } problem ? throw new UsageException(problem) : text;

    public static string RunId(string text) =>
        text.Length > MaxRunIdLength ? throw new UsageException($"run id must be at most {MaxRunIdLength} characters, was {text.Length}") : Id(text, "run id");

    /// <summary>A positional id, checked by <see cref="Id"/> (<see cref="NewId"/> when it names something anew).</summary>
    public static Argument<string> IdArgument(string name, string what, string description, bool newName = false) =>
        new(name) { Description = description, CustomParser = result => Read(result, text => newName ? NewId(text, what) : Id(text, what)) };

    /// <summary>An id option, checked by <see cref="Id"/> (<see cref="NewId"/> when it names something anew); absent means null unless <paramref name="required"/>.</summary>
    public static Option<string> IdOption(string name, string what, string description, bool required = false, bool newName = false) =>
        Single(name, "ID", description, text => newName ? NewId(text, what) : Id(text, what), required);

    /// <summary>A whole-number option with a default and a range, checked by <see cref="WholeNumber"/>.</summary>
    public static Option<int> NumberOption(string name, int fallback, int min, int max, string description) =>
        new(name)
        {
            Description = $"{description} ({min}-{max})",
            HelpName = "N",
            DefaultValueFactory = _ => fallback,
            CustomParser = result => Read(result, text => WholeNumber(text, name, min, max)),
        };

    /// <summary>An option given at most once, its one value read by <paramref name="read"/>.</summary>
    public static Option<T> Single<T>(string name, string helpName, string description, Func<string, T> read, bool required = false) =>
        new(name) { Description = description, HelpName = helpName, Required = required, CustomParser = result => Read(result, read) };

    /// <summary>Runs a reader on the one token System.CommandLine matched; its <see cref="UsageException"/> becomes a parse error.</summary>
    public static T? Read<T>(ArgumentResult result, Func<string, T> read) => ReadAll(result, tokens => read(tokens[^1]));

    /// <summary>Runs a reader on every token of a repeatable option or argument; its <see cref="UsageException"/> becomes a parse error.</summary>
    public static T? ReadAll<T>(ArgumentResult result, Func<IReadOnlyList<string>, T> read)
    {
        try
        {
            return read(result.Tokens.Select(token => token.Value).ToArray());
        }
        catch (UsageException ex)
        {
            result.AddError(ex.Message);
            return default;
        }
    }
}
