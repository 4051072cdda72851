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
    /// How often an order past its deadline is asked again while it stays unpaid and uncancelled (a cancellation whose
    /// write failed, or an ask that came early by the silos' clock difference). Default 1 min.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often a payment deadline shard with deadlines looks for orders whose deadline has come: an unpaid order is
    /// cancelled at most this long after its deadline (plus the cancellation's own time). Default 1 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan CheckPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most orders one shard asks per round (a burst of deadlines is spread over rounds). Default 256.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 256;

    /// <summary>
    /// Most orders awaiting payment one of the 64 shards holds; a full shard refuses new placements of its orders with a
    /// retriable error, before anything is written. The bound is on the shard's memory (~100 bytes an order with a
    /// short id), not on any one record: deadlines are stored in pages of at most <see cref="DeadlinePageSize"/>.
    /// Default 25,000 (1,600,000 orders awaiting payment in all).
    /// </summary>
    [Range(100, 1_000_000)]
    public int MaxAwaitingPaymentPerShard { get; set; } = 25_000;

    /// <summary>
    /// Deadlines a shard keeps in its open record before it seals them into a page record of their own: every placement
    /// rewrites the open record, so this bounds the bytes of that write (~40 an order with a short id, ~170 with a
    /// 128-character one) and of every page. Default 256.
    /// </summary>
    [Range(2, 1_000)]
    public int DeadlinePageSize { get; set; } = 256;
}
