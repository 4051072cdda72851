namespace OrderFlow.Contracts;

/// <summary>
/// Where one order stands at one subscriber. <see cref="Attempts"/> and <see cref="LastError"/> are the head event's
/// counted (handler) failures; <see cref="TransientSince"/>, <see cref="LastTransientError"/> and
/// <see cref="TransientAttempts"/> its transient infrastructure failures, which are retried without counting until
/// <c>TransientRetry:GiveUpAfter</c>; <see cref="TransientFailures"/> counts every transient failure of this inbox.
/// In an order report (<see cref="IOperationsGrain"/>), <see cref="AppliedSequence"/> counts the order's latest events
/// this subscriber has nothing to do for and was not handed (<c>HandlesOnly</c>) as applied, as the subscriber itself
/// will when a later event reaches it.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.SubscriberStatus.v1")]
public sealed record SubscriberStatus(
    [property: Id(0)] string Subscriber,
    [property: Id(1)] string OrderId,
    [property: Id(2)] long AppliedSequence,
    [property: Id(3)] IReadOnlyList<long> BufferedSequences,
    [property: Id(4)] int Attempts,
    [property: Id(5)] DateTimeOffset? NextAttemptAt,
    [property: Id(6)] bool Parked,
    [property: Id(7)] string? LastError,
    [property: Id(8)] IReadOnlyList<long> SkippedSequences,
    [property: Id(9)] long DuplicatesIgnored,
    [property: Id(10)] long FailedAttempts,
    [property: Id(11)] long HandlerRuns,
    [property: Id(12)] DateTimeOffset? GapSince,
    [property: Id(13)] long GapRepairs,
    [property: Id(14)] DateTimeOffset? TransientSince = null,
    [property: Id(15)] string? LastTransientError = null,
    [property: Id(16)] int TransientAttempts = 0,
    [property: Id(17)] long TransientFailures = 0);

/// <summary>An event a subscriber gave up on after its last attempt; it and the order's later events wait, in order.</summary>
[GenerateSerializer, Immutable, Alias("orders.DeadLetter.v1")]
public sealed record DeadLetter(
    [property: Id(0)] string Subscriber,
    [property: Id(1)] string OrderId,
    [property: Id(2)] long Sequence,
    [property: Id(3)] string EventKind,
    [property: Id(4)] string Error,
    [property: Id(5)] int Attempts,
    [property: Id(6)] DateTimeOffset FirstFailureAt,
    [property: Id(7)] DateTimeOffset LastFailureAt);

/// <summary>What an operator's retry or skip did.</summary>
public enum DeadLetterActionOutcome
{
    Resumed = 1,
    Skipped = 2,
    NotParked = 3,
    WrongSequence = 4,
    UnknownSubscriber = 5,
}

/// <summary>
/// What <see cref="IOperationsGrain.RetryAllAsync"/> did: orders resumed, orders whose resume failed (the first
/// <see cref="MaxFailuresListed"/> listed as "order: error"), and index entries whose inbox was not parked any more.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.BulkRetryResult.v1")]
public sealed record BulkRetryResult(
    [property: Id(0)] int Resumed,
    [property: Id(1)] int Failed,
    [property: Id(2)] int NotParked,
    [property: Id(3)] IReadOnlyList<string> Failures)
{
    public const int MaxFailuresListed = 20;
}

[GenerateSerializer, Immutable, Alias("orders.DeadLetterActionResult.v1")]
public sealed record DeadLetterActionResult(
    [property: Id(0)] DeadLetterActionOutcome Outcome,
    [property: Id(1)] string Message,
    [property: Id(2)] SubscriberStatus? Status);

/// <summary>
/// Common surface of every subscriber grain (one activation per subscriber per order key). Each subscriber
/// type also has its own interface, and its grain type name is the subscriber's name.
/// </summary>
[Alias("orders.IOrderSubscriberGrain")]
public interface IOrderSubscriberGrain : IGrainWithStringKey
{
    [Alias("GetStatus")] Task<SubscriberStatus> GetStatusAsync();

    /// <summary>
    /// One delivery of <paramref name="evt"/> from the order's dispatcher, handled exactly as a stream delivery: it
    /// returns once the event's outcome is durable; a throw means "deliver again". True when this subscriber applied the
    /// event (and everything before it), not parked, with every effect durable — stored with its progress, or kept under
    /// its own key downstream (its progress may be written later) — so the relay need not check it for this event.
    /// </summary>
    [Alias("Deliver")] Task<bool> DeliverAsync(OrderEvent evt);

    /// <summary>Resumes a parked order from its parked event, in order.</summary>
    [Alias("RetryParked")] Task<DeadLetterActionResult> RetryParkedAsync();

    /// <summary>Records a skip of the parked event <paramref name="sequence"/> and continues with the next one.</summary>
    [Alias("SkipParked")] Task<DeadLetterActionResult> SkipParkedAsync(long sequence);

    /// <summary>
    /// The relay asks this inbox to reach the order's last event: events of <paramref name="log"/> (the order's whole
    /// log) that it has neither applied nor holds are added and applied in order. Says where it stands afterwards.
    /// </summary>
    [Alias("Reach")] Task<ReachOutcome> ReachAsync(IReadOnlyList<OrderEvent> log);

    /// <summary>
    /// <see cref="ReachAsync"/>, also saying how many events of <paramref name="log"/> were new to this inbox (neither
    /// applied nor held) and of a kind it handles (<c>HandlesOnly</c>; events it only steps over are not work): the
    /// backfill counts the orders that needed work.
    /// </summary>
    [Alias("ReachCounted")] Task<ReachResult> ReachCountedAsync(IReadOnlyList<OrderEvent> log);
}

/// <summary>Where a subscriber stands after being asked to reach an order's last event, and how many events it handles it took from the log.</summary>
[GenerateSerializer, Immutable, Alias("orders.ReachResult.v1")]
public sealed record ReachResult(
    [property: Id(0)] ReachOutcome Outcome,
    [property: Id(1)] int Added);

/// <summary>Per-order report across the order and every subscriber.</summary>
[GenerateSerializer, Immutable, Alias("orders.OrderReport.v1")]
public sealed record OrderReport(
    [property: Id(0)] OrderSnapshot Order,
    [property: Id(1)] IReadOnlyList<SubscriberStatus> Subscribers,
    [property: Id(2)] RelayEntry? Relay = null);

/// <summary>
/// Undelivered work of one subscriber across the cluster: orders the relay holds for it, the oldest one's start, and
/// <see cref="Parked"/>, the orders parked at it for an operator (its dead-letter index entries). A parked order is
/// settled as far as the relay goes (it waits for an operator, not for delivery), so it is counted there and not in
/// <see cref="Orders"/>. 0 for the rows that are not subscribers (<c>outbox</c>, <c>*</c>).
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.SubscriberLag.v1")]
public sealed record SubscriberLag(
    [property: Id(0)] string Subscriber,
    [property: Id(1)] int Orders,
    [property: Id(2)] DateTimeOffset? OldestSince,
    [property: Id(3)] int Parked = 0);

/// <summary>
/// Operator entry point: per-order introspection across all subscribers, and the dead-letter queue.
/// Knows the subscribers from the silo's grain catalog, so a new subscriber shows up without changes here.
/// </summary>
[Alias("orders.IOperationsGrain")]
[ClientCallable]
public interface IOperationsGrain : IGrainWithIntegerKey
{
    /// <summary>Most orders one <see cref="InspectManyAsync"/> call takes (each activates the order and every subscriber): page larger sets.</summary>
    public const int MaxInspectBatch = 100;

    [Alias("GetSubscribers")] Task<IReadOnlyList<string>> GetSubscribersAsync();
    [Alias("Inspect")] Task<OrderReport> InspectAsync(string orderId);
    [Alias("InspectMany")] Task<IReadOnlyList<OrderReport>> InspectManyAsync(IReadOnlyList<string> orderIds);
    /// <summary>
    /// Per subscriber, the orders the relay holds with undelivered work and the oldest one's start (the lag an operator
    /// pages on); the row <c>*</c> counts orders no relay check has answered for yet (any subscriber may be behind), <c>outbox</c> orders whose
    /// events are not all published. Each subscriber's row also counts the orders parked at it (its dead-letter index), which
    /// the relay no longer holds.
    /// </summary>
    [Alias("Lag")] Task<IReadOnlyList<SubscriberLag>> GetLagAsync();

    [Alias("ListDeadLetters")] Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? subscriber);
    [Alias("CountDeadLetters")] Task<IReadOnlyDictionary<string, int>> CountDeadLettersAsync();
    [Alias("Retry")] Task<DeadLetterActionResult> RetryAsync(string subscriber, string orderId);

    /// <summary>
    /// Resumes every order parked at <paramref name="subscriber"/> that its dead-letter index lists — only those whose
    /// first failure is at or after <paramref name="parkedSince"/>, when given — as <see cref="RetryAsync"/> would one by
    /// one (a few at a time). Entries whose inbox is no longer parked are dropped from the index and counted apart.
    /// Safe to run again: a resumed order is not parked any more. A large set can outlast the caller's response
    /// timeout; the retries go on, and a second run reports what is left. Throws <see cref="ArgumentException"/> for an
    /// unknown subscriber.
    /// </summary>
    [Alias("RetryAll")] Task<BulkRetryResult> RetryAllAsync(string subscriber, DateTimeOffset? parkedSince);
    [Alias("Skip")] Task<DeadLetterActionResult> SkipAsync(string subscriber, string orderId, long sequence);

    /// <summary>
    /// Starts the backfill of <paramref name="subscriber"/> (<see cref="IBackfillJobGrain"/>): every order in the catalog
    /// created at or after <paramref name="since"/> (every order, when null), finished ones only with
    /// <paramref name="includeFinished"/>, is brought to its last event at that subscriber. The job runs in the cluster
    /// whether or not anyone watches. Attaches to a running job with the same parameters and refuses one with others
    /// (<see cref="BackfillOutcome.Refused"/>); <see cref="BackfillOutcome.UnknownSubscriber"/> for a name no subscriber has.
    /// </summary>
    [Alias("StartBackfill")] Task<BackfillReply> StartBackfillAsync(string subscriber, DateTimeOffset? since, bool includeFinished);

    /// <summary>The progress of <paramref name="subscriber"/>'s backfill (<see cref="BackfillOutcome.Reported"/>), or <see cref="BackfillOutcome.NoJob"/>.</summary>
    [Alias("GetBackfill")] Task<BackfillReply> GetBackfillAsync(string subscriber);
}

/// <summary>
/// One shard of one subscriber's dead letters (key = <see cref="DeadLetterShards.KeyFor"/>, e.g. <c>points.17</c>): a cheap
/// count and a list for operators, fanned out over the shards by <see cref="IOperationsGrain"/>. A bare subscriber name is
/// the pre-shard single-row index: <c>deadletters list</c> moves its entries into the shards.
/// </summary>
[Alias("orders.IDeadLetterIndexGrain")]
public interface IDeadLetterIndexGrain : IGrainWithStringKey
{
    [Alias("Park")] Task ParkAsync(DeadLetter letter);
    [Alias("Resolve")] Task ResolveAsync(string orderId);

    /// <summary>
    /// Removes the order's entry only if it is still exactly <paramref name="letter"/>: for a reader that found the
    /// entry stale, without erasing a newer parking of the same order. True if it was removed.
    /// </summary>
    [Alias("ResolveStale")] Task<bool> ResolveStaleAsync(DeadLetter letter);
    [Alias("List")] Task<IReadOnlyList<DeadLetter>> ListAsync();
    [Alias("Count")] Task<int> CountAsync();
}
