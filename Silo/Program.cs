using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrderFlow.Grains.Hosting;
using OrderFlow.Silo;
using Orleans.Configuration;

// Generic host: appsettings.json, then environment variables, then command-line (--Silo:GatewayPort=30001).
// Ctrl+C and SIGTERM stop the silo gracefully (the host's console lifetime).
var builder = Host.CreateApplicationBuilder(args);
var hostOptions = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();
var problems = new List<ValidationResult>();
if (!Validator.TryValidateObject(hostOptions, new ValidationContext(hostOptions), problems, validateAllProperties: true))
{
    foreach (var problem in problems)
    {
        Console.Error.WriteLine($"error: invalid setting in section '{SiloHostOptions.SectionName}': {problem.ErrorMessage}");
    }

    return 2;
}

builder.Services.AddOptions<SiloHostOptions>().BindConfiguration(SiloHostOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
// Orleans' own directory options (section GrainDirectory): appsettings.json bounds the address cache, which by default
// keeps up to a million entries — one for every grain ever activated, i.e. about eight per order (docs/BENCHMARKS.md).
builder.Services.AddOptions<GrainDirectoryOptions>().BindConfiguration("GrainDirectory");
builder.UseOrleans(silo =>
{
    // Bound to loopback: the embedded profile is a single local silo.
    silo.UseLocalhostClustering(hostOptions.SiloPort, hostOptions.GatewayPort)
        .UseEmbeddedOrderStorage()
        .AddOrderMessaging();
});

using var host = builder.Build();
await host.RunAsync();
return 0;
