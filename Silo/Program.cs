using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Telemetry;
using OrderFlow.Silo;
using Orleans.Configuration;

// Generic host: appsettings.json, then environment variables, then command-line (--Silo:GatewayPort=30001).
// Ctrl+C and SIGTERM stop the silo gracefully (the host's console lifetime). Settings are read from the folder the
// silo was built into, whatever the current directory is.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
var hostOptions = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();
var problems = new List<ValidationResult>();
Validator.TryValidateObject(hostOptions, new ValidationContext(hostOptions), problems, validateAllProperties: true);
var messages = problems.Select(p => $"section '{SiloHostOptions.SectionName}': {p.ErrorMessage}").ToList();

var azure = builder.Configuration.GetSection(AzureOrderStorageOptions.SectionName).Get<AzureOrderStorageOptions>() ?? new AzureOrderStorageOptions();
azure.ConnectionString = hostOptions.AzureStorage;
if (hostOptions.IsAzure)
{
    messages.AddRange(azure.Problems().Select(p => $"section '{AzureOrderStorageOptions.SectionName}' / Silo:AzureStorage: {p}"));
}

if (messages.Count > 0)
{
    foreach (var message in messages)
    {
        Console.Error.WriteLine($"error: invalid setting in {message}");
    }

    return 2;
}

builder.Services.AddOptions<SiloHostOptions>().BindConfiguration(SiloHostOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
// Orleans' own directory options (section GrainDirectory): appsettings.json bounds the address cache, which by default
// keeps up to a million entries — one for every grain ever activated, i.e. about eight per order (docs/BENCHMARKS.md).
builder.Services.AddOptions<GrainDirectoryOptions>().BindConfiguration("GrainDirectory");
// Metrics and traces (section Telemetry; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set). A web host maps /metrics with
// app.MapOrderFlowMetrics().
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
        // Bound to loopback: the embedded profile is a single local silo.
        silo.UseLocalhostClustering(hostOptions.SiloPort, hostOptions.GatewayPort)
            .UseEmbeddedOrderStorage();
    }

    silo.AddOrderMessaging().AddOrderFlowTracePropagation();
    if (builder.Configuration.GetSection(StorageFaultInjectionOptions.SectionName).Get<StorageFaultInjectionOptions>() is { Enabled: true })
    {
        // For drills: every grain storage can then be made to fail through the silo's StorageFaults. Last, so that the
        // profile's storage providers are registered before they are wrapped.
        silo.AddStorageFaultInjection();
    }
});

using var host = builder.Build();
try
{
    await host.RunAsync();
}
catch (Exception ex) when (ex is OptionsValidationException || ex is AggregateException { InnerExceptions: var inner } && inner.All(e => e is OptionsValidationException))
{
    // OrderMessaging, Drills and the other sections validated when the host starts (several at once come as an
    // AggregateException): one line per problem and exit code 2.
    var failures = ex is AggregateException all ? all.InnerExceptions.Cast<OptionsValidationException>().SelectMany(e => e.Failures) : ((OptionsValidationException)ex).Failures;
    foreach (var failure in failures)
    {
        Console.Error.WriteLine($"error: invalid setting: {failure}");
    }

    return 2;
}

return 0;
