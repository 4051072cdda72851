using OrderFlow.Contracts;

namespace OrderFlow.Grains.Backfill;

/// <summary>
/// Where a backfill walk stands: the catalog shard, the segment within it, and the last entry dealt with in that
/// segment (null: none yet). A key, not an index, so orders added to a segment while the job walks it never shift
/// the position; an order added behind the cursor was placed after the job began and is delivered live.
/// </summary>
[GenerateSerializer, Immutable, Alias("backfill.BackfillCursor.v1")]
public sealed record BackfillCursor(
    [property: Id(0)] int Shard,
    [property: Id(1)] int Segment,
    [property: Id(2)] CatalogEntry? After)
{
    public static readonly BackfillCursor Start = new(0, 0, null);

    public bool AtEnd => Shard >= IOrderRelayGrain.Shards;

    public BackfillCursor NextSegment() => new(Shard, Segment + 1, null);

    public BackfillCursor NextShard() => new(Shard + 1, 0, null);
}

/// <summary>One subscriber's backfill job, in one record: its parameters, where it is, and what it has counted so far.</summary>
[GenerateSerializer, Alias("backfill.BackfillJobState.v1")]
public sealed class BackfillJobState
{
    /// <summary>How many jobs this subscriber has started (0: none ever).</summary>
    [Id(0)] public int Run { get; set; }

    /// <summary>Null until the first job starts.</summary>
    [Id(1)] public BackfillState? State { get; set; }

    [Id(2)] public DateTimeOffset? Since { get; set; }
    [Id(3)] public bool IncludeFinished { get; set; }
    [Id(4)] public DateTimeOffset StartedAt { get; set; }
    [Id(5)] public DateTimeOffset? EndedAt { get; set; }

    /// <summary>Why the job failed.</summary>
    [Id(6)] public string? Reason { get; set; }

    /// <summary>Stored after each batch: a crash repeats at most the batch after it.</summary>
    [Id(7)] public BackfillCursor Cursor { get; set; } = BackfillCursor.Start;

    [Id(8)] public long Processed { get; set; }
    [Id(9)] public long Total { get; set; }
    [Id(10)] public long NeededWork { get; set; }
    [Id(11)] public long Missing { get; set; }
    [Id(12)] public long SkippedFinished { get; set; }
    [Id(13)] public long Behind { get; set; }
    [Id(14)] public long Parked { get; set; }

    /// <summary>The latest failed batch's error, and since when the batch at the cursor has been failing (null: it is not).</summary>
    [Id(15)] public string? LastError { get; set; }
    [Id(16)] public DateTimeOffset? FailingSince { get; set; }

    /// <summary>Starts run <see cref="Run"/> + 1 from the catalog's beginning, every count at zero.</summary>
    public void Begin(DateTimeOffset? since, bool includeFinished, long total, DateTimeOffset now)
    {
        Run++;
        State = BackfillState.Running;
        Since = since;
        IncludeFinished = includeFinished;
        StartedAt = now;
        EndedAt = null;
        Reason = null;
        Cursor = BackfillCursor.Start;
        (Processed, Total, NeededWork, Missing, SkippedFinished, Behind, Parked) = (0, total, 0, 0, 0, 0, 0);
        LastError = null;
        FailingSince = null;
    }

    public bool SameParameters(DateTimeOffset? since, bool includeFinished) =>
        Since?.UtcTicks == since?.UtcTicks && IncludeFinished == includeFinished;
}
