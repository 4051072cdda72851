using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Security;

namespace OrderFlow.Tests;

/// <summary>
/// Which incoming call filters a silo gets, by its settings: any one puts every grain call through Orleans' filter
/// path, so each is there only where it is wanted. (That the client filter refuses what it should is
/// <see cref="ClientCallFilterTests"/>, on a running cluster.)
/// </summary>
public sealed class CallFilterSettingsTests
{
    [Theory]
    [InlineData(null, null, null, new[] { "client" })]
    [InlineData("true", null, null, new[] { "client" })]
    [InlineData(null, "true", null, new[] { "client", "bench" })]
    [InlineData(null, "true", "false", new[] { "client" })]
    [InlineData("false", null, null, new string[0])]
    [InlineData("false", "true", null, new[] { "bench" })]
    [InlineData("false", "true", "false", new string[0])]
    public void A_silo_has_the_client_filter_unless_told_otherwise_and_the_call_counter_only_when_benchmarking(
        string? refuse, string? bench, string? count, string[] expected)
    {
        var settings = new Dictionary<string, string?>
        {
            [ClientCallFilter.SettingKey] = refuse,
            [$"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.Enabled)}"] = bench,
            [$"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.CountGrainCalls)}"] = count,
        };
        var services = TransientRetryOptionsTests.Services(settings.Where(s => s.Value is not null).ToDictionary(), silo => silo.AddOrderMessaging());
        using var provider = services.BuildServiceProvider();

        var filters = provider.GetServices<IIncomingGrainCallFilter>()
            .Select(f => f switch { ClientCallFilter => "client", BenchCallCounter => "bench", _ => f.GetType().Name })
            .ToArray();
        Assert.Equal(expected, filters);
    }
}
