using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Telemetry;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// The wiring as a web host uses it: a silo co-hosted in a <see cref="WebApplication"/> with
/// <c>AddOrderFlowTelemetry</c> and <c>MapOrderFlowMetrics</c>, read the way Prometheus reads it. Other test silos share
/// this process and its meters' names, so values are checked as lower bounds here; exact values per silo are
/// <see cref="TelemetryTests"/>'.
/// </summary>
public sealed class TelemetryEndpointTests
{
    [Fact]
    public async Task Metrics_endpoint_serves_the_pipeline_and_orleans_instruments_in_prometheus_format_after_a_workload()
    {
        await using var app = await StartAsync(enabled: true, withSilo: true);
        var grains = app.Services.GetRequiredService<IGrainFactory>();
        var driver = new OrderDriver(grains);
        var id = OrderDriver.NewId("prom-");
        await driver.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));
        await driver.WaitCaughtUpAsync(id);
        // A flash sale: one request queued and won, the same request again (duplicate), one for a sale that does not exist.
        var sale = await FlashSaleKit.CreateAsync(grains, $"{id}-sale", FlashSaleKit.Spec($"{id}-flash-sku", stock: 1, rate: 20));
        Assert.Equal(AdmissionOutcome.Queued, (await sale.BuyAsync("buyer", "r-1")).Outcome);
        Assert.Equal(AdmissionOutcome.Duplicate, (await sale.BuyAsync("buyer", "r-1")).Outcome);
        Assert.Equal(AdmissionOutcome.UnknownSale, (await grains.GetGrain<IFlashSaleGrain>($"{id}-none").BuyAsync("buyer", "r-1")).Outcome);
        Assert.Equal(1, (await FlashSaleKit.DrainedAsync(sale, TimeSpan.FromSeconds(30))).Won);

        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        using var response = await http.GetAsync("/metrics");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);

        Assert.True(Value(body, "orderflow_events_published_total", null) >= 4, "published");
        foreach (var subscriber in new[] { "coupon", "points", "sms", "activity-gmv", "inventory", "order-sync" })
        {
            // Its handler's runs: the order's events of the kinds it handles, and the last (HandlesOnly).
            var handled = Handed.Runs(subscriber, Handed.FullLifecycle);
            Assert.True(Value(body, "orderflow_subscriber_applied_total", $"subscriber=\"{subscriber}\"") >= handled, $"{subscriber} applied");
            Assert.NotNull(Value(body, "orderflow_subscriber_lag", $"subscriber=\"{subscriber}\""));
            Assert.True(Value(body, "orderflow_subscriber_apply_latency_seconds_count", $"subscriber=\"{subscriber}\"") >= handled, $"{subscriber} apply latency");
        }

        Assert.NotNull(Value(body, "orderflow_outbox_backlog", null));
        foreach (var outcome in new[] { "queued", "duplicate", "unknown_sale" })
        {
            Assert.True(Value(body, "orderflow_flashsale_admissions_total", $"outcome=\"{outcome}\"") >= 1, $"admissions {outcome}");
            Assert.True(Value(body, "orderflow_flashsale_admission_duration_seconds_count", $"outcome=\"{outcome}\"") >= 1, $"admission duration {outcome}");
        }

        Assert.True(Value(body, "orderflow_flashsale_placements_total", "result=\"won\"") >= 1, "placements won");
        Assert.Matches(new Regex("^orleans_", RegexOptions.Multiline), body);
    }

    [Fact]
    public async Task With_telemetry_off_the_metrics_path_answers_404_and_says_why()
    {
        await using var app = await StartAsync(enabled: false, withSilo: false);
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        using var response = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Telemetry:Enabled=false", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(true, null, null, false)] // the default: metrics only, no span recorded, no per-call filters
    [InlineData(true, "true", null, true)]
    [InlineData(true, null, "http://127.0.0.1:4317", true)] // an exporter: spans recorded
    [InlineData(true, "false", "http://127.0.0.1:4317", false)]
    [InlineData(false, "true", null, false)] // the master switch wins
    public async Task Orleans_activity_propagation_is_installed_only_when_the_silo_records_spans(bool enabled, string? tracing, string? otlp, bool expected)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Telemetry:Enabled"] = enabled ? "true" : "false",
            ["Telemetry:Tracing"] = tracing,
            [TelemetryOptions.OtlpEndpointVariable] = otlp,
        });
        Assert.Equal(expected, OrderFlowTelemetryExtensions.RecordsSpans(builder.Configuration));
        builder.UseOrleans(silo => silo.UseLocalhostClustering(FreePort(), FreePort()).UseEmbeddedOrderStorage().AddOrderMessaging().AddOrderFlowTracePropagation());
        await using var app = builder.Build(); // not started: only its services are read

        var filters = app.Services.GetServices<IIncomingGrainCallFilter>().Select(f => f.GetType().Name).ToArray();
        Assert.Equal(expected, filters.Contains("ActivityPropagationIncomingGrainCallFilter"));
        Assert.Contains(nameof(OrderFlow.Grains.Security.ClientCallFilter), filters); // the security filter is there by default
    }

    private static async Task<WebApplication> StartAsync(bool enabled, bool withSilo)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Telemetry:Enabled"] = enabled ? "true" : "false" });
        builder.AddOrderFlowTelemetry();
        if (withSilo)
        {
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(FreePort(), FreePort())
                .UseEmbeddedOrderStorage()
                .AddOrderMessaging()
                .AddOrderFlowTracePropagation());
        }

        var app = builder.Build();
        app.MapOrderFlowMetrics();
        await app.StartAsync();
        return app;
    }

    /// <summary>The sample's value for the metric (with that label, <c>name="value"</c>), or null when the scrape has no such line.</summary>
    private static double? Value(string exposition, string metric, string? label)
    {
        foreach (var line in exposition.Split('\n'))
        {
            var match = Regex.Match(line, $@"^{Regex.Escape(metric)}(\{{(?<labels>[^}}]*)\}})? (?<value>\S+)");
            if (match.Success && (label is null || match.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
            {
                return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
