using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Fault-injection drills, bound from the <c>Drills</c> configuration section, keyed by subscriber name.
/// All off by default. They let operators and tests rehearse failures on a real silo:
/// <code>
/// "Drills": { "points": { "FailureRate": 0.2 }, "sms": { "ExtraDelayMs": 200, "OrderIdPrefix": "slow-" } }
/// </code>
/// </summary>
public sealed class DrillOptions : Dictionary<string, SubscriberDrill>
{
    public const string SectionName = "Drills";

    public DrillOptions() : base(StringComparer.OrdinalIgnoreCase)
    {
    }
}

/// <summary>One subscriber's drill.</summary>
public sealed class SubscriberDrill
{
    /// <summary>Probability (0..1) that a handler attempt fails with a transient error.</summary>
    public double FailureRate { get; set; }

    /// <summary>Event kind (e.g. <c>OrderPaid</c>) whose handling always fails: a poison message.</summary>
    public string? FailEventKind { get; set; }

    /// <summary>Extra time each handler attempt takes, in milliseconds.</summary>
    public int ExtraDelayMs { get; set; }

    /// <summary>When set, the drill only touches orders whose id starts with this prefix.</summary>
    public string? OrderIdPrefix { get; set; }

    public bool Applies(string orderId) =>
        string.IsNullOrEmpty(OrderIdPrefix) || orderId.StartsWith(OrderIdPrefix, StringComparison.Ordinal);
}

/// <summary>Thrown by a drill in place of a real handler failure.</summary>
public sealed class DrillFailureException(string message) : Exception(message);

/// <summary>
/// The drills in force on this silo. Starts from configuration (and follows its reloads); tests and
/// operators on the silo can also set or clear a drill at run time.
/// </summary>
public sealed class DrillBoard
{
    private readonly ConcurrentDictionary<string, SubscriberDrill> _drills = new(StringComparer.OrdinalIgnoreCase);

    public DrillBoard(IOptionsMonitor<DrillOptions> options)
    {
        Load(options.CurrentValue);
        options.OnChange(Load);
    }

    public void Set(string subscriber, SubscriberDrill drill) => _drills[subscriber] = drill;

    public void Clear(string subscriber) => _drills.TryRemove(subscriber, out _);

    public bool AnyActive => !_drills.IsEmpty;

    /// <summary>Applies the subscriber's drill to one handler attempt: waits and/or throws as configured.</summary>
    public async Task ApplyAsync(string subscriber, OrderEvent evt, CancellationToken cancellationToken)
    {
        if (_drills.IsEmpty || !_drills.TryGetValue(subscriber, out var drill) || !drill.Applies(evt.OrderId))
        {
            return;
        }

        if (drill.ExtraDelayMs > 0)
        {
            await Task.Delay(drill.ExtraDelayMs, cancellationToken);
        }

        if (string.Equals(drill.FailEventKind, evt.Kind, StringComparison.OrdinalIgnoreCase))
        {
            throw new DrillFailureException($"drill: {subscriber} always fails {evt.Kind}");
        }

        if (drill.FailureRate > 0 && Random.Shared.NextDouble() < drill.FailureRate)
        {
            throw new DrillFailureException($"drill: {subscriber} transient failure (rate {drill.FailureRate:0.##})");
        }
    }

    private void Load(DrillOptions options)
    {
        _drills.Clear();
        foreach (var (name, drill) in options)
        {
            _drills[name] = drill;
        }
    }
}
