using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// How a subscriber retries a handler that failed for a transient infrastructure reason (storage down or busy, a silo
/// unreachable, a timeout; see <see cref="Messaging.FailureClassifier"/>), bound from <c>OrderMessaging:TransientRetry</c>
/// and validated when the silo starts. Such a failure says nothing about the event, so it does not spend the handler's
/// attempts (<see cref="RetryPolicy"/>): the event is retried on this schedule until the infrastructure is back. Only once
/// the head event has been failing transiently for <see cref="GiveUpAfter"/> does each further failure count as an
/// attempt, and the normal retry and park rules take over.
/// </summary>
public sealed class TransientRetryOptions : IValidatableObject
{
    public const string SectionName = OrderMessagingOptions.SectionName + ":TransientRetry";

    /// <summary>Delay after the first transient failure; it doubles per failure up to <see cref="MaxBackoff"/>, half of it random. Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between transient retries. Default 30 s: an outage's end is noticed within 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the head event may fail transiently before its failures count as attempts. Default 30 min: longer than
    /// a storage or network incident usually lasts, short enough that an order stuck on a broken dependency is parked
    /// (after the normal retries, 4 to 8.5 min with the default policy) and shows up in <c>deadletters list</c> within
    /// the hour.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "7.00:00:00")]
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromMinutes(30);

    public TimeSpan BackoffAfter(int transientFailures, Random random) =>
        RetryPolicy.EqualJitter(InitialBackoff, MaxBackoff, transientFailures, random);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MaxBackoff < InitialBackoff)
        {
            yield return new ValidationResult(
                $"TransientRetry: MaxBackoff must be at least InitialBackoff (were {MaxBackoff}, {InitialBackoff}).", [nameof(MaxBackoff)]);
        }
    }
}
