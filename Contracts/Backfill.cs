namespace OrderFlow.Contracts;

/// <summary>Where a backfill job is.</summary>
public enum BackfillState
{
    Running = 1,
    Done = 2,
    Failed = 3,
}

/// <summary>
/// A backfill job's progress. <see cref="Processed"/> counts catalog entries created at or after <see cref="Since"/>
/// that the job has dealt with, of <see cref="Total"/>: an estimate taken from the catalog at the start (entries of
/// every segment that may hold such orders), set to <see cref="Processed"/> when the job is done. Of the processed
/// entries, <see cref="NeededWork"/> orders had events the subscriber had not applied or held, <see cref="Missing"/>
/// entries name no order (its placement's write failed), <see cref="SkippedFinished"/> orders were finished and left
/// alone (without <see cref="IncludeFinished"/>), <see cref="Behind"/> orders the subscriber could not bring to their
/// last event (a failing handler: its own retries go on) and <see cref="Parked"/> orders are parked at the subscriber
/// (an operator's, see <c>deadletters</c>). <see cref="Rate"/> is in entries per second. <see cref="LastError"/> is the
/// latest failure of a batch, retried by the job until it has failed for <c>Backfill:GiveUpAfter</c>; then the job is
/// <see cref="BackfillState.Failed"/> and <see cref="Reason"/> says why.
/// </summary>
[GenerateSerializer, Immutable, Alias("backfill.BackfillProgress.v1")]
public sealed record BackfillProgress(
    [property: Id(0)] string Subscriber,
    [property: Id(1)] int Run,
    [property: Id(2)] BackfillState State,
    [property: Id(3)] DateTimeOffset? Since,
    [property: Id(4)] bool IncludeFinished,
    [property: Id(5)] DateTimeOffset StartedAt,
    [property: Id(6)] DateTimeOffset? EndedAt,
    [property: Id(7)] long Processed,
    [property: Id(8)] long Total,
    [property: Id(9)] long NeededWork,
    [property: Id(10)] long Missing,
    [property: Id(11)] long SkippedFinished,
    [property: Id(12)] long Behind,
    [property: Id(13)] long Parked,
    [property: Id(14)] double Rate,
    [property: Id(15)] string? Reason,
    [property: Id(16)] string? LastError);

/// <summary>What a backfill request found or did.</summary>
public enum BackfillOutcome
{
    /// <summary>A new job started (none was running, or the last one ended).</summary>
    Started = 1,

    /// <summary>A job with the same parameters is running: the caller watches it.</summary>
    Attached = 2,

    /// <summary>A failed job with the same parameters goes on from where it stopped.</summary>
    Resumed = 3,

    /// <summary>A job with other parameters is running: nothing changed.</summary>
    Refused = 4,

    /// <summary>No subscriber has that name.</summary>
    UnknownSubscriber = 5,

    /// <summary>The progress of the subscriber's job (running or ended).</summary>
    Reported = 6,

    /// <summary>No backfill has ever run for the subscriber.</summary>
    NoJob = 7,
}

/// <summary>The answer to a backfill request: what happened, a line for an operator, and the job's progress when there is a job.</summary>
[GenerateSerializer, Immutable, Alias("backfill.BackfillReply.v1")]
public sealed record BackfillReply(
    [property: Id(0)] BackfillOutcome Outcome,
    [property: Id(1)] string Message,
    [property: Id(2)] BackfillProgress? Progress);

/// <summary>
/// The backfill of one subscriber (key = the subscriber's name, as <see cref="IOperationsGrain.GetSubscribersAsync"/>
/// spells it): walks the order catalog (<see cref="IOrderCatalogGrain"/>) and brings the subscriber's inbox of each
/// order created at or after the start's <c>since</c> to the order's last event (<see cref="IOrderSubscriberGrain.ReachAsync"/>),
/// in bounded batches, with its cursor stored after each batch, so it outlives its caller and resumes after a crash.
/// Internal to the cluster: clients reach it through <see cref="IOperationsGrain"/>.
/// </summary>
[Alias("backfill.IBackfillJobGrain")]
public interface IBackfillJobGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts a job, or attaches to the running one if it has the same parameters (refused if it has others); a failed
    /// job with the same parameters resumes from its cursor. A job that is done is started over.
    /// </summary>
    [Alias("Start")] Task<BackfillReply> StartAsync(DateTimeOffset? since, bool includeFinished);

    /// <summary>The job's progress, or null if none ever ran. Answered between batches' calls, never queued behind one.</summary>
    [Alias("Progress"), Orleans.Concurrency.AlwaysInterleave] Task<BackfillProgress?> GetProgressAsync();

    /// <summary>Resumes a running job's timer and reminder; used at silo start-up (reminders may have died with the silo).</summary>
    [Alias("Wake")] Task WakeAsync();
}
