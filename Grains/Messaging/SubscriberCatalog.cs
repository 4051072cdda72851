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

    public SubscriberCatalog(IOptions<GrainTypeOptions> grainTypes)
    {
        _subscribers = new(() => Discover(grainTypes.Value.Classes));
    }

    public IReadOnlyList<string> Names => _subscribers.Value.Keys.Order(StringComparer.Ordinal).ToArray();

    public bool TryGet(string name, out GrainType grainType) => _subscribers.Value.TryGetValue(name, out grainType);

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
}
