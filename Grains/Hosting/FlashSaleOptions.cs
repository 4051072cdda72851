using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>Flash sales (section <c>FlashSales</c>): the drain's pace and how fresh each silo's view of a sale is.</summary>
public sealed class FlashSaleOptions
{
    public const string SectionName = "FlashSales";

    /// <summary>How often the drainer looks for tokens and tickets. Default 10 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.005", "00:00:01")]
    public TimeSpan DrainTick { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// The most the drain may catch up at once after a late or slow tick, as time at the rate (plus one order). Whatever
    /// it is, no span of the drainer's launches shorter than a second holds more than the cap
    /// (<see cref="FlashSales.DrainPacer"/>). Default 250 ms.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:01")]
    public TimeSpan BurstWindow { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How old a silo's cached view of a sale (started, sold out) may be before its next buyer refreshes it. Default
    /// 500 ms: within a second of exhaustion every silo answers sold out by itself.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:10")]
    public TimeSpan CacheFor { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Period of the reminder a drainer holds while tickets wait: it brings the drain back after its silo died (a shard
    /// queuing a ticket, or a buyer asking about one, wakes it sooner). At least Orleans' minimum reminder period. Default 1 min.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan WakePeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Orders the drainer has in flight at most (one tick's burst is capped by it too). Default 512.</summary>
    [Range(1, 10_000)]
    public int MaxInFlight { get; set; } = 512;
}
