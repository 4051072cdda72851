using System.ComponentModel.DataAnnotations;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Settings of the order messaging pipeline, bound from the <c>OrderMessaging</c> configuration section and
/// validated when the silo starts.
/// </summary>
public sealed class OrderMessagingOptions : IValidatableObject
{
    public const string SectionName = "OrderMessaging";

    /// <summary>
    /// How an order's events reach its subscriber grains. <see cref="OrderFanOut.Dispatcher"/> (default): one stream
    /// delivery per event, to the order's dispatcher grain, which hands it to every subscriber grain of the order.
    /// <see cref="OrderFanOut.PerSubscriber"/>: one stream delivery per subscriber per event, each subscriber grain an
    /// implicit subscriber. Both keep every guarantee (docs/ARCHITECTURE.md); docs/BENCHMARKS.md has what each costs.
    /// </summary>
    public OrderFanOut FanOut { get; set; } = OrderFanOut.Dispatcher;

    /// <summary>The stream namespace orders publish on, for <see cref="FanOut"/>.</summary>
    public string StreamNamespace => FanOut == OrderFanOut.Dispatcher ? OrderStreams.DispatchNamespace : OrderStreams.Namespace;

    /// <summary>How often an order grain with unpublished events in its outbox tries again. Default 2 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan OutboxRetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a subscriber waits for a missing sequence before it reads the gap from the order's own event log.
    /// Default 30 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan GapRepairAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Largest serialized order event a command may produce, checked before the order's write. Azure Queue messages
    /// carry 64 KiB, base64-encoded (48 KiB of bytes) around the event; default 32 KiB leaves room for the envelope.
    /// </summary>
    [Range(1024, 48 * 1024)]
    public int MaxEventBytes { get; set; } = 32 * 1024;

    /// <summary>Retry policy of every subscriber that has no entry of its own in <see cref="SubscriberRetry"/>.</summary>
    [Required]
    public RetryPolicy Retry { get; set; } = new();

    /// <summary>Per-subscriber retry policies, keyed by subscriber name (e.g. <c>points</c>).</summary>
    public Dictionary<string, RetryPolicy> SubscriberRetry { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long the SMS weak-check key of an (order, message kind) lives. Default 24 h.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan SmsDedupeWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Most SMS dedupe keys one user's gateway holds in memory; the oldest go first. Default 1,024.</summary>
    [Range(16, 1_000_000)]
    public int SmsDedupeCapacity { get; set; } = 1024;

    public RetryPolicy RetryFor(string subscriber) =>
        SubscriberRetry.TryGetValue(subscriber, out var policy) ? policy : Retry;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (name, policy) in SubscriberRetry.Prepend(new("(default)", Retry)))
        {
            if (policy.MaxAttempts < 1 || policy.MaxAttempts > 100)
            {
                yield return new ValidationResult($"Retry policy {name}: MaxAttempts must be between 1 and 100, was {policy.MaxAttempts}.");
            }

            if (policy.InitialBackoff <= TimeSpan.Zero || policy.MaxBackoff < policy.InitialBackoff)
            {
                yield return new ValidationResult(
                    $"Retry policy {name}: InitialBackoff must be positive and MaxBackoff at least InitialBackoff (were {policy.InitialBackoff}, {policy.MaxBackoff}).");
            }
        }
    }
}

/// <summary>
/// Exponential backoff with jitter for one subscriber. Defaults: 10 attempts, 1 s first delay, 5 min cap —
/// the same shape as RocketMQ's 16 growing delays, but per subscriber and per order.
/// </summary>
public sealed class RetryPolicy
{
    public int MaxAttempts { get; set; } = 10;
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Delay before attempt <paramref name="failedAttempts"/> + 1: doubles each time up to the cap, then "equal
    /// jitter" keeps half of it and randomizes the other half, so many orders failing together do not retry in step.
    /// </summary>
    public TimeSpan BackoffAfter(int failedAttempts, Random random) => EqualJitter(InitialBackoff, MaxBackoff, failedAttempts, random);

    /// <summary>The delay after <paramref name="failures"/> failures: doubling from <paramref name="initial"/> up to <paramref name="max"/>, half of it random.</summary>
    public static TimeSpan EqualJitter(TimeSpan initial, TimeSpan max, int failures, Random random)
    {
        var exponent = Math.Min(failures - 1, 30);
        var raw = Math.Min(initial.TotalMilliseconds * Math.Pow(2, exponent), max.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(raw / 2 + random.NextDouble() * raw / 2);
    }
}

/// <summary>How an order's events reach its subscriber grains (<see cref="OrderMessagingOptions.FanOut"/>).</summary>
public enum OrderFanOut
{
    Dispatcher,
    PerSubscriber,
}
