using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using OrderFlow.Silo;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Http;

/// <summary>
/// The silo's own app (<see cref="SiloApp"/>, what <c>./run.sh</c> starts) in the embedded profile, in this process:
/// Kestrel on a free loopback port, the silo and gateway on free ports too, so it runs beside the TestCluster tests and
/// any <c>./run.sh</c>. Each distinct configuration is a sealed subclass with its own collection.
/// </summary>
public abstract class HttpSiloFixture : IAsyncLifetime
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private WebApplication? _app;

    /// <summary>A client with the API key (when the configuration has one).</summary>
    public HttpClient Client { get; private set; } = null!;

    /// <summary>A client with no API key.</summary>
    public HttpClient Anonymous { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public WebApplication App => _app!;

    public StorageFaults Faults => App.Services.GetRequiredService<StorageFaults>();

    /// <summary>The settings of this configuration, as <c>--Section:Key=value</c> arguments (the highest-priority source).</summary>
    protected abstract IEnumerable<string> Settings { get; }

    /// <summary>A drill that makes <c>points</c> fail every <c>OrderPaid</c> of orders whose id starts with <paramref name="prefix"/>, parking them after one attempt.</summary>
    protected static IEnumerable<string> ParkingDrill(string prefix) =>
    [
        "--Drills:points:FailEventKind=OrderPaid",
        $"--Drills:points:OrderIdPrefix={prefix}",
        "--OrderMessaging:SubscriberRetry:points:MaxAttempts=1",
    ];

    protected virtual string? ApiKey => null;

    public async Task InitializeAsync()
    {
        string[] args =
        [
            $"--Silo:SiloPort={FreePort()}", $"--Silo:GatewayPort={FreePort()}", "--Http:Urls=http://127.0.0.1:0", "--StorageFaults:Enabled=true",
            .. ApiKey is null ? [] : new[] { $"--Http:ApiKey={ApiKey}" },
            .. Settings,
        ];
        var (app, problems) = SiloApp.Build(args);
        _app = app ?? throw new InvalidOperationException($"the silo refused its test settings: {string.Join("; ", problems)}");
        await _app.StartAsync();
        BaseAddress = new Uri(_app.Urls.Single());
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        Anonymous = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (ApiKey is not null)
        {
            Client.DefaultRequestHeaders.Add(HttpApiOptions.ApiKeyHeader, ApiKey);
        }

        await Eventually.Until(() => Client.GetAsync("/health/ready"), r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30),
            r => $"GET {BaseAddress}health/ready answered {(int)r.StatusCode}, expected 200");
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        Anonymous?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static async Task<T> ReadAsync<T>(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<T>(Json))!;
}

/// <summary>
/// The API with a key, and a drill that makes <c>points</c> fail every <c>OrderPaid</c> of orders whose id starts with
/// <see cref="ParkPrefix"/>, parking them after one attempt — no other order is touched.
/// </summary>
public sealed class HttpApiFixture : HttpSiloFixture
{
    public const string Key = "test-key-0123456789abcdef";
    public const string ParkPrefix = "http-park-";

    protected override string? ApiKey => Key;

    protected override IEnumerable<string> Settings =>
    [
        .. ParkingDrill(ParkPrefix),
        // Small, so that an oversized-body test needs no megabytes.
        "--Http:MaxRequestBodyBytes=8192",
        // Spans recorded (no exporter), so Orleans' per-call propagation is installed: HttpTraceTests follows one trace
        // from the request through the grain calls; without it each grain call would start a trace of its own.
        "--Telemetry:Tracing=true",
    ];
}

[CollectionDefinition(Name)]
public sealed class HttpApiCollection : ICollectionFixture<HttpApiFixture>
{
    public const string Name = "http-api";
}

/// <summary>The API without a key, behind the rate limiter at 3 requests per second.</summary>
public sealed class RateLimitedHttpFixture : HttpSiloFixture
{
    public const int PermitsPerSecond = 3;

    protected override IEnumerable<string> Settings => [$"--Http:RateLimit:PermitsPerSecond={PermitsPerSecond}"];
}

[CollectionDefinition(Name)]
public sealed class RateLimitedHttpCollection : ICollectionFixture<RateLimitedHttpFixture>
{
    public const string Name = "http-rate-limited";
}

/// <summary>The API with a key, behind the rate limiter at 3 requests per second.</summary>
public sealed class KeyedRateLimitedHttpFixture : HttpSiloFixture
{
    public const int PermitsPerSecond = 3;

    protected override string? ApiKey => HttpApiFixture.Key;

    protected override IEnumerable<string> Settings => [$"--Http:RateLimit:PermitsPerSecond={PermitsPerSecond}"];
}

[CollectionDefinition(Name)]
public sealed class KeyedRateLimitedHttpCollection : ICollectionFixture<KeyedRateLimitedHttpFixture>
{
    public const string Name = "http-keyed-rate-limited";
}
