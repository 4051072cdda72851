using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// The grain factory of a silo of an in-process test cluster: calls made through it come from the silo's hosted
/// client, not from an external client, so the grain interfaces internal to the cluster answer them.
/// </summary>
public static class SiloGrains
{
    public static IGrainFactory Of(TestCluster cluster) =>
        ((InProcessSiloHandle)cluster.GetActiveSilos().First()).SiloHost.Services.GetRequiredService<IGrainFactory>();
}
