using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>The outbox relay (section <c>OrderRelay</c>): how often each shard looks for undelivered work, and how much it takes on.</summary>
public sealed class OrderRelayOptions
{
    public const string SectionName = "OrderRelay";

    /// <summary>How often an active shard looks for orders due a settle check. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long after its mark an order is first checked: the normal path (publish, deliver) gets this long first. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan SettleAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Most settle requests one shard sends per period: the relay's cost per period is bounded by this. Default 100.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 100;

    /// <summary>Longest wait between two checks of an order that is still not settled (the wait doubles per check). Default 2 min.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan MaxRecheck { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Most orders one shard holds (its state is one storage row: ~80 bytes each, so 10,000 stay far below Azure
    /// Table's 1 MB). A full shard refuses new marks, which fails the command with a retriable error: the order path
    /// slows down rather than accept work nobody would relay. Default 10,000 (640,000 undelivered orders in all).
    /// </summary>
    [Range(100, 12_000)]
    public int MaxPendingPerShard { get; set; } = 10_000;
}
