using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Options;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Security;
using OrderFlow.Grains.Telemetry;
using OrderFlow.Silo.Http;
using Orleans.Configuration;

namespace OrderFlow.Silo;

/// <summary>
/// The silo process: an ASP.NET Core host with the Orleans silo and the HTTP API in it. <see cref="Build"/> checks the
/// settings that shape the host first and builds nothing when one is bad; <see cref="RunAsync"/> runs it until Ctrl+C
/// or SIGTERM. Program.cs is these two calls; tests build the same app with their own settings.
/// </summary>
public static class SiloApp
{
    /// <summary>Exit code of a bad setting (one line per problem on stderr).</summary>
    public const int BadSettings = 2;

    /// <summary>
    /// The app, or the problems with its settings (then null). Settings: appsettings.json read from the folder the silo
    /// was built into (whatever the current directory), then environment variables, then <paramref name="args"/>
    /// (<c>--Silo:GatewayPort=30001</c>).
    /// </summary>
    public static (WebApplication? App, IReadOnlyList<string> Problems) Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var hostOptions = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();
        var http = builder.Configuration.GetSection(HttpApiOptions.SectionName).Get<HttpApiOptions>() ?? new HttpApiOptions();
        var messages = Problems(SiloHostOptions.SectionName, hostOptions).Concat(Problems(HttpApiOptions.SectionName, http)).ToList();

        var azure = builder.Configuration.GetSection(AzureOrderStorageOptions.SectionName).Get<AzureOrderStorageOptions>() ?? new AzureOrderStorageOptions();
        azure.ConnectionString = hostOptions.AzureStorage;
        if (hostOptions.IsAzure)
        {
            messages.AddRange(azure.Problems().Select(p => $"section '{AzureOrderStorageOptions.SectionName}' / Silo:AzureStorage: {p}"));
        }

        // Switches read while the silo is configured: a value that is not a boolean is refused here, not thrown later.
        foreach (var key in new[] { ClientCallFilter.SettingKey, $"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.Enabled)}",
                     $"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.CountGrainCalls)}" })
        {
            if (builder.Configuration[key] is { } value && !bool.TryParse(value, out _))
            {
                var split = key.IndexOf(':', StringComparison.Ordinal);
                messages.Add($"section '{key[..split]}': {key[(split + 1)..]} must be true or false, was '{value}'");
            }
        }

        if (messages.Count > 0)
        {
            return (null, messages);
        }

        builder.Services.AddOptions<SiloHostOptions>().BindConfiguration(SiloHostOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        // Orleans' own directory options (section GrainDirectory): appsettings.json bounds the address cache, which by default
        // keeps up to a million entries — one for every grain ever activated, i.e. about eight per order (docs/BENCHMARKS.md).
        builder.Services.AddOptions<GrainDirectoryOptions>().BindConfiguration("GrainDirectory");
        // Metrics and traces (section Telemetry; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set); /metrics is mapped with the API.
        builder.AddOrderFlowTelemetry();
        builder.UseOrleans(silo =>
        {
            if (hostOptions.IsAzure)
            {
                // Several silos on one machine: each binds its own ports on loopback and finds the others in the
                // membership table; clients are given the gateway ports.
                silo.ConfigureEndpoints(IPAddress.Loopback, hostOptions.SiloPort, hostOptions.GatewayPort, listenOnAnyHostAddress: false)
                    .Configure<ClusterOptions>(o =>
                    {
                        o.ClusterId = hostOptions.ClusterId;
                        o.ServiceId = hostOptions.ServiceId;
                    })
                    .UseAzureOrderStorage(azure);
            }
            else
            {
                // Bound to loopback: the embedded profile is a single local silo, so its grain state can live in this
                // process's memory without a storage grain call per read and write.
                silo.UseLocalhostClustering(hostOptions.SiloPort, hostOptions.GatewayPort)
                    .UseEmbeddedOrderStorage(singleSilo: hostOptions.EmbeddedStorageIsLocal);
            }

            silo.AddOrderMessaging().AddOrderFlowTracePropagation();
            silo.AddOrderFlowDashboard(builder.Configuration);
            if (builder.Configuration.GetSection(StorageFaultInjectionOptions.SectionName).Get<StorageFaultInjectionOptions>() is { Enabled: true })
            {
                // For drills: every grain storage can then be made to fail through the silo's StorageFaults. Last, so that the
                // profile's storage providers are registered before they are wrapped.
                silo.AddStorageFaultInjection();
            }
        });
        builder.AddOrderFlowHttp(http);

        var app = builder.Build();
        app.UseOrderFlowHttp(http);
        if (!builder.Configuration.GetValue(ClientCallFilter.SettingKey, true))
        {
            // Said at every start: the gateway has no authentication of its own, and Http:ApiKey does not cover it.
            app.Logger.LogWarning("{Setting} is false: any client that reaches the gateway (127.0.0.1:{GatewayPort}) can call every grain, " +
                "internal ones included (ledgers, reservations, inboxes, dead letters); keep the port unreachable to anything untrusted",
                ClientCallFilter.SettingKey, hostOptions.GatewayPort);
        }

        return (app, []);
    }

    /// <summary>Runs the app until it is stopped: 0, or <see cref="BadSettings"/> when a section validated at start-up is bad.</summary>
    public static async Task<int> RunAsync(WebApplication app, TextWriter error)
    {
        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (Exception ex) when (ex is OptionsValidationException || ex is AggregateException { InnerExceptions: var inner } && inner.All(e => e is OptionsValidationException))
        {
            // OrderMessaging, Drills and the other sections validated when the host starts (several at once come as an
            // AggregateException): one line per problem and exit code 2.
            var failures = ex is AggregateException all ? all.InnerExceptions.Cast<OptionsValidationException>().SelectMany(e => e.Failures) : ((OptionsValidationException)ex).Failures;
            foreach (var failure in failures)
            {
                error.WriteLine($"error: invalid setting: {failure}");
            }

            return BadSettings;
        }
    }

    private static IEnumerable<string> Problems(string section, object options)
    {
        var problems = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true);
        return problems.Select(p => $"section '{section}': {p.ErrorMessage}");
    }
}
