using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// The backfill of a new subscriber (section <c>Backfill</c>): how fast a job walks the order catalog. A job takes at
/// most <see cref="BatchSize"/> orders every <see cref="Period"/> — 100 orders per second with the defaults, so about
/// three hours per million orders — and stores its cursor after each batch; raise both to go faster at the cost of load
/// on the orders, inboxes and storage that live traffic shares.
/// </summary>
public sealed class BackfillOptions
{
    public const string SectionName = "Backfill";

    /// <summary>Time between two batches of a running job. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan Period { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Most catalog entries one batch takes: the work lost with a crash is at most one batch, done again. Default 50.</summary>
    [Range(1, 1_000)]
    public int BatchSize { get; set; } = 50;

    /// <summary>Orders of one batch worked on at once (each is a read of the order and a call to one inbox). Default 8.</summary>
    [Range(1, 64)]
    public int Concurrency { get; set; } = 8;

    /// <summary>Longest wait before a failed batch is tried again (the wait doubles from <see cref="Period"/>). Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan MaxRetryWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the same batch may keep failing (storage down, an order that cannot be read) before the job is marked failed. Default 30 min.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromMinutes(30);
}
