using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Client;
using OrderFlow.Contracts;
using OrderFlow.Grains.Backfill;
using OrderFlow.Grains.Orders;
using Orleans.Serialization;
using Xunit.Abstractions;

namespace OrderFlow.Tests;

/// <summary>The backfill's bookkeeping and the catalog's row sizes, without a cluster.</summary>
public sealed class BackfillBatchTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 10, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(30);

    [Fact]
    public void A_batch_with_no_failure_counts_every_entry_and_moves_the_cursor_to_where_the_walk_got()
    {
        var job = Running();
        var scanned = new BackfillCursor(3, 0, null);

        var verdict = BackfillBatch.Record(job,
        [
            Result("a", EntryOutcome.Reached, added: 4),
            Result("b", EntryOutcome.UpToDate),
            Result("c", EntryOutcome.Missing),
            Result("d", EntryOutcome.SkippedFinished),
            Result("e", EntryOutcome.Behind, added: 2),
            Result("f", EntryOutcome.Parked, added: 1),
        ], scanned, Now, GiveUpAfter);

        Assert.Equal(BatchVerdict.Continue, verdict);
        Assert.Equal((6L, 3L, 1L, 1L, 1L, 1L), (job.Processed, job.NeededWork, job.Missing, job.SkippedFinished, job.Behind, job.Parked));
        Assert.Equal(scanned, job.Cursor);
        Assert.Equal(100, job.Total);
    }

    [Fact]
    public void A_failed_entry_and_everything_after_it_are_done_again_and_counted_once()
    {
        var job = Running();

        var verdict = BackfillBatch.Record(job,
        [
            Result("a", EntryOutcome.Reached, added: 4),
            Result("b", EntryOutcome.Failed, error: "TimeoutException: no answer"),
            Result("c", EntryOutcome.Reached, added: 4),
        ], new BackfillCursor(5, 0, null), Now, GiveUpAfter);

        Assert.Equal(BatchVerdict.Retry, verdict);
        Assert.Equal((1L, 1L), (job.Processed, job.NeededWork));
        Assert.Equal("a", job.Cursor.After!.OrderId);
        Assert.Equal((Now, "order b: TimeoutException: no answer"), (job.FailingSince, job.LastError));

        // The retry starts at b: a is not counted again.
        Assert.Equal(BatchVerdict.Continue, BackfillBatch.Record(job,
            [Result("b", EntryOutcome.Reached, added: 4), Result("c", EntryOutcome.Reached, added: 4)], new BackfillCursor(5, 0, null), Now.AddSeconds(1), GiveUpAfter));
        Assert.Equal((3L, 3L, null, null), (job.Processed, job.NeededWork, job.FailingSince, job.LastError));
    }

    [Fact]
    public void A_job_stuck_at_one_place_for_longer_than_GiveUpAfter_fails_with_the_reason()
    {
        var job = Running();
        Assert.Equal(BatchVerdict.Retry, BackfillBatch.RecordFailure(job, "reading the order catalog: storage down", Now, GiveUpAfter));
        Assert.Equal(BatchVerdict.Retry, BackfillBatch.Record(job, [Result("a", EntryOutcome.Failed, error: "down")], job.Cursor, Now.AddMinutes(29), GiveUpAfter));
        Assert.Equal(Now, job.FailingSince);

        var verdict = BackfillBatch.Record(job, [Result("a", EntryOutcome.Failed, error: "down")], job.Cursor, Now.AddMinutes(30), GiveUpAfter);

        Assert.Equal(BatchVerdict.Failed, verdict);
        Assert.Equal((BackfillState.Failed, Now.AddMinutes(30)), (job.State, job.EndedAt));
        Assert.Equal("no progress since 2026-11-27 10:00:00Z: order a: down", job.Reason);
    }

    [Fact]
    public void A_batch_that_moves_on_restarts_the_give_up_clock()
    {
        var job = Running();
        BackfillBatch.RecordFailure(job, "down", Now, GiveUpAfter);

        var verdict = BackfillBatch.Record(job, [Result("a", EntryOutcome.UpToDate), Result("b", EntryOutcome.Failed, error: "down")], job.Cursor, Now.AddMinutes(40), GiveUpAfter);

        Assert.Equal(BatchVerdict.Retry, verdict);
        Assert.Equal(Now.AddMinutes(40), job.FailingSince);
    }

    [Fact]
    public void The_walk_past_the_last_shard_is_done_and_its_total_is_what_was_processed()
    {
        var job = Running();
        job.Processed = 120;

        var verdict = BackfillBatch.Record(job, [Result("a", EntryOutcome.Reached, added: 1)], new BackfillCursor(IOrderRelayGrain.Shards, 0, null), Now, GiveUpAfter);

        Assert.Equal(BatchVerdict.Done, verdict);
        Assert.Equal((BackfillState.Done, 121L, 121L, Now), (job.State, job.Processed, job.Total, job.EndedAt));
    }

    [Fact]
    public void A_new_run_starts_from_the_beginning_with_every_count_at_zero()
    {
        var job = Running();
        job.Processed = 7;
        job.Cursor = new BackfillCursor(9, 2, new CatalogEntry("x", Now));
        job.State = BackfillState.Failed;
        job.Reason = "gone";

        job.Begin(Now, includeFinished: true, total: 40, Now.AddHours(1));

        Assert.Equal((2, BackfillState.Running, 0L, 40L, BackfillCursor.Start, (string?)null), (job.Run, job.State, job.Processed, job.Total, job.Cursor, job.Reason));
        Assert.True(job.SameParameters(Now, true));
        Assert.True(job.SameParameters(Now.ToOffset(TimeSpan.FromHours(2)), true));
        Assert.False(job.SameParameters(null, true));
        Assert.False(job.SameParameters(Now, false));
    }

    [Fact]
    public void The_progress_line_shows_a_bar_the_counts_the_rate_and_the_time_left()
    {
        var progress = new BackfillProgress("audit", 1, BackfillState.Running, null, false, Now, null,
            Processed: 400, Total: 1_000, NeededWork: 380, Missing: 0, SkippedFinished: 20, Behind: 0, Parked: 0, Rate: 50, Reason: null, LastError: null);

        Assert.Equal("audit [########------------] 40 %  400/1,000  50/s  ETA 12 s  needed work 380", SubscriberCommands.ProgressLine(progress));
        Assert.EndsWith("retrying: order o-1: TimeoutException", SubscriberCommands.ProgressLine(progress with { LastError = "order o-1: TimeoutException" }));
        Assert.Contains("ETA 3.3 h", SubscriberCommands.ProgressLine(progress with { Total = 600_400 }));
        Assert.Contains("[####################] 100 %  1,000/1,000  50/s  needed", SubscriberCommands.ProgressLine(progress with { State = BackfillState.Done, Processed = 1_000 }));
    }

    /// <summary>The bounds the catalog's documentation states, measured with the serializer the storage providers use.</summary>
    [Fact]
    public void A_full_catalog_segment_of_the_longest_ids_stays_far_below_a_one_megabyte_row()
    {
        var serializer = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(CatalogSegmentState).Assembly))
            .BuildServiceProvider().GetRequiredService<Serializer>();
        int SegmentBytes(int idLength) => serializer.SerializeToArray(new CatalogSegmentState
        {
            Entries = Enumerable.Range(0, IOrderCatalogGrain.MaxSegmentSize)
                .Select(i => new CatalogEntry(i.ToString("D8", System.Globalization.CultureInfo.InvariantCulture).PadLeft(idLength, 'o'), Now.AddMilliseconds(i)))
                .ToList(),
        }).Length;
        int HeadBytes(int segments) => serializer.SerializeToArray(new CatalogHeadState
        {
            Closed = Enumerable.Range(0, segments).Select(i => new CatalogSegment(i, IOrderCatalogGrain.MaxSegmentSize, Now.AddHours(i), Now.AddHours(i + 1), false)).ToList(),
        }).Length;

        var (typical, longest) = (SegmentBytes(24), SegmentBytes(Ids.MaxLength));
        var perSegment = (HeadBytes(1_001) - HeadBytes(1)) / 1_000.0;
        output.WriteLine($"segment of {IOrderCatalogGrain.MaxSegmentSize} entries: {typical:N0} bytes with 24-character ids, {longest:N0} bytes with {Ids.MaxLength}-character ids");
        output.WriteLine($"head: {perSegment:0.#} bytes per closed segment");

        Assert.InRange(longest, 1, 400_000);
        Assert.InRange(perSegment, 1, 64);
    }

    private static BackfillJobState Running()
    {
        var job = new BackfillJobState();
        job.Begin(null, false, total: 100, Now);
        return job;
    }

    private static EntryResult Result(string orderId, EntryOutcome outcome, int added = 0, string? error = null)
    {
        var entry = new CatalogEntry(orderId, Now);
        return new EntryResult(entry, new BackfillCursor(0, 0, entry), outcome, added, error);
    }
}
