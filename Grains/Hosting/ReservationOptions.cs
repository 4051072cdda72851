using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>The reservation check-back (section <c>Reservations</c>): when a SKU or coupon asks an order about a reservation it never confirmed.</summary>
public sealed class ReservationOptions
{
    public const string SectionName = "Reservations";

    /// <summary>
    /// How long a reservation may stay unconfirmed before its key asks the order what became of the placement. A
    /// placement confirms right after its write, so only placements whose silo died (or whose confirmation was lost)
    /// wait this long; their units are unavailable meanwhile. Default 30 s (RocketMQ checks a half message after 60 s).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan CheckBackAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a key with unconfirmed reservations looks for ones due a check-back. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan CheckPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most check-backs one key has out at a time. Default 32.</summary>
    [Range(1, 1_000)]
    public int MaxChecksInFlight { get; set; } = 32;
}
