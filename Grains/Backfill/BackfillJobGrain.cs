using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Backfill;

/// <summary>
/// One subscriber's backfill (<see cref="IBackfillJobGrain"/>, key = the subscriber's name). While a job runs, a grain
/// timer takes one batch every <see cref="BackfillOptions.Period"/>: the next at most
/// <see cref="BackfillOptions.BatchSize"/> catalog entries created at or after the job's <c>since</c>, shard by shard,
/// segment by segment; for each, the order is read (an entry with no order is skipped, a finished order too unless
/// the job includes them), its log is handed to the subscriber's inbox, which applies what it has not applied, in
/// order, exactly once (<see cref="IOrderSubscriberGrain.ReachCountedAsync"/>). The counts and the cursor are written
/// after each batch (<see cref="BackfillBatch"/>): a crash repeats at most one batch, which the inboxes make harmless.
/// A reminder (every minute) and <see cref="Hosting.StartupWake"/> at silo start-up bring a running job back with no
/// caller; nobody needs to watch it.
/// </summary>
[GrainType("backfill-job")]
public sealed partial class BackfillJobGrain(
    [PersistentState("backfill", StorageNames.Ledgers)] IPersistentState<BackfillJobState> state,
    SubscriberCatalog subscribers,
    IOptions<BackfillOptions> options,
    TimeProvider clock,
    ILogger<BackfillJobGrain> logger) : Grain, IBackfillJobGrain, IRemindable
{
    private const string BackfillReminder = "backfill";

    private readonly GuardedState<BackfillJobState> _state = new(state);
    private IGrainTimer? _timer;
    private bool _reminderSet;
    private int _failedBatches;
    private DateTimeOffset _nextBatchAt;
    private (DateTimeOffset At, long Processed)? _pace;

    private string Name => this.GetPrimaryKeyString();

    private BackfillJobState Job => _state.State;

    private BackfillOptions Options => options.Value;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (Job.State == BackfillState.Running)
        {
            await EnsureRunningAsync();
        }
    }

    public async Task<BackfillReply> StartAsync(DateTimeOffset? since, bool includeFinished)
    {
        if (!subscribers.TryGet(Name, out _))
        {
            return new BackfillReply(BackfillOutcome.UnknownSubscriber, $"no subscriber named '{Name}'; known: {string.Join(", ", subscribers.Names)}", null);
        }

        if (Job.State == BackfillState.Running)
        {
            if (!Job.SameParameters(since, includeFinished))
            {
                return Reply(BackfillOutcome.Refused,
                    $"a backfill of {Name} {Describe(Job.Since, Job.IncludeFinished)} is running ({Job.Processed} of about {Job.Total}); " +
                    "watch it with --attach, or start the other one when it has ended");
            }

            await EnsureRunningAsync();
            return Reply(BackfillOutcome.Attached, $"attached to the running backfill of {Name} {Describe(since, includeFinished)}");
        }

        var now = clock.GetUtcNow();
        BackfillOutcome outcome;
        if (Job.State == BackfillState.Failed && Job.SameParameters(since, includeFinished))
        {
            // Goes on from its cursor: what it passed stays passed.
            Job.State = BackfillState.Running;
            Job.EndedAt = null;
            Job.Reason = null;
            Job.FailingSince = null;
            outcome = BackfillOutcome.Resumed;
        }
        else
        {
            Job.Begin(since, includeFinished, await EstimateAsync(since), now);
            outcome = BackfillOutcome.Started;
        }

        await _state.WriteOrReloadAsync(this);
        (_failedBatches, _nextBatchAt, _pace) = (0, now, null);
        await EnsureRunningAsync();
        LogStarted(Name, Job.Run, Describe(since, includeFinished), Job.Total, outcome);
        return Reply(outcome, $"{(outcome == BackfillOutcome.Resumed ? "resumed" : "started")} backfill {Job.Run} of {Name} {Describe(since, includeFinished)}: about {Job.Total} orders");
    }

    public Task<BackfillProgress?> GetProgressAsync() => Task.FromResult(Job.State is null ? null : Progress());

    public async Task WakeAsync()
    {
        if (Job.State == BackfillState.Running)
        {
            await EnsureRunningAsync();
        }
    }

    async Task IRemindable.ReceiveReminder(string reminderName, TickStatus status)
    {
        _reminderSet = true;
        if (Job.State == BackfillState.Running)
        {
            await EnsureRunningAsync();
        }
        else
        {
            await StopAsync();
        }
    }

    /// <summary>Entries of every segment that may hold orders created at or after <paramref name="since"/>: an upper estimate.</summary>
    private async Task<long> EstimateAsync(DateTimeOffset? since)
    {
        var shards = await Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => Head(shard).GetSegmentsAsync()));
        return shards.SelectMany(segments => segments).Where(segment => MayHold(segment, since)).Sum(segment => (long)segment.Count);
    }

    private static bool MayHold(CatalogSegment segment, DateTimeOffset? since) =>
        segment.Open || since is null || segment.LastCreatedAt >= since;

    private async Task EnsureRunningAsync()
    {
        _timer ??= this.RegisterGrainTimer(_ => RunBatchAsync(), new GrainTimerCreationOptions(Options.Period, Options.Period) { KeepAlive = true });
        if (!_reminderSet)
        {
            try
            {
                await this.RegisterOrUpdateReminder(BackfillReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                _reminderSet = true;
            }
            catch (Exception ex)
            {
                // The timer runs meanwhile; the next wake registers it again.
                LogReminderFailed(ex, Name);
            }
        }
    }

    private async Task StopAsync()
    {
        _timer?.Dispose();
        _timer = null;
        try
        {
            if (await this.GetReminder(BackfillReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }

            _reminderSet = false;
        }
        catch (Exception ex)
        {
            // A reminder left behind finds the job ended and tries again.
            LogReminderFailed(ex, Name);
        }
    }

    /// <summary>One batch: collect the next entries, work on them, record what passed and where the walk stands.</summary>
    private async Task RunBatchAsync()
    {
        var now = clock.GetUtcNow();
        if (!_state.IsTrusted || Job.State != BackfillState.Running || now < _nextBatchAt)
        {
            return;
        }

        BatchVerdict verdict;
        if (!subscribers.TryGet(Name, out var grainType))
        {
            // The silo no longer hosts the subscriber (its class was removed): nothing to backfill into.
            Job.State = BackfillState.Failed;
            Job.EndedAt = now;
            Job.Reason = $"this silo hosts no subscriber named '{Name}'";
            verdict = BatchVerdict.Failed;
        }
        else
        {
            _pace ??= (now, Job.Processed);
            try
            {
                var (entries, scanned) = await CollectAsync(Job.Cursor, Job.Since, Options.BatchSize);
                var results = await WorkAsync(entries, grainType);
                verdict = BackfillBatch.Record(Job, results, scanned, clock.GetUtcNow(), Options.GiveUpAfter);
            }
            catch (Exception ex)
            {
                verdict = BackfillBatch.RecordFailure(Job, $"reading the order catalog: {FailureClassifier.Classify(ex).Description}", clock.GetUtcNow(), Options.GiveUpAfter);
            }
        }

        try
        {
            await _state.WriteOrReloadAsync(this);
        }
        catch (Exception ex)
        {
            // Storage now says where the last stored batch left off; this batch is done again (harmless) after a wait.
            LogWriteFailed(ex, Name);
            verdict = BatchVerdict.Retry;
        }

        switch (verdict)
        {
            case BatchVerdict.Continue:
                _failedBatches = 0;
                break;
            case BatchVerdict.Retry:
                _failedBatches++;
                var wait = TimeSpan.FromTicks(Math.Min(Options.MaxRetryWait.Ticks, Options.Period.Ticks << Math.Min(_failedBatches, 20)));
                _nextBatchAt = clock.GetUtcNow() + wait;
                LogBatchFailed(Name, Job.Processed, Job.LastError, wait);
                break;
            case BatchVerdict.Done:
                LogDone(Name, Job.Run, Job.Processed, Job.NeededWork, Job.Missing, Job.SkippedFinished, Job.Behind, Job.Parked);
                await StopAsync();
                break;
            case BatchVerdict.Failed:
                LogFailed(Name, Job.Run, Job.Processed, Job.Reason);
                await StopAsync();
                break;
        }
    }

    /// <summary>
    /// The next at most <paramref name="max"/> entries after <paramref name="cursor"/> created at or after
    /// <paramref name="since"/>, each with the cursor just past it, and where the walk stands after them: past an
    /// exhausted segment (or shard) when fewer than asked were left in it.
    /// </summary>
    private async Task<(List<(CatalogEntry Entry, BackfillCursor Past)> Entries, BackfillCursor Scanned)> CollectAsync(
        BackfillCursor cursor, DateTimeOffset? since, int max)
    {
        var found = new List<(CatalogEntry, BackfillCursor)>();
        while (found.Count < max && !cursor.AtEnd)
        {
            var segments = await Head(cursor.Shard).GetSegmentsAsync();
            var next = segments.FirstOrDefault(s => s.Number >= cursor.Segment && s.Count > 0 && MayHold(s, since));
            if (next is null)
            {
                cursor = cursor.NextShard();
                continue;
            }

            if (next.Number != cursor.Segment)
            {
                cursor = new BackfillCursor(cursor.Shard, next.Number, null);
            }

            var wanted = max - found.Count;
            var page = await GrainFactory.GetGrain<IOrderCatalogSegmentGrain>(IOrderCatalogSegmentGrain.KeyOf(cursor.Shard, cursor.Segment))
                .ReadAsync(cursor.After, since, wanted);
            foreach (var entry in page)
            {
                cursor = cursor with { After = entry };
                found.Add((entry, cursor));
            }

            if (page.Count < wanted)
            {
                cursor = cursor.NextSegment();
            }
        }

        return (found, cursor);
    }

    /// <summary>Works on the entries, <see cref="BackfillOptions.Concurrency"/> at a time; stops after a group in which one failed.</summary>
    private async Task<IReadOnlyList<EntryResult>> WorkAsync(List<(CatalogEntry Entry, BackfillCursor Past)> entries, GrainType subscriber)
    {
        var results = new List<EntryResult>(entries.Count);
        foreach (var group in entries.Chunk(Options.Concurrency))
        {
            results.AddRange(await Task.WhenAll(group.Select(e => WorkAsync(e.Entry, e.Past, subscriber))));
            if (results.Any(r => r.Outcome == EntryOutcome.Failed))
            {
                break;
            }
        }

        return results;
    }

    private async Task<EntryResult> WorkAsync(CatalogEntry entry, BackfillCursor past, GrainType subscriber)
    {
        try
        {
            var order = GrainFactory.GetGrain<IOrderGrain>(entry.OrderId);
            var snapshot = await order.GetAsync();
            if (snapshot.Status == OrderStatus.None)
            {
                return new EntryResult(entry, past, EntryOutcome.Missing);
            }

            if (snapshot.Status.IsFinal() && !Job.IncludeFinished)
            {
                return new EntryResult(entry, past, EntryOutcome.SkippedFinished);
            }

            var log = await order.GetEventsAsync(0);
            var reach = await GrainFactory.GetGrain<IOrderSubscriberGrain>(GrainId.Create(subscriber, entry.OrderId)).ReachCountedAsync(log);
            var outcome = reach.Outcome switch
            {
                ReachOutcome.Parked => EntryOutcome.Parked,
                ReachOutcome.Behind => EntryOutcome.Behind,
                _ => reach.Added > 0 ? EntryOutcome.Reached : EntryOutcome.UpToDate,
            };
            return new EntryResult(entry, past, outcome, reach.Added);
        }
        catch (Exception ex)
        {
            return new EntryResult(entry, past, EntryOutcome.Failed, Error: FailureClassifier.Classify(ex).Description);
        }
    }

    private IOrderCatalogGrain Head(int shard) => GrainFactory.GetGrain<IOrderCatalogGrain>(shard);

    private BackfillReply Reply(BackfillOutcome outcome, string message) => new(outcome, message, Progress());

    private BackfillProgress Progress() => new(
        Name, Job.Run, Job.State!.Value, Job.Since, Job.IncludeFinished, Job.StartedAt, Job.EndedAt,
        Job.Processed, Job.Total, Job.NeededWork, Job.Missing, Job.SkippedFinished, Job.Behind, Job.Parked,
        Rate(), Job.Reason, Job.LastError);

    /// <summary>Entries per second: since this activation took the job up (a crash's downtime does not count), or over the whole run once it ended.</summary>
    private double Rate()
    {
        var (from, processed) = Job.State == BackfillState.Running && _pace is { } pace ? pace : (Job.StartedAt, 0L);
        var seconds = ((Job.EndedAt ?? clock.GetUtcNow()) - from).TotalSeconds;
        return seconds >= 1 ? (Job.Processed - processed) / seconds : 0;
    }

    private static string Describe(DateTimeOffset? since, bool includeFinished) =>
        (since is { } from ? string.Create(CultureInfo.InvariantCulture, $"since {from:u}") : "of every order")
        + (includeFinished ? ", finished orders included" : ", open orders only");

    [LoggerMessage(Level = LogLevel.Information, Message = "Backfill {Run} of {Subscriber} ({Parameters}): {Outcome}, about {Total} orders")]
    private partial void LogStarted(string subscriber, int run, string parameters, long total, BackfillOutcome outcome);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backfill {Run} of {Subscriber} is done: {Processed} orders, {NeededWork} needed work, {Missing} missing, {SkippedFinished} finished and skipped, {Behind} behind, {Parked} parked")]
    private partial void LogDone(string subscriber, int run, long processed, long neededWork, long missing, long skippedFinished, long behind, long parked);

    [LoggerMessage(Level = LogLevel.Error, Message = "Backfill {Run} of {Subscriber} failed after {Processed} orders: {Reason}")]
    private partial void LogFailed(string subscriber, int run, long processed, string? reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backfill of {Subscriber} stopped after {Processed} orders on {Error}; the batch is tried again in {Wait}")]
    private partial void LogBatchFailed(string subscriber, long processed, string? error, TimeSpan wait);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backfill of {Subscriber} could not store its progress; the batch is done again")]
    private partial void LogWriteFailed(Exception exception, string subscriber);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backfill of {Subscriber} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, string subscriber);
}
