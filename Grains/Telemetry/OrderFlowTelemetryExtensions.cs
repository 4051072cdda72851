using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace OrderFlow.Grains.Telemetry;

/// <summary>
/// Wires OpenTelemetry into a silo's host: <see cref="AddOrderFlowTelemetry{TBuilder}"/> on the host builder,
/// <see cref="AddOrderFlowTracePropagation"/> on the silo builder, <see cref="MapOrderFlowMetrics"/> on the web app.
/// All three read the <c>Telemetry</c> section (<see cref="TelemetryOptions"/>) and do nothing when it says
/// <c>Enabled=false</c>.
/// </summary>
public static class OrderFlowTelemetryExtensions
{
    /// <summary>Orleans' own meter (grain calls, activations, messaging, streams, storage).</summary>
    public const string OrleansMeter = "Microsoft.Orleans";

    /// <summary>Orleans' activity source for application grain calls (the propagation's client and server spans).</summary>
    public const string OrleansApplicationSource = "Microsoft.Orleans.Application";

    /// <summary>
    /// Registers OpenTelemetry metrics — the <c>OrderFlow</c> meter, Orleans' meter, .NET runtime and ASP.NET Core
    /// instrumentation, exported through the Prometheus scrape endpoint (<see cref="MapOrderFlowMetrics"/>) — and, when
    /// <see cref="TelemetryOptions.Tracing"/> says so, tracing of the <c>OrderFlow</c> source, Orleans' application grain
    /// calls and ASP.NET Core requests. The OTLP exporter (every signal) is added only when the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; its other <c>OTEL_*</c> variables apply as usual.
    /// </summary>
    public static TBuilder AddOrderFlowTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<TelemetryOptions>()
            .BindConfiguration(TelemetryOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var options = Read(builder.Configuration);
        if (!options.Enabled)
        {
            return builder;
        }

        var otlp = HasOtlpEndpoint(builder.Configuration);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithMetrics(metrics => metrics
                .AddOrderFlowInstrumentation()
                .AddMeter(OrleansMeter)
                .AddRuntimeInstrumentation()
                .AddAspNetCoreInstrumentation()
                .AddPrometheusExporter());
        if (RecordsSpans(builder.Configuration))
        {
            telemetry.WithTracing(tracing => tracing
                .AddOrderFlowInstrumentation()
                .AddSource(OrleansApplicationSource)
                // A scrape every few seconds is not worth a trace.
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments(options.MetricsPath)));
        }

        if (otlp)
        {
            telemetry.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>
    /// Orleans' activity propagation (the caller's trace context travels with every grain call, and each call becomes a
    /// client and a server span of <c>Microsoft.Orleans.Application</c>) when this silo records spans — the same rule as
    /// <see cref="AddOrderFlowTelemetry{TBuilder}"/>'s tracing: <c>Telemetry:Tracing</c>, or unset and
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set. Otherwise the per-call filters are not installed at all: with nothing
    /// listening they create no span, yet each wrapped every grain call in two more asynchronous steps (measured under
    /// the brokers' workload, docs/BENCHMARKS.md). Without them a request's trace ends at its first grain call: a silo
    /// whose operators want traces sets <c>Telemetry:Tracing</c> or an OTLP endpoint, and then gets the whole chain.
    /// A client of the cluster adds <c>AddActivityPropagation()</c> itself.
    /// </summary>
    public static ISiloBuilder AddOrderFlowTracePropagation(this ISiloBuilder builder) =>
        RecordsSpans(builder.Configuration) ? builder.AddActivityPropagation() : builder;

    /// <summary>Whether spans are recorded: telemetry on, and <c>Telemetry:Tracing</c> true, or unset with an OTLP endpoint.</summary>
    public static bool RecordsSpans(IConfiguration configuration)
    {
        var options = Read(configuration);
        return options.Enabled && (options.Tracing ?? HasOtlpEndpoint(configuration));
    }

    private static bool HasOtlpEndpoint(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration[TelemetryOptions.OtlpEndpointVariable]);

    /// <summary>The <c>OrderFlow</c> spans: a command in its order grain, each outbox publish, each subscriber's handler run.</summary>
    public static TracerProviderBuilder AddOrderFlowInstrumentation(this TracerProviderBuilder tracing) =>
        tracing.AddSource(OrderFlowTelemetry.Name);

    /// <summary>The <c>OrderFlow</c> meter's instruments (<c>orderflow.*</c>; see <c>SubscriberMetrics</c>).</summary>
    public static MeterProviderBuilder AddOrderFlowInstrumentation(this MeterProviderBuilder metrics) =>
        metrics.AddMeter(OrderFlowTelemetry.Name);

    /// <summary>
    /// Maps the Prometheus scrape endpoint (<see cref="TelemetryOptions.MetricsPath"/>, <c>/metrics</c> by default). With
    /// telemetry off the path answers 404 with a line saying so. Returns the endpoint's builder, so authorization or a
    /// rate limit can be chained.
    /// </summary>
    public static IEndpointConventionBuilder MapOrderFlowMetrics(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        return options.Enabled
            ? endpoints.MapPrometheusScrapingEndpoint(options.MetricsPath)
            : endpoints.MapGet(options.MetricsPath, () => Results.Text("telemetry is off (Telemetry:Enabled=false)\n", statusCode: StatusCodes.Status404NotFound));
    }

    private static TelemetryOptions Read(IConfiguration configuration) =>
        configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
}
