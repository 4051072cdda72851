using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Metadata;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Remembers each grain interface's <see cref="GrainInterfaceType"/>. Orleans 10.4 works it out again on every
/// <c>GetGrain</c> — the attribute provider reads the interface's custom attributes by reflection, and without one the
/// type's name is formatted — and this silo's grains make a <c>GetGrain</c> per subscriber per event: measured with
/// <c>perf</c> on the brokers' workload, that reflection was about 4 % of the silo's CPU (docs/BENCHMARKS.md, "Grain
/// references without reflection"). Registered first among the providers, it asks Orleans' own resolver once per type
/// (answering nothing itself during that one question, so the resolver falls through to its usual providers and
/// rules) and gives the same answer from then on. A type's interface type never changes while the process runs.
/// </summary>
public sealed class CachedGrainInterfaceTypes(IServiceProvider services) : IGrainInterfaceTypeProvider
{
    [ThreadStatic]
    private static bool t_resolving;

    private readonly ConcurrentDictionary<Type, GrainInterfaceType> _known = new();

    public bool TryGetGrainInterfaceType(Type type, out GrainInterfaceType grainInterfaceType)
    {
        if (_known.TryGetValue(type, out grainInterfaceType))
        {
            return true;
        }

        if (t_resolving || !type.IsInterface)
        {
            return false; // asked by the resolver below: let Orleans' own providers answer
        }

        t_resolving = true;
        try
        {
            grainInterfaceType = services.GetRequiredService<GrainInterfaceTypeResolver>().GetGrainInterfaceType(type);
        }
        finally
        {
            t_resolving = false;
        }

        _known.TryAdd(type, grainInterfaceType);
        return true;
    }

    /// <summary>Puts the cache in front of Orleans' interface type providers (the resolver asks them in order).</summary>
    public static void AddTo(IServiceCollection services)
    {
        if (!services.Any(d => d.ImplementationType == typeof(CachedGrainInterfaceTypes)))
        {
            services.Insert(0, ServiceDescriptor.Singleton<IGrainInterfaceTypeProvider, CachedGrainInterfaceTypes>());
        }
    }
}
