using System.CommandLine;
using System.CommandLine.Parsing;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// The options of <c>bench</c>, both profiles' on the one command. Which of them a profile reads, and with which
/// default and range, is the profile's own (<see cref="BenchCommand.Settings"/>, <see cref="DurableBench.Settings"/>);
/// an option the chosen profile does not read is refused, as an unknown option is. Their values are read here and
/// not by parsers of their own: what is valid depends on <c>--profile</c>, so <c>bench</c>'s validator reads them all at once.
/// </summary>
public sealed class BenchOptions
{
    public const string Embedded = "embedded";
    public const string Azure = "azure";

    /// <summary>The default workload: the pipeline bench of each profile (<see cref="BenchCommand"/>, <see cref="DurableBench"/>).</summary>
    public const string Pipeline = "pipeline";

    /// <summary>Issue 11's measurements: reservations' cost, a flash-sale SKU, racing buyers, hot keys (<see cref="ConsistencyBench"/>).</summary>
    public const string Consistency = "consistency";

    /// <summary>Issue 14: the workload the brokers were measured on (<see cref="BenchCommand.RunBrokersAsync"/>), embedded only.</summary>
    public const string Brokers = "brokers";

    public Option<string> Profile { get; } = new("--profile")
    {
        Description = "embedded: Orleans' limits and the pipeline against them; azure: storage requests per event and durable throughput",
        HelpName = "embedded|azure",
        DefaultValueFactory = _ => Embedded,
    };

    public Option<string> Workload { get; } = new("--workload")
    {
        Description = "pipeline: the profile's pipeline bench (default); consistency: placements with vs without reservations, one hot SKU, " +
                      "racing buyers, hot stock and GMV ledgers (issue 11); brokers: 20,000 orders × 4 events, 128 flows, against the trivial " +
                      "baselines in the same run (issue 14, embedded only)",
        HelpName = "pipeline|consistency|brokers",
    };

    public Option<string> Orders { get; } = Number("--orders", "Orders per measured phase (default 1000, 10-1000000; azure: 200, 10-100000; --workload consistency: placements per round, default 2000, 100-1000000; --workload brokers: default 20000, 100-1000000)");

    public Option<string> Concurrency { get; } = Number("--concurrency", "Concurrent callers (default 64, 1-4096; azure: 16, 1-1024; --workload brokers: 128)");

    public Option<string> BaselineSeconds { get; } = Number("--baseline-seconds", "Seconds of each baseline measurement (default 5, 1-600)");

    public Option<string> LatencySeconds { get; } = Number("--latency-seconds", "Embedded only: seconds of each fixed-load latency phase (default 15, 1-600)");

    public Option<string> LoadPercent { get; } = Number("--load-percent", "Embedded only: the fixed load, in percent of the measured throughput (default 50, 1-100)");

    public Option<string> ScaleOrders { get; } = Number("--scale-orders", "Embedded only: orders of the scale phase, 0 skips it (default 100000, 0-1000000)");

    public Option<string> ScaleLifecycle { get; } = new("--scale-lifecycle")
    {
        Description = "Embedded only: the scale phase's orders: short (placed, cancelled: 2 events, so 100,000 fit the time budget; default) " +
                      "or full (placed, paid, shipped, received: 4 events, the unit of the memory goal)",
        HelpName = "short|full",
    };

    public Option<string> IdleSeconds { get; } = Number("--idle-seconds",
        "Embedded: seconds idle before memory is measured (default 70, 0-3600; at least the silo's in-memory stream cache window, OrderStreams:CacheEviction:DataMaxAgeInCache, 1 min); azure: seconds of the background measurement, and idle before each memory sample (default 10, 1-600); both at least the silo's OrderStreams:PullingAgent:StreamInactivityPeriod (./bench.sh: 10 s)");

    public Option<string> DrainTimeoutSeconds { get; } = Number("--drain-timeout-seconds", "Longest wait for the subscribers to catch up, in seconds (default 300; azure: 600; 1-3600)");

    public Option<string> FlashOrders { get; } = Number("--flash-orders",
        "Consistency only: placements on the one flash-sale SKU, 256 at once (default 5000, 100-1000000)");

    public Option<string> HotOrders { get; } = Number("--hot-orders",
        "Consistency only: orders placed and paid on one SKU and one activity, in windows of 1000 (a multiple of 1000; default 20000, 2000-1000000; azure: 2000, 2000-100000)");

    public Option<string> MemoryOrders { get; } = Number("--memory-orders",
        "Azure only: full orders of a last phase that measures the silo's memory per deactivated order (default 0: skipped; 0-100000; 2000 or more rise above the heap's noise)");

    public Option<string> Out { get; } = new("--out") { Description = "Folder of the JSON result (default artifacts)", HelpName = "DIR" };

    public Option<string> AzureStorage { get; } = new("--azure-storage")
    {
        Description = "Azure only: the emulator's connection string, for the raw emulator baseline",
        HelpName = "CONNECTION",
    };

    public Option<string[]> EmulatorPids { get; } = new("--emulator-pid")
    {
        Description = "Azure only: an emulator process whose CPU to report, as SERVICE=PID; repeatable",
        HelpName = "SERVICE=PID",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    public IEnumerable<Option> All =>
        [Profile, Workload, Orders, Concurrency, BaselineSeconds, LatencySeconds, LoadPercent, ScaleOrders, ScaleLifecycle, IdleSeconds, DrainTimeoutSeconds,
            FlashOrders, HotOrders, MemoryOrders, Out, AzureStorage, EmulatorPids];

    /// <summary>The chosen profile, <see cref="Embedded"/> or <see cref="Azure"/>, in any casing.</summary>
    public string ProfileOf(SymbolResult given)
    {
        // Null while the validator runs: the default is filled in after it.
        var text = given.GetValue(Profile) ?? Embedded;
        return text.ToLowerInvariant() is Embedded or Azure
            ? text.ToLowerInvariant()
            : throw new UsageException($"option --profile must be embedded or azure, was '{Ids.Printable(text)}'");
    }

    /// <summary>The chosen workload, <see cref="Pipeline"/> (the default), <see cref="Consistency"/> or <see cref="Brokers"/>, in any casing.</summary>
    public string WorkloadOf(SymbolResult given)
    {
        var text = given.GetValue(Workload) ?? Pipeline;
        return text.ToLowerInvariant() is Pipeline or Consistency or Brokers
            ? text.ToLowerInvariant()
            : throw new UsageException($"option --workload must be pipeline, consistency or brokers, was '{Ids.Printable(text)}'");
    }

    /// <summary>A whole-number option of the profile: its value in <paramref name="min"/>..<paramref name="max"/>, or <paramref name="fallback"/>.</summary>
    public static int Number(SymbolResult given, Option<string> option, int fallback, int min, int max) =>
        given.GetValue(option) is { } text ? CliValues.WholeNumber(text, option.Name, min, max) : fallback;

    /// <summary>Refuses every option given on the command line that <paramref name="profile"/> does not read.</summary>
    public void EnsureOnly(SymbolResult given, string profile, params Option[] read)
    {
        foreach (var option in All)
        {
            if (option != Profile && option != Workload && !read.Contains(option) && given.GetResult(option) is OptionResult { Implicit: false })
            {
                throw new UsageException($"option {option.Name} does not apply to bench --profile {profile}");
            }
        }
    }

    private static Option<string> Number(string name, string description) => new(name) { Description = description, HelpName = "N" };
}
