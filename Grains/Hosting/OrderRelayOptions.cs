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

    /// <summary>
    /// Most settle requests one shard has out at a time (sent, not yet answered): the relay's load is bounded by this
    /// times the 64 shards, and a slow cluster is never sent more than it answers. Default 32.
    /// </summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 32;

    /// <summary>Longest wait between two checks of an order that is still not settled (the wait doubles per check). Default 2 min.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan MaxRecheck { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Most orders one shard holds. Its state is one storage row (~80 bytes an order) and every mark rewrites it, so
    /// the bound keeps both the row (≤ 200 KB, far below Azure Table's 1 MB) and the cost of a mark under a backlog in
    /// check. A full shard refuses new marks, which fails the command with a retriable error: the order path slows
    /// down rather than accept work nobody would relay. Default 2,500 (160,000 undelivered orders in all).
    /// </summary>
    [Range(100, 12_000)]
    public int MaxPendingPerShard { get; set; } = 2_500;
}
