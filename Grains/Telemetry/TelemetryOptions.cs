using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Grains.Telemetry;

/// <summary>Metrics and traces (section <c>Telemetry</c>); the OTLP endpoint is OpenTelemetry's own <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>
    /// Master switch. Off: no OpenTelemetry provider, no Orleans activity propagation, no trace context stored with events,
    /// and <c>/metrics</c> answers 404 — only the pipeline's interlocked counters remain (the bench reads them).
    /// Default true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether spans are recorded. Unset (the default): only when an exporter can take them, i.e. when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set — spans nobody exports would cost allocations for nothing. True records
    /// them regardless (the bench uses it to measure the tracing cost without a collector); false never does. Orleans'
    /// per-call activity propagation is installed on the silo only when spans are recorded.
    /// </summary>
    public bool? Tracing { get; set; }

    /// <summary>The <c>service.name</c> resource attribute. Default <c>orderflow-silo</c>.</summary>
    [Required, MinLength(1)]
    public string ServiceName { get; set; } = "orderflow-silo";

    /// <summary>Where the Prometheus scrape endpoint is mapped. Default <c>/metrics</c>.</summary>
    [Required, RegularExpression("^/[A-Za-z0-9/_.-]*$", ErrorMessage = "Telemetry:MetricsPath must be a path starting with '/'")]
    public string MetricsPath { get; set; } = "/metrics";

    /// <summary>The OpenTelemetry environment variable that switches the OTLP exporter on (its standard name).</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";
}
