using Orleans.Dashboard;

namespace OrderFlow.Silo.Http;

/// <summary>
/// Section <c>Dashboard</c>: the Orleans Dashboard on the silo's HTTP host. The same section also binds Orleans'
/// own <see cref="DashboardOptions"/> (<c>CounterUpdateIntervalMs</c>, <c>HistoryLength</c>, <c>HideTrace</c>).
/// </summary>
public sealed class DashboardHostOptions
{
    public const string SectionName = "Dashboard";

    /// <summary>Where the dashboard is served on the HTTP host.</summary>
    public const string Path = "/dashboard";

    /// <summary>
    /// Serve the dashboard at <c>/dashboard</c> (behind <c>Http:ApiKey</c> when set). Default true. Off, the silo does not
    /// add the dashboard at all: no per-call grain filter, no counter export, and <c>/dashboard</c> answers 404 — the
    /// switch <c>./bench.sh --dashboard on|off</c> measures.
    /// </summary>
    public bool Enabled { get; set; } = true;
}

/// <summary>Wiring of the dashboard: the silo part (<see cref="AddOrderFlowDashboard"/>) and the HTTP part (<see cref="MapOrderFlowDashboard"/>).</summary>
public static class DashboardHosting
{
    public static DashboardHostOptions Read(IConfiguration configuration) =>
        configuration.GetSection(DashboardHostOptions.SectionName).Get<DashboardHostOptions>() ?? new DashboardHostOptions();

    /// <summary>Adds the dashboard's grains, counter export and incoming grain-call filter — only when enabled.</summary>
    public static ISiloBuilder AddOrderFlowDashboard(this ISiloBuilder silo, IConfiguration configuration)
    {
        if (Read(configuration).Enabled)
        {
            silo.AddDashboard(o => configuration.GetSection(DashboardHostOptions.SectionName).Bind(o));
        }

        return silo;
    }

    /// <summary>
    /// Maps the dashboard at <see cref="DashboardHostOptions.Path"/> when enabled. No authorization of its own: the API-key
    /// middleware runs before every endpoint, this one included.
    /// </summary>
    public static WebApplication MapOrderFlowDashboard(this WebApplication app)
    {
        if (Read(app.Configuration).Enabled)
        {
            app.MapOrleansDashboard(routePrefix: DashboardHostOptions.Path);
        }

        return app;
    }
}
