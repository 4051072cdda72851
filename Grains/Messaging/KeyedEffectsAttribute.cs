using System.Collections.Concurrent;
using System.Reflection;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Declares that a subscriber has <b>keyed effects</b>: every effect of its handler is kept exactly once downstream under
/// a durable key of its own — a ledger's processed key (<c>{order}:award</c>), the one reservation record per order at
/// a SKU or coupon, the replica row's version — so running the handler again for an event it already applied, in
/// sequence order, changes nothing. The subscriber then takes the <see cref="OrderSubscriberGrain"/> constructor without
/// an inbox, and its inbox, stored under <see cref="StateName"/> in <see cref="StorageName"/> (the record
/// <c>[PersistentState(stateName, storageName)]</c> would use), costs less (docs/BENCHMARKS.md, durable profile):
/// <list type="bullet">
/// <item>progress over an applied event is written lazily, like an event with nothing to do: at the order's final
///   event, an event held back, a failure, or deactivation — one write per order instead of one per effect. A crash
///   before it loses only that record: the next activation reads the order's log and runs the handlers again, and
///   downstream answers "already done";</item>
/// <item>a new activation whose first delivery is the order's first event — or the first of a kind it handles, every
///   earlier one being of a kind it is never handed (<see cref="HandlesOnlyAttribute"/>) — does not read its inbox: a
///   new order has none. Its first write is an insert; if a record exists after all (a late copy of the first event), storage refuses
///   the insert, the inbox is re-read and the delivery retried from it. The handler may have run once more for the
///   first event in between, which keyed effects make harmless. Any call other than a delivery reads first.</item>
/// </list>
/// A subscriber whose downstream cannot tell a repeated call from a new one (the SMS gateway) must not declare it, and
/// one that declares it must only return from a handler once its effects are durable downstream (each ledger and the
/// replica row answer after their write): the subscriber then reports the event delivered to the order's relay before
/// its own progress is written, and the relay forgets the order on that word. The same holds for a handler that calls
/// <c>NothingToDo()</c>: only when it did nothing.
/// <para>
/// What it gives up, in one narrow case: an activation that started from a late copy of that first event treats
/// the order as new until its first write or a call other than a delivery. If the stored inbox had parked the order at
/// that event or a later one, or an operator had skipped one, and copies of those events reach this activation (an order
/// whose published mark was lost with a crash re-publishes every event after the stored mark), it applies them — each
/// once, by its key — before the stored park or skip is seen. Nothing is applied twice or lost; an operator's skip can
/// be overridden. With <see cref="HandlesOnlyAttribute"/> that first event is the first of a kind the subscriber
/// handles (for most, the payment: the event a poison park most often stops at), so the override meets parks more
/// often than with the order's placement — under the same rare cause, a re-publish after a lost published mark.
/// The lag metrics count such a replay's events again.
/// </para>
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KeyedEffectsAttribute(string stateName, string storageName) : Attribute
{
    public string StateName { get; } = stateName;

    public string StorageName { get; } = storageName;

    private static readonly ConcurrentDictionary<Type, KeyedEffectsAttribute?> Known = new();

    /// <summary>The class's attribute, or null; read by reflection once per class (every activation asks).</summary>
    public static KeyedEffectsAttribute? Of(Type subscriberType) =>
        Known.GetOrAdd(subscriberType, static type => type.GetCustomAttribute<KeyedEffectsAttribute>());
}
