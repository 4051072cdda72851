using System.Globalization;

namespace OrderFlow.Client;

/// <summary>A bad command line: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Minimal parser: positional words plus <c>--name value</c> options (repeatable). Every option a command
/// reads is marked used; anything left over is an error, so a typo never silently does something else.
/// </summary>
public sealed class CliArguments
{
    private readonly List<string> _positional = [];
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public CliArguments(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                var name = arg[2..];
                string value;
                var eq = name.IndexOf('=');
                if (eq > 0)
                {
                    value = name[(eq + 1)..];
                    name = name[..eq];
                }
                else if (flags.Contains(name))
                {
                    value = "true";
                }
                else if (!e.MoveNext())
                {
                    throw new UsageException($"option --{name} needs a value");
                }
                else
                {
                    value = e.Current;
                }

                if (!_options.TryGetValue(name, out var values))
                {
                    _options[name] = values = [];
                }

                values.Add(value);
            }
            else
            {
                _positional.Add(arg);
            }
        }
    }

    public IReadOnlyList<string> Positional => _positional;

    public string Positional0(int index, string what) =>
        index < _positional.Count ? _positional[index] : throw new UsageException($"missing {what}");

    public IReadOnlyList<string> All(string name)
    {
        _used.Add(name);
        return _options.TryGetValue(name, out var values) ? values : [];
    }

    public string? Optional(string name)
    {
        var values = All(name);
        return values.Count switch
        {
            0 => null,
            1 => values[0],
            _ => throw new UsageException($"option --{name} given more than once"),
        };
    }

    public string Required(string name) => Optional(name) ?? throw new UsageException($"missing option --{name}");

    public bool Flag(string name) => Optional(name) is { } value && value != "false";

    public int Int(string name, int fallback, int min, int max)
    {
        var text = Optional(name);
        if (text is null)
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new UsageException($"option --{name} must be a whole number from {min} to {max}, was '{text}'");
        }

        return value;
    }

    public static decimal ParseDecimal(string text, string what) =>
        decimal.TryParse(text, NumberStyles.Number, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new UsageException($"{what} must be a number, was '{text}'");

    /// <summary>Fails on any option no command asked for, and on extra positional words.</summary>
    public void EnsureAllUsed(int positionalCount)
    {
        var unknown = _options.Keys.FirstOrDefault(name => !_used.Contains(name));
        if (unknown is not null)
        {
            throw new UsageException($"unknown option --{unknown}");
        }

        if (_positional.Count > positionalCount)
        {
            throw new UsageException($"unexpected argument '{_positional[positionalCount]}'");
        }
    }
}
