using System.Diagnostics;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Telemetry;

/// <summary>
/// The names OrderFlow's telemetry is published under, and its one <see cref="ActivitySource"/>. The meter of the same
/// name is created by <c>SubscriberMetrics</c> and <c>StorageOperationCounter</c> (one per silo, so several silos in
/// one process stay apart); the source is static, as the .NET guidance has it: an activity source without a
/// listener costs a null check per span.
/// </summary>
public static class OrderFlowTelemetry
{
    /// <summary>The meter and activity source name.</summary>
    public const string Name = "OrderFlow";

    /// <summary>The span of a command in its order grain, the outbox's publish, and each subscriber's handler.</summary>
    public static readonly ActivitySource Source = new(Name);

    public const string OrderIdTag = "orderflow.order_id";
    public const string SequenceTag = "orderflow.sequence";
    public const string EventKindTag = "orderflow.event";
    public const string SubscriberTag = "orderflow.subscriber";
    public const string OutcomeTag = "orderflow.outcome";

    /// <summary>
    /// The event with the current span's context stored in it (<see cref="OrderEvent.TraceParent"/>), so whoever
    /// publishes or handles it later — an outbox retry, the relay, a subscriber catching up from the log — continues
    /// the command's trace. Unchanged (no copy) when telemetry is off (nobody listens to <see cref="Source"/>): an
    /// activity ASP.NET Core starts on its own is not worth 55 bytes in every stored event then. An unsampled context is
    /// stored too, so the event's later spans stay unsampled with it (parent-based sampling).
    /// </summary>
    public static OrderEvent WithTraceContext(OrderEvent evt) =>
        Source.HasListeners() && Activity.Current is { IdFormat: ActivityIdFormat.W3C } current ? evt with { TraceParent = current.Id } : evt;

    /// <summary>The stored context of an event, or default (the span then takes the current one as parent).</summary>
    public static ActivityContext ParentOf(OrderEvent evt) =>
        evt.TraceParent is { } traceParent && ActivityContext.TryParse(traceParent, null, isRemote: true, out var context) ? context : default;

    /// <summary>Starts the span of a subscriber's handler run, a child of the context stored with the event.</summary>
    public static Activity? StartHandler(string spanName, string subscriber, OrderEvent evt)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity(spanName, ActivityKind.Consumer, ParentOf(evt));
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(SubscriberTag, subscriber);
            Describe(activity, evt);
        }

        return activity;
    }

    /// <summary>Starts the span of one outbox publish, a child of the context stored with the event (if any).</summary>
    public static Activity? StartPublish(OrderEvent evt)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity("publish orders", ActivityKind.Producer, ParentOf(evt));
        if (activity is { IsAllDataRequested: true })
        {
            Describe(activity, evt);
        }

        return activity;
    }

    /// <summary>Marks a span failed with the exception's type and message (no stack: spans stay small).</summary>
    public static void Failed(Activity? activity, Exception ex)
    {
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetStatus(ActivityStatusCode.Error, ex.Message);
            activity.SetTag("error.type", ex.GetType().FullName);
        }
    }

    private static void Describe(Activity activity, OrderEvent evt)
    {
        activity.SetTag(OrderIdTag, evt.OrderId);
        activity.SetTag(SequenceTag, evt.Sequence);
        activity.SetTag(EventKindTag, evt.Kind);
    }
}
