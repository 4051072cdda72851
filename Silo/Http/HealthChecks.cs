using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

namespace OrderFlow.Silo.Http;

/// <summary>Ready only once this silo is an active member of its cluster (joined, not joining or shutting down).</summary>
internal sealed class SiloJoinedHealthCheck(IClusterMembershipService membership, ILocalSiloDetails local) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy($"silo {local.SiloAddress} is active in cluster {local.ClusterId}")
            : HealthCheckResult.Unhealthy($"silo {local.SiloAddress} is {status}, not active"));
    }
}

/// <summary>
/// Ready only while grain storage answers: one read of a probe record through the orders' own storage provider — the
/// path every command takes, in either profile (memory, or Azure Table storage), fault injection included.
/// </summary>
internal sealed class GrainStorageHealthCheck(IServiceProvider services) : IHealthCheck
{
    /// <summary>The probe's grain type: no grain has it, so the read finds no record and changes nothing.</summary>
    public const string ProbeGrainType = "orderflow-health";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var storage = services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders);
        try
        {
            await storage.ReadStateAsync("probe", GrainId.Create(ProbeGrainType, "probe"), new GrainState<HealthProbe>()).WaitAsync(Timeout, cancellationToken);
            return HealthCheckResult.Healthy($"storage '{StorageNames.Orders}' answered");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"storage '{StorageNames.Orders}' did not answer: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}", ex);
        }
    }
}

/// <summary>The probe record's type; never written.</summary>
[GenerateSerializer, Alias("health.HealthProbe.v1")]
public sealed class HealthProbe;

/// <summary>The health endpoints' body: the overall status, and each check's status and reason.</summary>
internal static class HealthReportWriter
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        return JsonSerializer.SerializeAsync(context.Response.Body, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        }, cancellationToken: context.RequestAborted);
    }
}
