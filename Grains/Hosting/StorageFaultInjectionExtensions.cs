using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>Section <c>StorageFaults</c>: whether the silo can be made to fail its grain storage (drills).</summary>
public sealed class StorageFaultInjectionOptions
{
    public const string SectionName = "StorageFaults";

    /// <summary>
    /// Wraps every grain storage in a <see cref="FaultInjectingGrainStorage"/>, switched at run time through the
    /// silo's <see cref="StorageFaults"/>. Default false: storage is used as is. Off in production.
    /// </summary>
    public bool Enabled { get; set; }
}

public static class StorageFaultInjectionExtensions
{
    /// <summary>
    /// Puts a <see cref="FaultInjectingGrainStorage"/> around every named grain storage registered so far, and registers
    /// the <see cref="StorageFaults"/> that switches them. Orleans registers a grain storage as a keyed
    /// <see cref="IGrainStorage"/> singleton keyed by its name (<c>AddGrainStorage</c>), which is what this replaces.
    /// <para>
    /// Call it <b>after</b> the storage profile (<see cref="OrderMessagingSiloBuilderExtensions.UseEmbeddedOrderStorage"/>,
    /// <see cref="OrderMessagingSiloBuilderExtensions.UseAzureOrderStorage"/>) and any other storage provider: a storage
    /// registered later is not wrapped. Calling it twice wraps nothing twice.
    /// </para>
    /// </summary>
    public static ISiloBuilder AddStorageFaultInjection(this ISiloBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton(sp => new StorageFaults(
            sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetRequiredService<ILogger<StorageFaults>>()));

        var wrapped = services.Select(d => d.ImplementationInstance).OfType<WrappedStorageDescriptors>().SingleOrDefault();
        if (wrapped is null)
        {
            wrapped = new WrappedStorageDescriptors();
            services.AddSingleton(wrapped);
        }

        for (var i = 0; i < services.Count; i++)
        {
            var original = services[i];
            if (!original.IsKeyedService || original.ServiceType != typeof(IGrainStorage) || wrapped.Contains(original))
            {
                continue;
            }

            // The key the storage is resolved with is its name (also when registered for any key).
            var decorated = new ServiceDescriptor(typeof(IGrainStorage), original.ServiceKey,
                (sp, key) => new FaultInjectingGrainStorage(key?.ToString() ?? "", CreateInner(sp, key, original),
                    sp.GetRequiredService<StorageFaults>(), ownsInner: original.KeyedImplementationInstance is null),
                original.Lifetime);
            services[i] = decorated;
            wrapped.Add(decorated);
        }

        return builder;
    }

    private static IGrainStorage CreateInner(IServiceProvider services, object? key, ServiceDescriptor original) =>
        (IGrainStorage)(original.KeyedImplementationInstance
            ?? original.KeyedImplementationFactory?.Invoke(services, key)
            ?? ActivatorUtilities.CreateInstance(services, original.KeyedImplementationType!));

    /// <summary>The descriptors already decorated, so a second call does not wrap them again.</summary>
    private sealed class WrappedStorageDescriptors : HashSet<ServiceDescriptor>;
}
