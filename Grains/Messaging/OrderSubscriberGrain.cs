using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Telemetry;
using Orleans.Storage;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Base of every order subscriber: one activation per subscriber per order key, fed by an implicit stream
/// subscription. A derived class only says what an event means for its downstream system
/// (<see cref="HandleAsync"/>); this class makes that run exactly once per event and in order:
/// <list type="bullet">
/// <item>a delivered event is handled if it is next, and the inbox — the event applied, or held with its failed
///   attempt — is written in one write before the delivery is acknowledged; a failing handler never reaches the
///   stream (which would retry and finally skip it) and never loses the event; an event that means nothing to this
///   subscriber (<see cref="NothingToDo"/>) is not written on its own, its progress rides on the next write; nor is
///   an applied event of a subscriber with keyed effects (<see cref="KeyedEffectsAttribute"/>);</item>
/// <item>an event at or below the applied sequence, or already in the inbox, is a duplicate and is dropped;</item>
/// <item>an event that skips ahead waits in the inbox until the gap is filled — by the transport, or after
///   <c>GapRepairAfter</c> from the order's own event log; an activation that finds stored progress of an unfinished
///   order catches up from that log at once;</item>
/// <item>a failing handler is retried with exponential backoff for this subscriber and this order only; after the
///   last attempt the order is parked here, in order, until an operator retries or skips it; a transient
///   infrastructure failure (storage down, a timeout: <see cref="FailureClassifier"/>) is retried on its own schedule
///   and counts as an attempt only after <c>TransientRetry:GiveUpAfter</c>.</item>
/// </list>
/// </summary>
public abstract partial class OrderSubscriberGrain : Grain, IOrderSubscriberGrain, IStreamSubscriptionObserver,
    IAsyncObserver<OrderEvent>, IRemindable
{
    private const string WakeReminder = "subscriber-wake";

    // Guarded: after a write that failed and a re-read that failed too, this activation stops serving and writing its
    // inbox; the stream delivers again to a new activation, which starts from storage (GuardedState).
    private readonly GuardedState<SubscriberState> _inbox;
    private readonly SubscriberServices _services;
    private readonly ILogger _logger;
    private IGrainTimer? _wakeTimer;
    private bool _reminderSet;
    private bool _nothingToDo;
    private bool _unsaved;
    private bool _mayBeBehind;
    private DateTimeOffset? _catchUpAt;
    private DateTimeOffset? _indexSyncAt;
    private string? _orderId;
    private string? _name;
    private SubscriberTally? _tally;

    // The highest sequence this activation counted as done (applied or skipped) in the lag metric: a handler that runs
    // again after a failed inbox write and re-read is not counted twice.
    private long _countedThrough;

    // Only for a subscriber with keyed effects: its inbox, read on first need rather than at activation.
    private readonly DeferredState<SubscriberState>? _deferred;
    private bool _started;

    /// <summary>
    /// A subscriber whose inbox is <c>[PersistentState]</c>, read when the grain activates, and written before each
    /// delivery with an effect is acknowledged: for any downstream system, including one that cannot tell a repeated
    /// call from a new one (the SMS gateway).
    /// </summary>
    protected OrderSubscriberGrain(IPersistentState<SubscriberState> inbox, SubscriberServices services)
    {
        _inbox = new GuardedState<SubscriberState>(inbox);
        _services = services;
        _logger = services.LoggerFor(GetType());
    }

    /// <summary>
    /// A subscriber with keyed effects (<see cref="KeyedEffectsAttribute"/> on the class, which names its inbox's state
    /// and storage): its inbox is read on first need, not at activation, and its progress is written lazily.
    /// </summary>
    protected OrderSubscriberGrain(SubscriberServices services)
    {
        var keyed = KeyedEffectsAttribute.Of(GetType())
            ?? throw new InvalidOperationException($"Subscriber {GetType().FullName} needs [KeyedEffects(stateName, storageName)] to use this constructor, or a [PersistentState] inbox.");
        _deferred = new DeferredState<SubscriberState>(keyed.StateName, GrainContext.GrainId,
            GrainContext.ActivationServices.GetRequiredKeyedService<IGrainStorage>(keyed.StorageName));
        _inbox = new GuardedState<SubscriberState>(_deferred);
        _services = services;
        _logger = services.LoggerFor(GetType());
    }

    /// <summary>True for a subscriber with keyed effects (<see cref="KeyedEffectsAttribute"/>): its progress is written lazily.</summary>
    protected bool HasKeyedEffects => _deferred is not null;

    /// <summary>The order this activation serves.</summary>
    protected string OrderId => _orderId ??= this.GetPrimaryKeyString();

    /// <summary>The subscriber's name: its grain type (e.g. <c>points</c>).</summary>
    protected string Name => _name ??= this.GetGrainId().Type.ToString()!;

    private SubscriberState S => _inbox.State;

    // The event kinds this subscriber handles (HandlesOnlyAttribute), or null for every kind.
    private string? Kinds => HandlesOnlyAttribute.KindsOf(GetType());

    private SubscriberTally Tally => _tally ??= _services.Metrics.For(Name);

    /// <summary>
    /// Applies one event's effect downstream. Called in sequence order, once per successful attempt; a thrown
    /// exception means "retry later". Effects must be idempotent per (order id, business scenario) — the
    /// effect ledgers are — because a crash between the effect and the inbox write runs the handler again.
    /// </summary>
    protected abstract Task HandleAsync(OrderEvent evt);

    /// <summary>
    /// What <see cref="HandleAsync"/> returns for an event that means nothing to this subscriber's downstream system
    /// (the coupon on "shipped"). Its progress is then not written on its own: it rides on the next write — the next
    /// event with an effect, an event held back, the order's final event, or deactivation. Saves a storage write per
    /// such event (docs/BENCHMARKS.md, durable profile). A crash before that write loses only the record that
    /// nothing was done: the event is read again from the order's log (see <see cref="OnActivateAsync"/>) and again
    /// nothing is done.
    /// </summary>
    protected Task NothingToDo()
    {
        _nothingToDo = true;
        return Task.CompletedTask;
    }

    /// <summary>
    /// A cancellation's take-back on <paramref name="ledger"/>: applied under <paramref name="takeBackKey"/> only if
    /// <paramref name="givenKey"/> (the payment's effect) was applied. An operator who skipped the parked payment skipped
    /// its effect, and taking it back would move a balance that never moved. Events apply in order, so the payment is
    /// applied (or skipped) before the cancellation is handled.
    /// </summary>
    protected async Task TakeBackAsync(ILedgerGrain ledger, string givenKey, string takeBackKey, decimal delta)
    {
        if (await ledger.GetEntryAsync(givenKey) is null)
        {
            await NothingToDo();
            return;
        }

        await ledger.ApplyAsync(takeBackKey, delta);
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (_deferred is null)
        {
            Start();
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Makes sure the inbox is loaded (a subscriber with keyed effects reads it on first need) and the activation
    /// started from it. <paramref name="delivered"/>: the event that asks, if a delivery does; the order's first event
    /// lets a subscriber with keyed effects start from an empty inbox without reading it (<see cref="KeyedEffectsAttribute"/>).
    /// </summary>
    private ValueTask EnsureStartedAsync(OrderEvent? delivered = null) =>
        !_started ? LoadAndStartAsync(delivered)
        : delivered is null && _deferred is { IsAssumedNew: true } ? ConfirmNewAsync()
        : ValueTask.CompletedTask;

    /// <summary>
    /// Asked for more than a delivery (its status, to reach the order's end, by an operator) while it still assumes its
    /// inbox new: read once to be sure. If a record exists after all, what this activation did came from a late copy of
    /// the order's first event (keyed effects: nothing changed downstream), and the stored inbox is what counts.
    /// </summary>
    private async ValueTask ConfirmNewAsync()
    {
        if (!await _deferred!.ConfirmNewAsync())
        {
            LogAssumedNewWasStored(Name, OrderId);
            _unsaved = false;
            Start();
        }
    }

    private async ValueTask LoadAndStartAsync(OrderEvent? delivered)
    {
        // The order's first event, or one whose earlier events are all of kinds this subscriber is never handed (so none
        // of them can have made it write): a new order's inbox, as far as deliveries go.
        await _deferred!.LoadAsync(knownNew: delivered is not null && HandlesOnlyAttribute.SkippableThrough(Kinds, 0, delivered) == delivered.Sequence - 1);
        Start();
    }

    private void Start()
    {
        _started = true;
        // Stored progress of an unfinished order can be behind what happened: the progress of events with nothing to
        // do is written lazily and a crash loses it, and a transport can lose an order's latest event. The events are
        // in the order's log, so a new activation reads it once unless its first delivery is the next event in
        // sequence (the usual case: a new order's first event), which shows the transport feeds it from where it
        // stands. A stored, unfinished inbox reads at once, not waiting for a delivery that may never come; one with
        // no stored record that is asked for its status (nothing delivered yet) gives the transport GapRepairAfter.
        _mayBeBehind = !S.Finished && !S.Parked;
        _catchUpAt = _mayBeBehind && _inbox.RecordExists ? _services.Clock.GetUtcNow() : null;
        // A parked inbox re-asserts its dead-letter entry (the index skips an unchanged one): the update made when it
        // parked may have been lost with a crash or a failed call.
        _indexSyncAt = S.Parked ? _services.Clock.GetUtcNow() : null;
        _countedThrough = S.AppliedSequence;
        ScheduleWake();
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // Not while the silo shuts down (its storage may be going away with it): the next activation catches up. Never
        // for untrusted state: that write would store the failed write's changes after all.
        if (_unsaved && _inbox.IsTrusted && reason.ReasonCode != DeactivationReasonCode.ShuttingDown)
        {
            var assumedNew = _deferred?.IsAssumedNew == true;
            try
            {
                await WriteAsync();
            }
            catch (InconsistentStateException) when (assumedNew && _inbox.IsTrusted)
            {
                // An insert refused: the inbox was stored after all, and this activation only saw a late copy of the
                // order's first event. The stored record stands.
                LogAssumedNewWasStored(Name, OrderId);
            }
            catch (Exception ex)
            {
                // Only lazily written progress is at stake; the next activation catches up from the order's log.
                LogFlushFailed(ex, Name, OrderId);
            }
        }
    }

    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        handleFactory.Create<OrderEvent>().ResumeAsync(this);

    public async Task<bool> DeliverAsync(OrderEvent evt)
    {
        await OnNextAsync(evt);
        // Applied, with its effects durable: progress not yet written (_unsaved) covers only events with nothing to do
        // or whose effects are kept under their own keys downstream (KeyedEffectsAttribute) — an effect of any other kind
        // is written before this returns. Losing that progress in a crash loses nothing: the next activation reads the
        // order's log and runs the handlers again, which do nothing new.
        return _inbox.IsTrusted && !S.Parked && S.AppliedSequence >= evt.Sequence;
    }

    public async Task OnNextAsync(OrderEvent item, StreamSequenceToken? token = null)
    {
        await EnsureStartedAsync(item);
        Tally.DeliveredOne();
        StepOverNothingToDo(item);
        if (_mayBeBehind && item.Sequence == S.AppliedSequence + 1)
        {
            // The transport feeds this activation from where its stored progress stands: nothing to catch up.
            _mayBeBehind = false;
            _catchUpAt = null;
        }

        if (item.Sequence <= S.AppliedSequence || S.Inbox.ContainsKey(item.Sequence))
        {
            S.DuplicatesIgnored++;
            Tally.Duplicate();
            LogDuplicate(Name, OrderId, item.Sequence);
            if (S.HeadReady && !S.Parked && S.NextAttemptAt is null)
            {
                // A redelivery after a failed write of ours: pick up where we stopped.
                await DrainAsync();
            }

            return;
        }

        // One write per delivery. The event goes into the inbox in memory, the drain applies it if it is next (or
        // records the failed attempt), and only then is the inbox written — with the event applied, or still held.
        // OnNextAsync returns, acknowledging the delivery, only after that write: until then the transport still owes
        // the event (and the order's own log holds it), so a crash or a failed write means a redelivery and another
        // handler run, which the ledgers' processed keys make harmless. A failing handler never reaches the stream.
        S.Inbox[item.Sequence] = item;
        if (_mayBeBehind && item.Sequence > S.AppliedSequence + 1)
        {
            // A new activation's first delivery skips ahead: progress written lazily before a crash, or a lost event.
            // Read the order's log now rather than after GapRepairAfter.
            try
            {
                await ReadOrderLogAsync();
                _mayBeBehind = false;
                _catchUpAt = null;
            }
            catch (Exception ex)
            {
                // The delivered event is still stored below, held behind the gap; the wake timer reads the log again.
                LogWakeFailed(ex, Name, OrderId);
                RetryCatchUpLater();
            }
        }

        await DrainAsync(inboxChanged: true);
    }

    /// <summary>
    /// The inbox's event after the applied sequence, if it holds it — stepping first over events this subscriber has
    /// nothing to do for, by the kinds the earliest held event carries (after a park, a failure or a gap, the held events
    /// are all that is left of what the dispatcher handed it).
    /// </summary>
    private OrderEvent? NextInSequence()
    {
        if (S.Inbox.Count > 0 && !S.HeadReady)
        {
            StepOverNothingToDo(S.Inbox.First().Value);
        }

        return S.Inbox.GetValueOrDefault(S.AppliedSequence + 1);
    }

    /// <summary>
    /// Steps over the events before <paramref name="item"/> that this subscriber has nothing to do for
    /// (<see cref="HandlesOnlyAttribute"/>; the kinds travel with the event) as if it had applied them with nothing to do:
    /// the dispatcher does not hand it those events, so without this every later event would wait behind a gap. Stops at
    /// the first event it handles, of unknown kind, or already held in the inbox (a held or failing event is the drain's).
    /// Progress moves in memory only, written with the next write, like any event with nothing to do.
    /// </summary>
    private void StepOverNothingToDo(OrderEvent item)
    {
        var through = HandlesOnlyAttribute.SkippableThrough(Kinds, S.AppliedSequence, item);
        while (S.AppliedSequence < through && !S.Parked && !S.Inbox.ContainsKey(S.AppliedSequence + 1))
        {
            StepOne();
        }
    }

    /// <summary>The next event in sequence is one this subscriber has nothing to do for: applied, in memory.</summary>
    private void StepOne()
    {
        S.AppliedSequence++;
        // Worth a write later only on top of a stored inbox: with none, a new activation steps over the same events again
        // (the kinds travel with each event), and storing a record for steps alone would only make the next first
        // delivery's insert (keyed effects) be refused.
        _unsaved |= _inbox.RecordExists;
        if (S.AppliedSequence > _countedThrough)
        {
            // With the dispatcher's fan-out the dispatcher counted the event when it left this subscriber out.
            if (_services.Options.FanOut == OrderFanOut.PerSubscriber)
            {
                Tally.SkippedOne();
            }

            _countedThrough = S.AppliedSequence;
        }
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex)
    {
        LogStreamError(ex, Name, OrderId);
        return Task.CompletedTask;
    }

    public async Task<SubscriberStatus> GetStatusAsync()
    {
        await EnsureStartedAsync();
        if (_mayBeBehind && _catchUpAt is null)
        {
            _catchUpAt = _services.Clock.GetUtcNow() + _services.Options.GapRepairAfter;
            ScheduleWake();
        }

        return Status();
    }

    public async Task<DeadLetterActionResult> RetryParkedAsync()
    {
        await EnsureStartedAsync();
        if (!S.Parked)
        {
            return new DeadLetterActionResult(DeadLetterActionOutcome.NotParked, $"{Name} is not parked on order {OrderId}", Status());
        }

        S.Parked = false;
        S.ClearFailure();
        await WriteAsync();
        await ResolveDeadLetterAsync();
        LogResumed(Name, OrderId, S.AppliedSequence + 1);
        await DrainAsync();
        return new DeadLetterActionResult(DeadLetterActionOutcome.Resumed, $"{Name} resumed order {OrderId}", Status());
    }

    public async Task<DeadLetterActionResult> SkipParkedAsync(long sequence)
    {
        await EnsureStartedAsync();
        if (!S.Parked)
        {
            return new DeadLetterActionResult(DeadLetterActionOutcome.NotParked, $"{Name} is not parked on order {OrderId}", Status());
        }

        if (sequence != S.AppliedSequence + 1)
        {
            return new DeadLetterActionResult(DeadLetterActionOutcome.WrongSequence,
                $"{Name} is parked on order {OrderId} at sequence {S.AppliedSequence + 1}, not {sequence}", Status());
        }

        S.Finished |= S.Inbox.Remove(sequence, out var skippedEvent) && skippedEvent.IsFinal;
        S.Skipped.Add(sequence);
        S.AppliedSequence = sequence;
        S.Parked = false;
        S.ClearFailure();
        await WriteAsync();
        if (sequence > _countedThrough)
        {
            Tally.SkippedOne();
            _countedThrough = sequence;
        }

        await ResolveDeadLetterAsync();
        LogSkipped(Name, OrderId, sequence);
        await DrainAsync();
        return new DeadLetterActionResult(DeadLetterActionOutcome.Skipped, $"{Name} skipped order {OrderId} sequence {sequence}", Status());
    }

    public async Task<ReachOutcome> ReachAsync(IReadOnlyList<OrderEvent> log) => (await ReachCountedAsync(log)).Outcome;

    public async Task<ReachResult> ReachCountedAsync(IReadOnlyList<OrderEvent> log)
    {
        await EnsureStartedAsync();
        var last = log.Count == 0 ? 0 : log[^1].Sequence;
        if (S.Finished || S.AppliedSequence >= last)
        {
            return new ReachResult(ReachOutcome.Reached, 0);
        }

        var (added, owed) = (0, 0);
        foreach (var evt in log)
        {
            // Every event, so the drain can step over those with nothing to do; only the ones it handles were owed.
            if (evt.Sequence > S.AppliedSequence && S.Inbox.TryAdd(evt.Sequence, evt))
            {
                added++;
                owed += HandlesOnlyAttribute.Handles(Kinds, evt) ? 1 : 0;
            }
        }

        if (added > 0)
        {
            _mayBeBehind = false;
            _catchUpAt = null;
        }

        if (owed > 0)
        {
            // Events the transport skipped, lost, or has not brought yet: the order's own log has them.
            S.GapRepairs++;
        }

        await DrainAsync(inboxChanged: added > 0);
        return new ReachResult(S.Parked ? ReachOutcome.Parked : S.AppliedSequence >= last ? ReachOutcome.Reached : ReachOutcome.Behind, owed);
    }

    async Task IRemindable.ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == WakeReminder)
        {
            await EnsureStartedAsync();
            _reminderSet = true;
            await WakeAsync();
        }
    }

    /// <summary>
    /// Applies every event that is next in sequence and due, then persists progress (and events newly added to the
    /// inbox, when <paramref name="inboxChanged"/>, if any is still held) in one write, and plans the next wake-up.
    /// Progress over events with nothing to do is not a reason to write on its own (<see cref="NothingToDo"/>).
    /// </summary>
    private async Task DrainAsync(bool inboxChanged = false)
    {
        var changed = false;
        var finished = false;
        OrderEvent? parkedEvent = null;
        while (!S.Parked && NextInSequence() is { } next)
        {
            var now = _services.Clock.GetUtcNow();
            if (S.NextAttemptAt is { } due && due > now)
            {
                break;
            }

            if (!HandlesOnlyAttribute.Handles(Kinds, next))
            {
                // Not a kind this subscriber handles (it got here from the order's log, or with a per-subscriber stream):
                // nothing to do, and the handler is not called for it.
                S.Inbox.Remove(next.Sequence);
                StepOne();
                continue;
            }

            S.HandlerRuns++;
            _nothingToDo = false;
            // A child of the command's context stored with the event: one trace per order's command, however the event
            // got here (the stream, a redelivery, the order's log in a catch-up or gap repair, the relay).
            using var activity = OrderFlowTelemetry.StartHandler(Tally.SpanName, Name, next);
            try
            {
                await _services.Drills.ApplyAsync(Name, next, CancellationToken.None);
                await HandleAsync(next);
            }
            catch (Exception ex)
            {
                OrderFlowTelemetry.Failed(activity, ex);
                changed = true;
                RecordFailure(next, ex, now);
                if (S.Parked)
                {
                    parkedEvent = next;
                }

                break;
            }

            var hadFailed = S.HasFailure;
            S.Inbox.Remove(next.Sequence);
            S.AppliedSequence = next.Sequence;
            S.ClearFailure();
            S.Finished = finished = next.IsFinal;
            Tally.AppliedOne(firstTime: next.Sequence > _countedThrough, _services.Clock.GetUtcNow() - next.OccurredAt);
            _countedThrough = Math.Max(_countedThrough, next.Sequence);
            if (activity is { IsAllDataRequested: true })
            {
                activity.SetTag(OrderFlowTelemetry.OutcomeTag, _nothingToDo ? "nothing to do" : "applied");
            }

            // An effect (unless keyed downstream: KeyedEffectsAttribute), the end of the order or a cleared failure is
            // written before the delivery is acknowledged.
            changed |= (!_nothingToDo && !HasKeyedEffects) || finished || hadFailed;
            _unsaved = true;
        }

        // A delivered (or caught-up) event still held — out of order, or behind a failing head — must be stored
        // before the transport forgets it.
        changed |= inboxChanged && S.Inbox.Count > 0;

        var gapOpen = S.HasGap && !S.Parked;
        if (gapOpen != S.GapSince.HasValue)
        {
            S.GapSince = gapOpen ? _services.Clock.GetUtcNow() : null;
            changed = true;
        }

        if (changed)
        {
            await WriteAsync();
        }

        if (parkedEvent is not null)
        {
            await ParkAsync(parkedEvent);
        }

        ScheduleWake();
        await SyncReminderAsync();
        if (S.Finished && S.Inbox.Count == 0 && !S.Parked && !S.HasFailure && _indexSyncAt is null)
        {
            // The order's last event is applied and nothing waits here: free the activation now rather than after
            // the idle collection age. Its state stays in storage, so a late duplicate reactivates it and is dropped.
            DeactivateOnIdle();
        }
    }

    /// <summary>
    /// Records a failed attempt at the head event in memory (the drain writes it). A transient infrastructure failure
    /// (<see cref="FailureClassifier"/>) is retried on the <see cref="TransientRetryOptions"/> schedule without spending an
    /// attempt, until the head event has been failing transiently for <c>GiveUpAfter</c>; from then on, and for every
    /// handler failure, the attempt counts and the retry policy decides between a retry and parking. Only what is
    /// stored counts: if the inbox write after this fails, the grain re-reads its state (dropping this record) and the
    /// event is delivered and handled again, so an attempt is never counted twice.
    /// </summary>
    private void RecordFailure(OrderEvent evt, Exception ex, DateTimeOffset now)
    {
        var failure = FailureClassifier.Classify(ex);
        var error = failure.Description;
        S.FirstFailureAt ??= now;
        S.LastFailureAt = now;
        if (failure.IsTransient)
        {
            var transient = _services.TransientRetry;
            var since = S.TransientSince ??= now;
            S.TransientAttempts++;
            S.TransientFailures++;
            S.LastTransientError = failure.Description;
            var giveUpAt = since + transient.GiveUpAfter;
            if (now < giveUpAt)
            {
                // The retry never lands after the give-up time, so an outage that outlasts it starts counting promptly.
                var retryAt = now + transient.BackoffAfter(S.TransientAttempts, Random.Shared);
                S.NextAttemptAt = retryAt < giveUpAt ? retryAt : giveUpAt;
                Tally.RetryScheduled(transient: true);
                // An outage fails every in-flight order every few seconds: one line per order when it starts, the rest at Debug.
                if (S.TransientAttempts == 1)
                {
                    LogTransientFailureStarted(Name, OrderId, evt.Sequence, giveUpAt, failure.Description);
                }
                else
                {
                    LogTransientRetryScheduled(Name, OrderId, evt.Sequence, S.TransientAttempts, since, S.NextAttemptAt.Value, failure.Description);
                }

                return;
            }

            error = FailureClassifier.GaveUpWaiting(now - since, failure.Description);
        }

        var policy = _services.Options.RetryFor(Name);
        S.Attempts++;
        S.FailedAttempts++;
        S.LastError = error;
        if (S.Attempts >= policy.MaxAttempts)
        {
            S.Parked = true;
            S.NextAttemptAt = null;
            Tally.ParkedOne();
            LogParked(ex, Name, OrderId, evt.Sequence, S.Attempts);
        }
        else
        {
            S.NextAttemptAt = now + policy.BackoffAfter(S.Attempts, Random.Shared);
            Tally.RetryScheduled(transient: false);
            LogRetryScheduled(Name, OrderId, evt.Sequence, S.Attempts, S.NextAttemptAt.Value, S.LastError);
        }
    }

    private async Task WakeAsync()
    {
        if (!_inbox.IsTrusted)
        {
            // Deactivating after a failed write and re-read: nothing here may be worked on or written any more.
            return;
        }

        try
        {
            if (_indexSyncAt <= _services.Clock.GetUtcNow())
            {
                await SyncDeadLetterIndexAsync();
            }

            if (_mayBeBehind && _catchUpAt <= _services.Clock.GetUtcNow())
            {
                await CatchUpAsync();
            }

            if (S.HasGap && !S.Parked && S.GapSince is { } since
                && since + _services.Options.GapRepairAfter <= _services.Clock.GetUtcNow())
            {
                await RepairGapAsync();
            }

            await DrainAsync();
        }
        catch (Exception ex)
        {
            // Storage or the order grain is unavailable. Nobody is waiting on a timer's result, so plan the next
            // attempt here; without it the inbox would sleep until the next delivery or reminder.
            LogWakeFailed(ex, Name, OrderId);
            if (_inbox.IsTrusted)
            {
                ScheduleWake(atLeast: _services.Options.OutboxRetryPeriod);
            }
        }
    }

    /// <summary>
    /// A later event has waited too long for a missing one: read the missing events from the order's own log.
    /// The order grain keeps every event it ever accepted, so a lost delivery can never stall an order forever.
    /// </summary>
    private async Task RepairGapAsync()
    {
        var added = await ReadOrderLogAsync();
        S.GapSince = null;
        await WriteAsync();
        LogGapRepaired(Name, OrderId, S.AppliedSequence + 1, added);
    }

    /// <summary>The activation's one read of the order's log (see <see cref="OnActivateAsync"/>), and applying what it found.</summary>
    private async Task CatchUpAsync()
    {
        int added;
        try
        {
            added = await ReadOrderLogAsync();
        }
        catch
        {
            RetryCatchUpLater();
            throw;
        }

        _mayBeBehind = false;
        _catchUpAt = null;
        if (added > 0)
        {
            await DrainAsync(inboxChanged: true);
        }
    }

    /// <summary>
    /// Adds the order's events after the applied sequence to the inbox and says how many; counts a repair when it found
    /// any missing that this subscriber handles.
    /// </summary>
    private async Task<int> ReadOrderLogAsync()
    {
        var events = await GrainFactory.GetGrain<IOrderGrain>(OrderId).GetEventsAsync(S.AppliedSequence);
        var (added, owed) = (0, 0);
        foreach (var evt in events)
        {
            // Every event, so the drain can step over those with nothing to do; only the ones it handles were owed, and
            // only those make it a repair (the count operators read as the transport's losses).
            if (evt.Sequence > S.AppliedSequence && S.Inbox.TryAdd(evt.Sequence, evt))
            {
                added++;
                owed += HandlesOnlyAttribute.Handles(Kinds, evt) ? 1 : 0;
            }
        }

        if (owed > 0)
        {
            S.GapRepairs++;
        }

        return added;
    }

    private async Task ParkAsync(OrderEvent evt)
    {
        var letter = new DeadLetter(Name, OrderId, evt.Sequence, evt.Kind, S.LastError ?? "", S.Attempts,
            S.FirstFailureAt ?? S.LastFailureAt!.Value, S.LastFailureAt!.Value);
        try
        {
            await DeadLetterIndex().ParkAsync(letter);
        }
        catch (Exception ex)
        {
            // The order is parked in its own inbox either way; the index is the operators' list of it, brought in
            // line again by the wake timer.
            LogIndexFailed(ex, Name, OrderId);
            RetryIndexSync();
        }
    }

    private async Task ResolveDeadLetterAsync()
    {
        try
        {
            await DeadLetterIndex().ResolveAsync(OrderId);
        }
        catch (Exception ex)
        {
            LogIndexFailed(ex, Name, OrderId);
            RetryIndexSync();
        }
    }

    /// <summary>Makes the dead-letter index say what the inbox says: listed while parked, not listed otherwise.</summary>
    private async Task SyncDeadLetterIndexAsync()
    {
        _indexSyncAt = null;
        if (S.Parked && S.Inbox.TryGetValue(S.AppliedSequence + 1, out var head))
        {
            await ParkAsync(head);
        }
        else if (!S.Parked)
        {
            await ResolveDeadLetterAsync();
        }
    }

    private IDeadLetterIndexGrain DeadLetterIndex() => GrainFactory.GetGrain<IDeadLetterIndexGrain>(DeadLetterShards.KeyFor(Name, OrderId));

    private static DateTimeOffset? Earliest(DateTimeOffset? a, DateTimeOffset? b) =>
        a is null ? b : b is null ? a : a < b ? a : b;

    /// <summary>Reads the order's log again after <c>OutboxRetryPeriod</c> (a read or write failed).</summary>
    private void RetryCatchUpLater()
    {
        _catchUpAt = _services.Clock.GetUtcNow() + _services.Options.OutboxRetryPeriod;
        ScheduleWake();
    }

    private void RetryIndexSync()
    {
        _indexSyncAt = _services.Clock.GetUtcNow() + _services.Options.OutboxRetryPeriod;
        ScheduleWake();
    }

    /// <summary>Plans a timer for the next thing this inbox waits for: a retry that falls due, or a gap's repair time.</summary>
    private void ScheduleWake(TimeSpan? atLeast = null)
    {
        DateTimeOffset? wakeAt = null;
        if (!S.Parked && S.HeadReady && S.NextAttemptAt is { } retryAt)
        {
            wakeAt = retryAt;
        }
        else if (!S.Parked && S.HasGap)
        {
            wakeAt = (S.GapSince ?? _services.Clock.GetUtcNow()) + _services.Options.GapRepairAfter;
        }
        else if (!S.Parked && S.HeadReady)
        {
            wakeAt = _services.Clock.GetUtcNow();
        }

        wakeAt = Earliest(Earliest(wakeAt, _catchUpAt), _indexSyncAt);

        if (wakeAt is null)
        {
            _wakeTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var delay = wakeAt.Value - _services.Clock.GetUtcNow();
        var floor = atLeast ?? TimeSpan.Zero;
        if (delay < floor)
        {
            delay = floor;
        }

        if (_wakeTimer is null)
        {
            _wakeTimer = this.RegisterGrainTimer(_ => WakeAsync(), new GrainTimerCreationOptions(delay, Timeout.InfiniteTimeSpan) { KeepAlive = true });
        }
        else
        {
            _wakeTimer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// A reminder brings this inbox back after a silo crash while it waits on a retry. It is only registered
    /// while a retry is pending (never on the hot path) and removed once the head event succeeds or is parked.
    /// A gap needs none: the missing event is still owed by the transport, and any later event wakes the inbox.
    /// </summary>
    private async Task SyncReminderAsync()
    {
        // Also while a dead-letter index update waits for its retry: a crash would otherwise leave a parked inbox that
        // nothing activates, missing from the operators' list.
        var needed = (!S.Parked && S.HasFailure) || _indexSyncAt is not null;
        if (needed == _reminderSet)
        {
            return;
        }

        try
        {
            if (needed)
            {
                await this.RegisterOrUpdateReminder(WakeReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
            }
            else if (await this.GetReminder(WakeReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }

            _reminderSet = needed;
        }
        catch (Exception ex)
        {
            LogReminderFailed(ex, Name, OrderId);
        }
    }

    private async Task WriteAsync()
    {
        try
        {
            await _inbox.WriteOrReloadAsync(this);
        }
        catch when (_inbox.IsTrusted)
        {
            // The state was re-read: storage may be behind what this activation did (lazily written progress), and
            // the deliveries behind that were acknowledged. Catch up from the order's log before trusting it again:
            // on the next delivery if it skips ahead, or by the wake timer.
            _mayBeBehind = !S.Finished && !S.Parked;
            _catchUpAt = _mayBeBehind ? _services.Clock.GetUtcNow() + _services.Options.OutboxRetryPeriod : null;
            if (S.Parked)
            {
                // Stored parked although the write answered with a failure (it landed): the dead-letter index was not told,
                // and nothing else would tell it while this activation lives (a redelivery is a duplicate). The wake timer does.
                _indexSyncAt = _services.Clock.GetUtcNow();
            }

            ScheduleWake();
            throw;
        }

        _unsaved = false;
        Tally.Wrote();
    }

    private SubscriberStatus Status() => new(
        Name, OrderId, S.AppliedSequence, S.Inbox.Keys.ToArray(), S.Attempts, S.NextAttemptAt, S.Parked, S.LastError,
        S.Skipped.ToArray(), S.DuplicatesIgnored, S.FailedAttempts, S.HandlerRuns, S.GapSince, S.GapRepairs,
        S.TransientSince, S.LastTransientError, S.TransientAttempts, S.TransientFailures);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Subscriber} dropped duplicate event {Sequence} of order {OrderId}")]
    private partial void LogDuplicate(string subscriber, string orderId, long sequence);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Subscriber} will retry event {Sequence} of order {OrderId} (attempt {Attempts} failed) at {NextAttemptAt}: {Error}")]
    private partial void LogRetryScheduled(string subscriber, string orderId, long sequence, int attempts, DateTimeOffset nextAttemptAt, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Subscriber} is retrying event {Sequence} of order {OrderId} after a transient failure, not counted as an attempt before {GiveUpAt}: {Error}")]
    private partial void LogTransientFailureStarted(string subscriber, string orderId, long sequence, DateTimeOffset giveUpAt, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Subscriber} will retry event {Sequence} of order {OrderId} at {NextAttemptAt} after a transient failure ({TransientAttempts} since {TransientSince}, not counted as an attempt): {Error}")]
    private partial void LogTransientRetryScheduled(string subscriber, string orderId, long sequence, int transientAttempts, DateTimeOffset transientSince, DateTimeOffset nextAttemptAt, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} parked order {OrderId} at event {Sequence} after {Attempts} attempts")]
    private partial void LogParked(Exception exception, string subscriber, string orderId, long sequence, int attempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Subscriber} resumed order {OrderId} at event {Sequence}")]
    private partial void LogResumed(string subscriber, string orderId, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} skipped event {Sequence} of order {OrderId} on an operator's request")]
    private partial void LogSkipped(string subscriber, string orderId, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} repaired a gap in order {OrderId} before event {Sequence} from the order's log ({Added} events read)")]
    private partial void LogGapRepaired(string subscriber, string orderId, long sequence, int added);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} could not update the dead-letter index for order {OrderId}")]
    private partial void LogIndexFailed(Exception exception, string subscriber, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} could not update its wake reminder for order {OrderId}")]
    private partial void LogReminderFailed(Exception exception, string subscriber, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} could not work through its inbox for order {OrderId}; will try again")]
    private partial void LogWakeFailed(Exception exception, string subscriber, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} could not write its progress for order {OrderId} while deactivating; the next activation catches up from the order's log")]
    private partial void LogFlushFailed(Exception exception, string subscriber, string orderId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Subscriber} started order {OrderId} as new on its first event, but its inbox was stored: a late copy of that event; the stored inbox stands")]
    private partial void LogAssumedNewWasStored(string subscriber, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subscriber} got a stream error for order {OrderId}")]
    private partial void LogStreamError(Exception exception, string subscriber, string orderId);
}
