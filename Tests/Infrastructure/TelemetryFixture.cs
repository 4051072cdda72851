using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry;
using OpenTelemetry.Trace;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Telemetry;
using Orleans.Streams;
using Orleans.TestingHost;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// Two embedded-profile silos with the production trace propagation (<c>AddOrderFlowTracePropagation</c>) on the silos
/// and Orleans' on the client, a tracer provider with the production sources that keeps only the tests' own traces
/// (<see cref="TestTraces"/>), fast retries, relay and outbox retry, and a transport that misbehaves by order-id
/// prefix (<see cref="TelemetryTestPublisher"/>). Drill: <c>tpoison-</c> orders fail <c>points</c> on OrderPaid.
/// </summary>
public sealed class TelemetryFixture : IAsyncLifetime
{
    public const int MaxAttempts = 3;

    public TestCluster Cluster { get; private set; } = null!;

    public TestTraces Traces { get; } = new();

    /// <summary>Grains as the first silo reaches them (internal interfaces answer).</summary>
    public IGrainFactory Grains => SiloGrains.Of(Cluster);

    /// <summary>Each silo's own grain factory (its hosted client).</summary>
    public IReadOnlyList<IGrainFactory> SiloGrainFactories =>
        Cluster.GetActiveSilos().Select(s => ((InProcessSiloHandle)s).SiloHost.Services.GetRequiredService<IGrainFactory>()).ToArray();

    public IReadOnlyList<SubscriberMetrics> SiloMetrics =>
        Cluster.GetActiveSilos().Select(s => ((InProcessSiloHandle)s).SiloHost.Services.GetRequiredService<SubscriberMetrics>()).ToArray();

    public IReadOnlyList<string> Subscribers =>
        ((InProcessSiloHandle)Cluster.Primary!).SiloHost.Services.GetRequiredService<SubscriberCatalog>().Names;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(2);
        // The silos record spans (the tests' tracer provider takes them), so the production propagation is installed.
        builder.ConfigureHostConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?> { ["Telemetry:Tracing"] = "true" }));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        Traces.Dispose();
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.AddActivityPropagation();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.UseEmbeddedOrderStorage().AddOrderMessaging().AddOrderFlowTracePropagation();
            siloBuilder.Services.Replace(ServiceDescriptor.Singleton<IOrderEventPublisher, TelemetryTestPublisher>());
            siloBuilder.Services.Configure<OrderMessagingOptions>(o =>
            {
                o.GapRepairAfter = TimeSpan.FromSeconds(1);
                o.OutboxRetryPeriod = TimeSpan.FromMilliseconds(200);
                o.Retry = new RetryPolicy { MaxAttempts = MaxAttempts, InitialBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(100) };
            });
            siloBuilder.Services.Configure<OrderRelayOptions>(o =>
            {
                o.SettleAfter = TimeSpan.FromSeconds(1);
                o.Period = TimeSpan.FromMilliseconds(200);
                o.MaxRecheck = TimeSpan.FromSeconds(1);
            });
            siloBuilder.Services.Configure<DrillOptions>(d => d["points"] = new SubscriberDrill { FailEventKind = "OrderPaid", OrderIdPrefix = "tpoison-" });
        }
    }
}

[CollectionDefinition(Name)]
public sealed class TelemetryCollection : ICollectionFixture<TelemetryFixture>
{
    public const string Name = "telemetry";
}

/// <summary>
/// A test transport: <c>refuse-</c> orders have the first publish of each event refused (it stays in the outbox and
/// the retry timer publishes it), <c>lose-</c> orders lose event 2 after the transport said yes (the relay brings it
/// from the order's log). Any other order is delivered as is.
/// </summary>
public sealed class TelemetryTestPublisher : IOrderEventPublisher
{
    private readonly ConcurrentDictionary<(string, long), bool> _refused = new();
    private readonly StreamOrderEventPublisher _transport = new();

    public Task PublishAsync(IAsyncStream<OrderEvent> stream, OrderEvent evt)
    {
        if (evt.OrderId.StartsWith("refuse-", StringComparison.Ordinal) && _refused.TryAdd((evt.OrderId, evt.Sequence), true))
        {
            throw new InvalidOperationException($"test transport refuses the first publish of {evt.OrderId} #{evt.Sequence}");
        }

        if (evt.OrderId.StartsWith("lose-", StringComparison.Ordinal) && evt.Sequence == 2)
        {
            return Task.CompletedTask;
        }

        return _transport.PublishAsync(stream, evt);
    }
}

/// <summary>
/// The production trace sources (<c>OrderFlow</c>, Orleans' application grain calls) into a list, in this process.
/// Only traces started by a test (<see cref="StartRoot"/>) are sampled: the other test collections' silos run in the
/// same process and their spans are dropped before they are built.
/// </summary>
public sealed class TestTraces : IDisposable
{
    public const string RootName = "test client";

    private static readonly ActivitySource TestSource = new("OrderFlow.Tests");
    private readonly ConcurrentQueue<Activity> _ended = new();
    private readonly TracerProvider _provider;

    /// <param name="moreSources">Sources beyond the production ones, e.g. <c>Microsoft.AspNetCore</c> for the HTTP server's spans.</param>
    public TestTraces(params string[] moreSources)
    {
        _provider = Sdk.CreateTracerProviderBuilder()
            .AddSource([TestSource.Name, .. moreSources])
            .AddOrderFlowInstrumentation()
            .AddSource(OrderFlowTelemetryExtensions.OrleansApplicationSource)
            .SetSampler(new TestRootsOnly())
            .AddProcessor(new Collector(_ended))
            .Build()!;
    }

    /// <summary>A root span, as an HTTP request or a caller's own trace would be.</summary>
    public static Activity StartRoot() => TestSource.StartActivity(RootName, ActivityKind.Client)
        ?? throw new InvalidOperationException("the test's tracer provider does not listen to its own source");

    public IReadOnlyList<Activity> InTrace(ActivityTraceId traceId) => _ended.Where(a => a.TraceId == traceId).ToArray();

    public void Dispose() => _provider.Dispose();

    private sealed class TestRootsOnly : Sampler
    {
        public override SamplingResult ShouldSample(in SamplingParameters parameters) =>
            parameters.ParentContext.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) || parameters.Name == RootName
                ? new SamplingResult(SamplingDecision.RecordAndSample)
                : new SamplingResult(SamplingDecision.Drop);
    }

    private sealed class Collector(ConcurrentQueue<Activity> ended) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => ended.Enqueue(data);
    }
}

/// <summary>
/// Reads one silo's <c>OrderFlow</c> instruments — by meter instance, as a scrape of that silo would — so two silos in
/// one process stay apart and the other collections' silos are not read at all.
/// </summary>
public static class SiloMeterReader
{
    /// <summary>Every measurement of the silo's meter now: (instrument, tags "k=v,k=v") → value.</summary>
    public static IReadOnlyDictionary<(string Instrument, string Tags), long> Read(SubscriberMetrics silo)
    {
        var values = new Dictionary<(string, string), long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, silo.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = (instrument.Name, string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}").Order(StringComparer.Ordinal)));
            values[key] = values.GetValueOrDefault(key) + value;
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    /// <summary>The sum over silos, as <c>sum by (…)</c> over each silo's scrape.</summary>
    public static IReadOnlyDictionary<(string Instrument, string Tags), long> Sum(IEnumerable<SubscriberMetrics> silos)
    {
        var sum = new Dictionary<(string, string), long>();
        foreach (var (key, value) in silos.SelectMany(Read))
        {
            sum[key] = sum.GetValueOrDefault(key) + value;
        }

        return sum;
    }
}
