using OrderFlow.Contracts;

namespace OrderFlow.Grains.Backfill;

/// <summary>What the backfill found for one catalog entry.</summary>
public enum EntryOutcome
{
    /// <summary>The subscriber had every event of the order already.</summary>
    UpToDate = 1,

    /// <summary>The subscriber took events from the order's log and reached its last one.</summary>
    Reached = 2,

    /// <summary>The entry names no order (its placement's write failed).</summary>
    Missing = 3,

    /// <summary>The order is finished and the job leaves finished orders alone.</summary>
    SkippedFinished = 4,

    /// <summary>The subscriber could not reach the last event (a failing handler; its own retries go on).</summary>
    Behind = 5,

    /// <summary>The subscriber is parked on this order: an operator's.</summary>
    Parked = 6,

    /// <summary>The order or the inbox could not be called; the entry is tried again.</summary>
    Failed = 7,
}

/// <summary>One catalog entry's outcome, with the cursor that points just past it.</summary>
public sealed record EntryResult(CatalogEntry Entry, BackfillCursor Past, EntryOutcome Outcome, int Added = 0, string? Error = null);

/// <summary>What a job does after a batch.</summary>
public enum BatchVerdict
{
    /// <summary>The next batch follows after the period.</summary>
    Continue = 1,

    /// <summary>The batch failed at its cursor; it is tried again after a wait.</summary>
    Retry = 2,

    /// <summary>The catalog is walked to its end.</summary>
    Done = 3,

    /// <summary>The batch at the cursor failed for longer than allowed.</summary>
    Failed = 4,
}

/// <summary>
/// The backfill's bookkeeping, with nothing of Orleans in it (tested by BackfillBatchTests): a batch counts and passes
/// only the entries before its first failure, so an entry that failed — and everything after it — is done again, and
/// no entry is counted twice. Doing an entry again is harmless: an inbox that already has the order's events takes
/// none (<see cref="IOrderSubscriberGrain.ReachAsync"/>).
/// </summary>
public static class BackfillBatch
{
    /// <summary>
    /// Records a batch in <paramref name="job"/>: counts and cursor for the entries before the first failure (the
    /// whole batch and on to <paramref name="scanned"/>, where the walk had got to, when none failed), then the
    /// failure if any, or the end of the walk.
    /// </summary>
    public static BatchVerdict Record(BackfillJobState job, IReadOnlyList<EntryResult> results, BackfillCursor scanned, DateTimeOffset now, TimeSpan giveUpAfter)
    {
        var passed = results.TakeWhile(r => r.Outcome != EntryOutcome.Failed).ToArray();
        foreach (var result in passed)
        {
            job.Processed++;
            job.NeededWork += result.Added > 0 ? 1 : 0;
            switch (result.Outcome)
            {
                case EntryOutcome.Missing:
                    job.Missing++;
                    break;
                case EntryOutcome.SkippedFinished:
                    job.SkippedFinished++;
                    break;
                case EntryOutcome.Behind:
                    job.Behind++;
                    break;
                case EntryOutcome.Parked:
                    job.Parked++;
                    break;
            }
        }

        // Orders placed since the start are walked too when the cursor has not passed their shard yet.
        job.Total = Math.Max(job.Total, job.Processed);
        if (passed.Length < results.Count)
        {
            var failed = results[passed.Length];
            if (passed.Length > 0)
            {
                job.Cursor = passed[^1].Past;
            }

            return Failure(job, $"order {failed.Entry.OrderId}: {failed.Error}", moved: passed.Length > 0, now, giveUpAfter);
        }

        job.Cursor = scanned;
        job.FailingSince = null;
        job.LastError = null;
        if (!scanned.AtEnd)
        {
            return BatchVerdict.Continue;
        }

        job.State = BackfillState.Done;
        job.EndedAt = now;
        job.Total = job.Processed;
        return BatchVerdict.Done;
    }

    /// <summary>Records a batch that failed before any entry was dealt with (the catalog could not be read).</summary>
    public static BatchVerdict RecordFailure(BackfillJobState job, string error, DateTimeOffset now, TimeSpan giveUpAfter) =>
        Failure(job, error, moved: false, now, giveUpAfter);

    private static BatchVerdict Failure(BackfillJobState job, string error, bool moved, DateTimeOffset now, TimeSpan giveUpAfter)
    {
        job.LastError = error;
        // The clock runs while the job is stuck at one place; a batch that got further starts it again.
        var since = job.FailingSince = moved ? now : job.FailingSince ?? now;
        if (now - since < giveUpAfter)
        {
            return BatchVerdict.Retry;
        }

        job.State = BackfillState.Failed;
        job.EndedAt = now;
        job.Reason = $"no progress since {since:u}: {error}";
        return BatchVerdict.Failed;
    }
}
