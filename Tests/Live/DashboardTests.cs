using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Orleans;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Live;

/// <summary>The Orleans Dashboard on the silo's HTTP host: behind the API key, its data served by the silo, and gone when switched off.</summary>
[Collection(LiveSiloCollection.Name)]
public sealed class DashboardTests(LiveSiloFixture fixture)
{
    [Fact]
    public async Task Dashboard_is_served_at_dashboard_and_only_with_the_api_key()
    {
        var page = await fixture.Client.GetAsync("/dashboard/");
        var html = await page.Content.ReadAsStringAsync();
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"GET /dashboard/ with the key answered {(int)page.StatusCode}: {html}");
        Assert.Contains("<html", html, StringComparison.OrdinalIgnoreCase);

        // Its data comes from the dashboard's grains in this silo: the cluster's one silo is listed, once the dashboard
        // has collected its first counters (it polls every second; right after the silo starts its lists are empty).
        await Eventually.Until(
            async () => (await fixture.Client.GetAsync("/dashboard/DashboardCounters")) is var r ? (r.StatusCode, Json: await r.Content.ReadAsStringAsync()) : default,
            c => c.StatusCode == HttpStatusCode.OK
                 && c.Json.Replace(" ", "", StringComparison.Ordinal).Contains("\"totalActiveHostCount\":1", StringComparison.OrdinalIgnoreCase),
            TimeSpan.FromSeconds(30), c => $"GET /dashboard/DashboardCounters answered {(int)c.StatusCode}: {c.Json}");

        // What ./bench.sh --dashboard on|off measures: the profiler filter on every incoming grain call.
        Assert.Contains(fixture.App.Services.GetServices<IIncomingGrainCallFilter>(), f => f.GetType().Name == "GrainProfilerFilter");

        foreach (var path in new[] { "/dashboard/", "/dashboard/DashboardCounters", "/dashboard/index.min.js" })
        {
            await (await fixture.Anonymous.GetAsync(path)).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
        }
    }
}

/// <summary><c>Dashboard:Enabled=false</c>: nothing of the dashboard in the silo — no endpoint, no grain-call filter.</summary>
[Collection(DashboardOffCollection.Name)]
public sealed class DashboardOffTests(DashboardOffFixture fixture)
{
    [Fact]
    public async Task A_silo_with_the_dashboard_off_serves_no_dashboard_and_adds_no_grain_call_filter()
    {
        await (await fixture.Client.GetAsync("/dashboard/DashboardCounters")).AssertProblemAsync(HttpStatusCode.NotFound, "NotFound");
        Assert.DoesNotContain(fixture.App.Services.GetServices<IIncomingGrainCallFilter>(), f => f.GetType().Name == "GrainProfilerFilter");
        // The page still links to it, and the rest of the host is unchanged.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client.GetAsync("/live/summary")).StatusCode);
    }

    [Fact]
    public void The_dashboard_switch_defaults_to_on()
    {
        Assert.True(new DashboardHostOptions().Enabled);
    }
}
