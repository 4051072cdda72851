using System.Reflection;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using Orleans.Configuration;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// The subscribers this silo hosts, found in Orleans' own grain class list: every grain class that implements
/// <see cref="IOrderSubscriberGrain"/>. Adding a subscriber class adds it here; nothing else changes.
/// </summary>
public sealed class SubscriberCatalog
{
    private readonly Lazy<IReadOnlyDictionary<string, GrainType>> _subscribers;
    private readonly Lazy<IReadOnlyDictionary<string, (string StateName, string StorageName)>> _inboxes;
    private readonly Lazy<IReadOnlyDictionary<string, string?>> _kinds;

    public SubscriberCatalog(IOptions<GrainTypeOptions> grainTypes)
    {
        _subscribers = new(() => Discover(grainTypes.Value.Classes));
        _inboxes = new(() => DiscoverInboxes(grainTypes.Value.Classes));
        _kinds = new(() => SubscriberClasses(grainTypes.Value.Classes)
            .ToDictionary(c => c.Name, c => HandlesOnlyAttribute.KindsOf(c.Type), StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Subscribers the order's dispatcher will not hand <paramref name="published"/> (<see cref="HandlesOnlyAttribute"/>):
    /// the event is done for them as it is published.
    /// </summary>
    public IEnumerable<string> LeftOutOf(OrderEvent published)
    {
        foreach (var (name, kinds) in _kinds.Value)
        {
            if (!HandlesOnlyAttribute.MustDeliver(kinds, published))
            {
                yield return name;
            }
        }
    }

    /// <summary>The event kinds subscriber <paramref name="name"/> handles (<see cref="HandlesOnlyAttribute"/>), or null for every kind.</summary>
    public string? KindsOf(string name) => _kinds.Value[name];

    /// <summary>Where a subscriber's inbox is stored: the state and storage names of its <c>[PersistentState]</c> or <see cref="KeyedEffectsAttribute"/>.</summary>
    public (string StateName, string StorageName) InboxOf(string name) => _inboxes.Value[name];

    public IReadOnlyList<string> Names => _subscribers.Value.Keys.Order(StringComparer.Ordinal).ToArray();

    public bool TryGet(string name, out GrainType grainType) => _subscribers.Value.TryGetValue(name, out grainType);

    /// <summary>
    /// The subscriber's own spelling of <paramref name="name"/> (names match case-insensitively), or null when no subscriber
    /// has it: what keys the subscriber's records, such as its dead-letter index, are stored under.
    /// </summary>
    public string? NameOf(string name) => _subscribers.Value.Keys.FirstOrDefault(known => string.Equals(known, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Subscriber <paramref name="name"/>'s grain for one order (the name must be one of <see cref="Names"/>).</summary>
    public IOrderSubscriberGrain GrainOf(IGrainFactory grains, string name, string orderId) =>
        TryGet(name, out var grainType)
            ? grains.GetGrain<IOrderSubscriberGrain>(GrainId.Create(grainType, orderId))
            : throw new ArgumentException($"no subscriber named {name}", nameof(name));

    public static IReadOnlyDictionary<string, GrainType> Discover(IEnumerable<Type> grainClasses)
    {
        var found = new Dictionary<string, GrainType>(StringComparer.OrdinalIgnoreCase);
        foreach (var type in grainClasses.Where(t => !t.IsAbstract && typeof(IOrderSubscriberGrain).IsAssignableFrom(t)))
        {
            var name = type.GetCustomAttribute<GrainTypeAttribute>()?.GetGrainType(null!, type).ToString()
                ?? throw new InvalidOperationException($"Subscriber {type.FullName} needs a [GrainType(\"name\")] attribute: its grain type is its subscriber name.");
            if (type.GetCustomAttribute<ImplicitStreamSubscriptionAttribute>() is null)
            {
                throw new InvalidOperationException($"Subscriber {type.FullName} needs [ImplicitStreamSubscription(OrderStreams.Namespace)].");
            }

            found[name] = GrainType.Create(name);
        }

        return found;
    }

    private static IReadOnlyDictionary<string, (string, string)> DiscoverInboxes(IEnumerable<Type> grainClasses)
    {
        var found = new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, type) in SubscriberClasses(grainClasses))
        {
            if (KeyedEffectsAttribute.Of(type) is { } keyed)
            {
                found[name] = (keyed.StateName, keyed.StorageName);
                continue;
            }

            var inbox = type.GetConstructors().SelectMany(c => c.GetParameters())
                .Where(p => p.ParameterType == typeof(IPersistentState<SubscriberState>))
                .Select(p => p.GetCustomAttribute<PersistentStateAttribute>())
                .FirstOrDefault(a => a is not null)
                ?? throw new InvalidOperationException($"Subscriber {type.FullName} needs a [PersistentState] IPersistentState<SubscriberState> inbox, or [KeyedEffects].");
            found[name] = (inbox.StateName, inbox.StorageName ?? "Default");
        }

        return found;
    }

    // The subscriber classes among the grain classes, by name (their grain type; Discover checks each has one).
    private static IEnumerable<(string Name, Type Type)> SubscriberClasses(IEnumerable<Type> grainClasses) =>
        grainClasses.Where(t => !t.IsAbstract && typeof(IOrderSubscriberGrain).IsAssignableFrom(t))
            .Select(t => (t.GetCustomAttribute<GrainTypeAttribute>()!.GetGrainType(null!, t).ToString()!, t));
}
