using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// How long a placed order waits for its payment (section <c>Orders</c>). An order still unpaid when
/// <see cref="PaymentTimeout"/> has passed since its <c>OrderPlaced</c> is cancelled by the system (reason
/// "payment timeout"), and a payment that comes later is refused with <c>PaymentTimedOut</c>.
/// </summary>
public sealed class OrderTimeoutOptions
{
    public const string SectionName = "Orders";

    /// <summary>How long after placement an unpaid order is cancelled. Default 30 min.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan PaymentTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// How often the order's payment-timeout reminder comes back when a tick could not cancel the order (storage
    /// down, or the tick came early by the silos' clock difference). It is the reminder's period, so it must be at
    /// least Orleans' <c>ReminderOptions.MinimumReminderPeriod</c> (1 min by default); checked at start-up. Default 1 min.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromMinutes(1);
}
