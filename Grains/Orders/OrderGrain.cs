using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Telemetry;
using Orleans.Streams;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// The single writer of one order. <see cref="OrderDecider"/> validates a command and turns it into the next event;
/// the event, the new state and the command id are written in one state write (the transactional outbox). Only then is
/// the event published; if publishing fails the event stays in the outbox and is published again on the
/// next command, on a timer, on reactivation, and (if the silo dies) from a reminder.
/// <para>
/// <c>benchSwitches</c> is bench-only: its <see cref="BenchSwitches.SkipReservations"/>
/// (off unless a bench silo's control grain turns it on) makes a placement skip its reservations, so the bench can
/// measure what reservations cost (<c>bench --workload consistency</c>).
/// </para>
/// </summary>
[GrainType("order")]
public sealed partial class OrderGrain(
    [PersistentState("order", StorageNames.Orders)] IPersistentState<OrderState> order,
    IOrderEventPublisher publisher,
    IOptions<OrderMessagingOptions> options,
    Orleans.Serialization.Serializer serializer,
    SubscriberMetrics metrics,
    SubscriberCatalog subscribers,
    TimeProvider clock,
    ILogger<OrderGrain> logger,
    BenchSwitches benchSwitches,
    RelayBatcher relayBatcher) : Grain, IOrderGrain, IRemindable
{
    private const string OutboxReminder = "outbox";

    // Guarded: after a write that failed and a re-read that failed too, this activation answers nothing more from
    // memory (an event or command id storage never saw) and does not save it on deactivation (GuardedState).
    private readonly GuardedState<OrderState> _order = new(order);

    // A finished order's activation stays after its last event until its relay shard forgets it, asking every
    // FinishedLinger, at most FinishedLingerTicks times (see AcceptAsync).
    private static readonly TimeSpan FinishedLinger = TimeSpan.FromSeconds(2);
    private const int FinishedLingerTicks = 5;

    private IAsyncStream<OrderEvent>? _stream;
    private IGrainTimer? _outboxTimer;
    private IGrainTimer? _finished;
    private int _lingerTicks;

    // Set when the relay shard was seen not to hold this finished order: it takes no more marks, so that stays true and
    // the deactivation need not ask again.
    private bool _relayForgot;
    private bool _outboxReminderSet;
    private long _persistedPublishedSequence;

    // This activation's share of the silo's outbox backlog gauge (events stored, not published), kept in step with State.
    private long _backlogCounted;
    private string? _publishError;
    private DateTimeOffset? _publishFailingSince;

    private string OrderId => this.GetPrimaryKeyString();

    private IOrderCatalogGrain Catalog => GrainFactory.GetGrain<IOrderCatalogGrain>(IOrderRelayGrain.ShardOf(OrderId));

    private OrderState State => _order.State;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _stream = this.GetStreamProvider(OrderStreams.ProviderName).GetStream<OrderEvent>(OrderStreams.ForOrder(OrderId, options.Value.StreamNamespace));
        _persistedPublishedSequence = State.PublishedSequence;
        await SkipDeliveredOutboxAsync();
        await BoundLegacyOutboxAsync();
        await PublishOutboxAsync();
    }

    /// <summary>
    /// The published mark is written only with the next event, never when the order goes idle (that write would cost
    /// every order one more storage request for its last event). So an activation that finds events above the stored
    /// mark asks the order's relay shard first: the shard marked each of them before it was written and forgets the
    /// order only once it is delivered up to its latest mark, so if the shard no longer holds the order, every stored
    /// event was delivered and none is published again. If the shard still holds it, or cannot be asked, the outbox is
    /// published as before and subscribers drop what they already have.
    /// </summary>
    private async Task SkipDeliveredOutboxAsync()
    {
        if (!State.RelayMarked || State.PublishedSequence >= State.LastSequence)
        {
            return;
        }

        try
        {
            if (await Relay.FindAsync(OrderId) is null)
            {
                State.PublishedSequence = State.LastSequence; // carried by the next write, if there is one
            }
        }
        catch (Exception ex)
        {
            LogRelayNotAsked(ex, OrderId);
        }
    }

    /// <summary>
    /// Events accepted before every field had a bound can be too large for the transport (a 60,000-character cancel
    /// reason never fit an Azure Queue message), and would be retried forever. The cancel reason was the only unbounded
    /// field: an unpublished cancellation's reason is cut to <see cref="TextLimits.MaxReasonLength"/> in one recorded
    /// write, then published. No subscriber has seen the event yet, and no effect depends on the reason's text.
    /// </summary>
    private async Task BoundLegacyOutboxAsync()
    {
        var cut = 0;
        for (var i = (int)State.PublishedSequence; i < State.Events.Count; i++)
        {
            if (State.Events[i] is OrderCancelled { Reason.Length: > TextLimits.MaxReasonLength } cancelled)
            {
                State.Events[i] = cancelled with { Reason = cancelled.Reason[..TextLimits.MaxReasonLength] };
                cut++;
            }
        }

        if (cut > 0)
        {
            LogReasonCut(OrderId, TextLimits.MaxReasonLength);
            try
            {
                await _order.WriteOrReloadAsync(this);
            }
            catch (Exception ex)
            {
                // The next activation tries again; until then the event stays in the outbox, as before.
                LogPublishFailed(ex, OrderId, State.PublishedSequence + 1);
            }
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // What is still in the outbox leaves the gauge with the activation; the next activation counts it again.
        metrics.OutboxChanged(-_backlogCounted);
        _backlogCounted = 0;
        // Persist how far the outbox got so the next activation does not publish those events again — unless the relay
        // already vouches for it: a shard that no longer holds the order saw every marked event delivered, and the next
        // activation asks it too (SkipDeliveredOutboxAsync), so the write is saved (a finished order's usual case). A
        // record stored before the relay existed always writes its mark. Skipped while the silo shuts down: storage may
        // be going away with it (the embedded profile's does), and an unsaved mark only means those events are
        // published again, which subscribers drop by sequence. Never for untrusted state: that write would store the
        // failed write's changes after all.
        if (reason.ReasonCode != DeactivationReasonCode.ShuttingDown && _order.IsTrusted
            && _order.RecordExists && State.PublishedSequence != _persistedPublishedSequence)
        {
            try
            {
                if (!State.RelayMarked || (!_relayForgot && await Relay.FindAsync(OrderId) is not null))
                {
                    await _order.WriteStateAsync(cancellationToken);
                }
            }
            catch (Exception ex)
            {
                LogOutboxMarkNotSaved(ex, OrderId);
            }
        }
    }

    public Task<CommandResult> PlaceAsync(PlaceOrder command) => ExecuteAsync(command);
    public Task<CommandResult> PayAsync(PayOrder command) => PayBeforeDeadlineAsync(command);
    public Task<CommandResult> ShipAsync(ShipOrder command) => ExecuteAsync(command);
    public Task<CommandResult> ConfirmReceiptAsync(ConfirmReceipt command) => ExecuteAsync(command);
    public Task<CommandResult> CancelAsync(CancelOrder command) => ExecuteAsync(command);

    public Task<OrderSnapshot> GetAsync() => Task.FromResult(new OrderSnapshot(
        OrderId, State.Status, State.UserId, State.Items.ToArray(), State.Total, State.PaidAmount,
        State.CouponId, State.ActivityId, State.LastSequence, State.PublishedSequence, _publishError, _publishFailingSince));

    public Task<IReadOnlyList<OrderEvent>> GetEventsAsync(long afterSequence) =>
        Task.FromResult<IReadOnlyList<OrderEvent>>(State.Events.Skip((int)Math.Clamp(afterSequence, 0, State.Events.Count)).ToArray());

    async Task IRemindable.ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == OutboxReminder)
        {
            // The reminder outlived an earlier activation (the silo died with events in the outbox).
            _outboxReminderSet = true;
            await PublishOutboxAsync();
        }
        else if (reminderName == PaymentTimeoutReminder)
        {
            await LegacyPaymentTimeoutDueAsync();
        }
    }

    private async Task<CommandResult> ExecuteAsync(OrderCommand command, bool systemCommand = false)
    {
        // The command's span: a child of the caller's (Orleans' activity propagation), and the parent of everything the
        // event does later, wherever it goes — its context is stored with the event (WithTraceContext below).
        using var activity = OrderFlowTelemetry.Source.StartActivity(command.GetType().Name, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(OrderFlowTelemetry.OrderIdTag, OrderId);
        }

        CommandResult result;
        try
        {
            result = await DecideAndRunAsync(command, systemCommand);
        }
        catch (Exception ex)
        {
            OrderFlowTelemetry.Failed(activity, ex);
            throw;
        }

        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(OrderFlowTelemetry.OutcomeTag, result.Accepted ? result.Repeated ? "repeated" : "accepted" : "rejected");
            activity.SetTag(OrderFlowTelemetry.SequenceTag, result.Sequence);
        }

        return result;
    }

    private async Task<CommandResult> DecideAndRunAsync(OrderCommand command, bool systemCommand)
    {
        var decision = OrderDecider.Decide(OrderId, State, command, Guid.NewGuid(), clock.GetUtcNow(), systemCommand);
        if (decision is OrderDecision.Accept accept && OrderFlowTelemetry.WithTraceContext(accept.Event) is var traced && !ReferenceEquals(traced, accept.Event))
        {
            // Only a traced command pays for the copies: with telemetry off the decision is used as it came.
            decision = accept with { Event = traced };
        }

        switch (decision)
        {
            case OrderDecision.Rejected(var code, var message):
                return Reject(code, message);
            case OrderDecision.Repeat(var earlier):
                return await RepeatAsync(earlier);
            case OrderDecision.Accept { Event: OrderPlaced } accepted when command is PlaceOrder place:
                return await PlaceAsync(place, accepted);
            case OrderDecision.Accept { Event: OrderPaid } accepted when command is PayOrder pay:
                return await PayAsync(pay, accepted);
            case OrderDecision.Accept accepted:
                return await AcceptAsync(command, accepted);
            default:
                throw new UnreachableException("a decision is rejected, a repeat or accepted");
        }
    }

    private async Task<CommandResult> AcceptAsync(OrderCommand command, OrderDecision.Accept accepted)
    {
        var evt = accepted.Event;
        if (TooLarge(evt) is { } tooLarge)
        {
            return tooLarge;
        }

        // The relay learns of the event before it can exist: if this silo dies between the write below and the publish,
        // the relay still finds the order (an order whose write then fails takes its mark back, UnmarkAsync). The catalog
        // learns of a new order the same way, so a backfill can find every order that exists; a placement whose write
        // then fails leaves an entry that names no order, which the backfill skips. The two writes go out together.
        var mark = relayBatcher.MarkAsync(OrderId, evt.Sequence); // with other orders' marks to the shard, if any are waiting
        var cataloged = evt is OrderPlaced ? Catalog.AddAsync(OrderId, evt.OccurredAt) : Task.CompletedTask;
        var timeoutArmed = ArmPaymentTimeoutAsync(evt);
        await Task.WhenAll(mark, cataloged, timeoutArmed);
        if (!timeoutArmed.Result)
        {
            // Nothing written: the relay's mark goes back, the catalog entry names no order (a backfill skips it), and a
            // placement gives back what it reserved.
            await UnmarkAsync(evt.Sequence);
            return Reject(OrderErrorCode.TryLater,
                $"order {OrderId}: too many orders await payment in its payment deadline shard ({Timeouts.MaxAwaitingPaymentPerShard}); retry later");
        }

        OrderDecider.Record(State, command.CommandId, accepted);
        State.RelayMarked = true;
        try
        {
            await _order.WriteOrReloadAsync(this);
        }
        catch when (_order.IsTrusted && State.PublishedSequence < State.LastSequence)
        {
            // The write failed but the re-read shows the event stored (a timeout after the write landed): it is in the
            // outbox now, and nothing else may come to publish it — the caller's retry is answered as a repeat.
            await ScheduleOutboxRetryAsync();
            throw;
        }
        catch when (_order.IsTrusted && State.LastSequence < evt.Sequence)
        {
            // The write failed and the re-read shows no such event: the relay need not wait for it. (Untrusted state — the
            // re-read failed too — says nothing, and the relay keeps the mark.)
            await UnmarkAsync(evt.Sequence);
            throw;
        }
        _persistedPublishedSequence = State.PublishedSequence;

        await PublishOutboxAsync();
        DisarmPaymentTimeout(evt);
        if (State.Status.IsFinal() && State.PublishedSequence == State.LastSequence)
        {
            // A finished order takes no more commands (a repeated one is answered from storage after reactivation): free
            // the activation soon instead of holding it for the idle collection age. Not at once: once its last event is
            // delivered and its relay shard has forgotten it, the deactivation needs no published mark (OnDeactivateAsync).
            _finished ??= this.RegisterGrainTimer(LingerAsync, new GrainTimerCreationOptions(FinishedLinger, FinishedLinger));
        }

        return new CommandResult(OrderId, true, evt.Sequence, State.Status, null, Repeated: false);
    }

    /// <summary>
    /// A finished order's timer: it lets the activation go once its relay shard no longer holds it (every event
    /// delivered), or after <see cref="FinishedLingerTicks"/> ticks in any case (its deactivation then writes the mark).
    /// </summary>
    private async Task LingerAsync()
    {
        bool held;
        try
        {
            held = await Relay.FindAsync(OrderId) is not null;
        }
        catch (Exception)
        {
            held = true; // the shard cannot say: keep waiting; the tick count still ends it
        }

        _relayForgot = !held;
        if (!held || ++_lingerTicks >= FinishedLingerTicks)
        {
            _finished?.Dispose();
            DeactivateOnIdle();
        }
    }

    /// <summary>Best effort: a mark left behind only keeps the order in its relay shard, which checks it and keeps it.</summary>
    private async Task UnmarkAsync(long sequence)
    {
        try
        {
            await Relay.UnmarkAsync(OrderId, sequence);
        }
        catch (Exception ex)
        {
            LogUnmarkFailed(ex, OrderId, sequence);
        }
    }

    /// <summary>
    /// The first outcome of a repeated command id. If the outbox is not empty (the first try's write landed but its
    /// answer was lost), publishing is attempted now, so a retried command never leaves its own event unpublished.
    /// </summary>
    private async Task<CommandResult> RepeatAsync(ProcessedCommand earlier)
    {
        if (State.PublishedSequence < State.LastSequence)
        {
            await PublishOutboxAsync();
        }

        return new CommandResult(OrderId, true, earlier.Sequence, earlier.Status, null, Repeated: true);
    }

    /// <summary>
    /// Checked before the write (and before a placement reserves anything): an event the transport cannot carry would sit
    /// in the outbox forever (Azure Queue messages hold 64 KiB, base64 inside). Every field is bounded, so this is the
    /// backstop, not the rule.
    /// </summary>
    private CommandResult? TooLarge(OrderEvent evt)
    {
        var size = serializer.SerializeToArray<OrderEvent>(evt).Length;
        return size > options.Value.MaxEventBytes
            ? Reject(OrderErrorCode.InvalidCommand, $"the {evt.Kind} event would be {size} bytes; the transport carries at most {options.Value.MaxEventBytes}")
            : null;
    }

    private CommandResult Reject(OrderErrorCode code, string message)
    {
        LogRejected(OrderId, code, message);
        return CommandResult.Rejected(OrderId, State.Status, code, message);
    }

    /// <summary>
    /// Publishes the outbox in sequence order and stops at the first failure, so the stream never sees
    /// event n + 1 before event n from this grain. Failures are retried by a timer and, as a backstop
    /// against the silo dying, by a reminder.
    /// </summary>
    private async Task PublishOutboxAsync()
    {
        SyncBacklog();
        while (State.PublishedSequence < State.LastSequence)
        {
            var evt = State.Events[(int)State.PublishedSequence];
            OrderEvent published;
            // A child of the command's stored context, also when a timer, a reminder or the relay publishes it later.
            using var activity = OrderFlowTelemetry.StartPublish(evt);
            try
            {
                // The published copy says what came before it, so the dispatcher can leave out a subscriber with nothing
                // to do for it (OrderEvent.EarlierKinds); the log keeps the event as written.
                published = evt with { EarlierKinds = OrderEventKinds.Of(State.Events, (int)evt.Sequence - 1) };
                await publisher.PublishAsync(_stream!, published);
            }
            catch (Exception ex)
            {
                OrderFlowTelemetry.Failed(activity, ex);
                // Visible to operators: the log, the orderflow.outbox.publish_failures counter, and `order show`
                // (the error and since when). The event stays in the outbox and is retried; nothing later overtakes it.
                _publishFailingSince ??= clock.GetUtcNow();
                _publishError = $"{ex.GetType().Name}: {ex.Message.Split('\n')[0]}";
                metrics.PublishFailed();
                LogPublishFailed(ex, OrderId, evt.Sequence);
                await ScheduleOutboxRetryAsync();
                return;
            }

            State.PublishedSequence = evt.Sequence;
            metrics.PublishedOne();
            if (options.Value.FanOut == OrderFanOut.Dispatcher)
            {
                // Subscribers the dispatcher will not hand it (nothing to do for its kind) are done with it now, for their lag.
                foreach (var name in subscribers.LeftOutOf(published))
                {
                    metrics.For(name).SkippedOne();
                }
            }

            SyncBacklog();
            _publishError = null;
            _publishFailingSince = null;
        }

        await ClearOutboxRetryAsync();
    }

    /// <summary>Brings this activation's share of the outbox backlog gauge in line with the state (written, re-read or published).</summary>
    private void SyncBacklog()
    {
        var backlog = _order.IsTrusted ? State.LastSequence - State.PublishedSequence : 0;
        if (backlog != _backlogCounted)
        {
            metrics.OutboxChanged(backlog - _backlogCounted);
            _backlogCounted = backlog;
        }
    }

    private async Task ScheduleOutboxRetryAsync()
    {
        var period = options.Value.OutboxRetryPeriod;
        _outboxTimer ??= this.RegisterGrainTimer(_ => PublishOutboxAsync(), new GrainTimerCreationOptions(period, period) { KeepAlive = true });
        if (!_outboxReminderSet)
        {
            try
            {
                await this.RegisterOrUpdateReminder(OutboxReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                _outboxReminderSet = true;
            }
            catch (Exception ex)
            {
                LogReminderFailed(ex, OrderId);
            }
        }
    }

    private async Task ClearOutboxRetryAsync()
    {
        _outboxTimer?.Dispose();
        _outboxTimer = null;
        if (_outboxReminderSet)
        {
            try
            {
                var reminder = await this.GetReminder(OutboxReminder);
                if (reminder is not null)
                {
                    await this.UnregisterReminder(reminder);
                }

                _outboxReminderSet = false;
            }
            catch (Exception ex)
            {
                LogReminderFailed(ex, OrderId);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} had an unpublished cancellation whose reason exceeded {MaxLength} characters (accepted before the bound); the reason was cut so the event can be published")]
    private partial void LogReasonCut(string orderId, int maxLength);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Order {OrderId} rejected a command: {Code} {Reason}")]
    private partial void LogRejected(string orderId, OrderErrorCode code, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not take back its relay mark for event {Sequence}, which was not written; its relay shard keeps checking it")]
    private partial void LogUnmarkFailed(Exception exception, string orderId, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not ask its relay shard whether its outbox was delivered; it publishes the outbox again")]
    private partial void LogRelayNotAsked(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not publish event {Sequence}; it stays in the outbox")]
    private partial void LogPublishFailed(Exception exception, string orderId, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not register its outbox reminder")]
    private partial void LogReminderFailed(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not save its outbox position on deactivation")]
    private partial void LogOutboxMarkNotSaved(Exception exception, string orderId);
}
