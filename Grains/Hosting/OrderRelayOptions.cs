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
    /// Most orders one shard holds (~80 bytes of its memory an order, more with orders' subscribers behind). A full shard
    /// refuses new marks, which fails the command with a retriable error: the order path slows down rather than accept
    /// work nobody would relay. Default 2,500 (160,000 undelivered orders in all).
    /// </summary>
    [Range(100, 12_000)]
    public int MaxPendingPerShard { get; set; } = 2_500;

    /// <summary>
    /// Orders a shard keeps in the record every mark rewrites before it seals them into a page record of their own
    /// (<c>ShardPages</c>): bounds the bytes of a mark's write (~80 an order) however many orders a backlog leaves held.
    /// Default 256.
    /// </summary>
    [Range(2, 1_000)]
    public int PageSize { get; set; } = 256;

    /// <summary>
    /// Whether a silo sends its orders' marks and its dispatchers' deliveries to each shard in batches (<c>RelayBatcher</c>:
    /// one call per shard at a time, the marks of a call stored with one write). Default true; false sends each as a call
    /// of its own, as before batching (for comparison, docs/BENCHMARKS.md).
    /// </summary>
    public bool Batch { get; set; } = true;

    /// <summary>
    /// With <see cref="Batch"/>: how long a delivery may wait for a mark to the same shard to ride with, before it goes
    /// in a call of its own with whatever else gathered. A delivery only saves its shard a settle check, so waiting is
    /// free; a mark never waits for this. Default 100 ms.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan DeliveredDelay { get; set; } = TimeSpan.FromMilliseconds(100);
}
