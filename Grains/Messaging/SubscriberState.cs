using OrderFlow.Contracts;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// One subscriber's durable inbox for one order: how far it has applied, the events it holds but has not
/// applied yet (the reorder buffer, the event being retried and a parked tail), retry state and counters.
/// All of it is one record, written in one write.
/// </summary>
[GenerateSerializer, Alias("messaging.SubscriberState.v1")]
public sealed class SubscriberState
{
    /// <summary>Every event up to this sequence has been applied (or skipped by an operator).</summary>
    [Id(0)] public long AppliedSequence { get; set; }

    /// <summary>Accepted events above <see cref="AppliedSequence"/>, applied strictly in sequence order.</summary>
    [Id(1)] public SortedDictionary<long, OrderEvent> Inbox { get; set; } = [];

    /// <summary>Failed attempts at the head event (sequence <see cref="AppliedSequence"/> + 1).</summary>
    [Id(2)] public int Attempts { get; set; }
    [Id(3)] public DateTimeOffset? FirstFailureAt { get; set; }
    [Id(4)] public DateTimeOffset? LastFailureAt { get; set; }
    [Id(5)] public DateTimeOffset? NextAttemptAt { get; set; }
    [Id(6)] public string? LastError { get; set; }

    /// <summary>The head event used up its attempts: it and the rest of the order wait for an operator.</summary>
    [Id(7)] public bool Parked { get; set; }

    /// <summary>Sequences an operator chose to skip; they count as applied but their effect never ran.</summary>
    [Id(8)] public List<long> Skipped { get; set; } = [];

    [Id(9)] public long DuplicatesIgnored { get; set; }
    [Id(10)] public long FailedAttempts { get; set; }
    [Id(11)] public long HandlerRuns { get; set; }

    /// <summary>Since when a later event has been waiting for a missing one.</summary>
    [Id(12)] public DateTimeOffset? GapSince { get; set; }
    [Id(13)] public long GapRepairs { get; set; }

    /// <summary>The order's final event (received or cancelled) is applied: nothing more will come for this order.</summary>
    [Id(14)] public bool Finished { get; set; }

    /// <summary>
    /// Since when the head event has been failing for transient infrastructure reasons (FailureClassifier): the clock
    /// that <c>TransientRetry:GiveUpAfter</c> runs against. Those failures are not counted in <see cref="Attempts"/>.
    /// </summary>
    [Id(15)] public DateTimeOffset? TransientSince { get; set; }

    /// <summary>The head event's last transient failure.</summary>
    [Id(16)] public string? LastTransientError { get; set; }

    /// <summary>Transient failures of the head event so far: drives the transient backoff.</summary>
    [Id(17)] public int TransientAttempts { get; set; }

    /// <summary>Every transient failure of this inbox, all events together (a counter, like <see cref="FailedAttempts"/>).</summary>
    [Id(18)] public long TransientFailures { get; set; }

    public bool HeadReady => Inbox.ContainsKey(AppliedSequence + 1);

    public bool HasGap => Inbox.Count > 0 && !HeadReady;

    /// <summary>The head event has failed at least once, as a counted attempt or transiently.</summary>
    public bool HasFailure => Attempts > 0 || TransientSince.HasValue;

    public void ClearFailure()
    {
        Attempts = 0;
        FirstFailureAt = null;
        LastFailureAt = null;
        NextAttemptAt = null;
        LastError = null;
        TransientSince = null;
        LastTransientError = null;
        TransientAttempts = 0;
    }
}
