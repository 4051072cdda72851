using System.Collections.Concurrent;
using System.Reflection;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Declares the event types a subscriber's handler does something for; for every other type it returns
/// <c>NothingToDo()</c>. The order's dispatcher then does not hand the subscriber an event of another type, unless it is
/// the order's final event (every subscriber takes that one, and stores its progress at it), and the subscriber steps
/// over such events when a later one arrives (<see cref="OrderEvent.EarlierKinds"/>), as if it had applied them with
/// nothing to do. So an order costs a subscriber only the calls that matter to it: the coupon is not called for
/// "placed" or "shipped", and an order that waits for payment activates one subscriber instead of six.
/// The handler is called only for those types and the final event, however an event reaches the subscriber (from the
/// order's log in a gap repair or catch-up too). A subscriber without it is handed every event. Declaring too few types
/// loses effects, so list every type the handler acts on.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class HandlesOnlyAttribute(params Type[] eventTypes) : Attribute
{
    private static readonly ConcurrentDictionary<Type, string?> Known = new();

    public IReadOnlyList<Type> EventTypes { get; } = eventTypes.Length > 0 && eventTypes.All(type => OrderEventKinds.CodeOf(type) != '?')
        ? eventTypes
        : throw new ArgumentException(
            $"list one or more concrete order event types ({string.Join(", ", eventTypes.Where(type => OrderEventKinds.CodeOf(type) == '?').Select(type => type.Name))} has no kind letter in OrderEventKinds)",
            nameof(eventTypes));

    /// <summary>
    /// The kind letters (<see cref="OrderEventKinds"/>) a subscriber class handles, or null when it declares nothing
    /// (it takes every event); read by reflection once per class.
    /// </summary>
    public static string? KindsOf(Type subscriberType) =>
        Known.GetOrAdd(subscriberType, static type => type.GetCustomAttribute<HandlesOnlyAttribute>() is { } declared
            ? new string(declared.EventTypes.Select(OrderEventKinds.CodeOf).Distinct().ToArray())
            : null);

    /// <summary>
    /// Whether a subscriber that handles <paramref name="kinds"/> (null: every kind) must be handed <paramref name="evt"/>:
    /// when it handles its kind, when the event is final, or when the event does not say what came before it.
    /// </summary>
    public static bool MustDeliver(string? kinds, OrderEvent evt) => evt.KnownEarlierKinds is null || Handles(kinds, evt);

    /// <summary>Whether the handler of a subscriber that handles <paramref name="kinds"/> is called for <paramref name="evt"/>: its kind is one of them, or it is the order's final event.</summary>
    public static bool Handles(string? kinds, OrderEvent evt) =>
        kinds is null || evt.IsFinal || kinds.Contains(OrderEventKinds.CodeOf(evt.GetType()));

    /// <summary>
    /// How far a subscriber that handles <paramref name="kinds"/> and has applied through <paramref name="applied"/> may
    /// step, when <paramref name="evt"/> arrives, over events it has nothing to do for: the last sequence before the
    /// first earlier event it does handle (or whose kind is unknown), at most <paramref name="evt"/>'s own sequence − 1.
    /// </summary>
    public static long SkippableThrough(string? kinds, long applied, OrderEvent evt)
    {
        if (kinds is null || evt.KnownEarlierKinds is not { } earlier)
        {
            return applied;
        }

        var through = applied;
        while (through < evt.Sequence - 1 && earlier[(int)through] is var kind && kind != '?' && !kinds.Contains(kind))
        {
            through++;
        }

        return through;
    }
}
