using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// A one-silo test cluster whose configuration is <typeparamref name="TConfigurator"/>: each distinct configuration is
/// a sealed subclass with its own xUnit collection, shared by the tests of that collection.
/// </summary>
public abstract class SiloFixture<TConfigurator> : IAsyncLifetime where TConfigurator : ISiloConfigurator, new()
{
    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>The silo's storage faults (the configuration must call <c>AddStorageFaultInjection</c>).</summary>
    public StorageFaults Faults => ((InProcessSiloHandle)Cluster.Primary!).SiloHost!.Services.GetRequiredService<StorageFaults>();

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}
