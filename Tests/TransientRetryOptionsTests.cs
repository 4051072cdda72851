using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Tests;

/// <summary><c>OrderMessaging:TransientRetry</c> binds with its defaults and refuses unusable values at start-up.</summary>
public sealed class TransientRetryOptionsTests
{
    [Fact]
    public void Without_settings_transient_failures_wait_1_s_doubling_to_30_s_for_30_min()
    {
        var options = Resolve([]);
        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(30)), (options.InitialBackoff, options.MaxBackoff, options.GiveUpAfter));
    }

    [Fact]
    public void The_section_under_order_messaging_sets_them()
    {
        var options = Resolve(new()
        {
            ["OrderMessaging:TransientRetry:InitialBackoff"] = "00:00:00.100",
            ["OrderMessaging:TransientRetry:MaxBackoff"] = "00:00:05",
            ["OrderMessaging:TransientRetry:GiveUpAfter"] = "01:00:00",
        });
        Assert.Equal((TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), TimeSpan.FromHours(1)), (options.InitialBackoff, options.MaxBackoff, options.GiveUpAfter));
    }

    [Theory]
    [InlineData("MaxBackoff", "00:00:00.500", "MaxBackoff must be at least InitialBackoff")]
    [InlineData("GiveUpAfter", "00:00:00", "GiveUpAfter")]
    [InlineData("InitialBackoff", "-00:00:01", "InitialBackoff")]
    public void An_unusable_value_fails_when_the_options_are_first_read(string setting, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Resolve(new() { [$"OrderMessaging:TransientRetry:{setting}"] = value }));
        Assert.Contains(expected, error.Message);
    }

    private static TransientRetryOptions Resolve(Dictionary<string, string?> settings) => Resolve<TransientRetryOptions>(settings);

    internal static T Resolve<T>(Dictionary<string, string?> settings)
        where T : class => Resolve<T>(settings, silo => silo.AddOrderMessaging(), Options.DefaultName);

    /// <summary>The options named <paramref name="name"/> of a silo configured by <paramref name="configure"/> with these settings.</summary>
    internal static T Resolve<T>(Dictionary<string, string?> settings, Action<ISiloBuilder> configure, string name)
        where T : class
    {
        var silo = new ConfiguredSiloBuilder(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        configure(silo);
        using var services = silo.Services.BuildServiceProvider();
        return services.GetRequiredService<IOptionsMonitor<T>>().Get(name);
    }

    /// <summary>The services of a silo configured by <paramref name="configure"/> with these settings, not built.</summary>
    internal static IServiceCollection Services(Dictionary<string, string?> settings, Action<ISiloBuilder> configure)
    {
        var silo = new ConfiguredSiloBuilder(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        configure(silo);
        return silo.Services;
    }

    private sealed class ConfiguredSiloBuilder : ISiloBuilder
    {
        public ConfiguredSiloBuilder(IConfiguration configuration)
        {
            Configuration = configuration;
            Services.AddSingleton(configuration);
            Services.AddLogging();
        }

        public IServiceCollection Services { get; } = new ServiceCollection();

        public IConfiguration Configuration { get; }
    }
}

/// <summary>The <c>Reminders</c> section is Orleans' <see cref="Orleans.Hosting.ReminderOptions"/> (settable like the silo's own sections; the silo keeps Orleans' defaults).</summary>
public sealed class ReminderOptionsBindingTests
{
    [Fact]
    public void The_reminders_section_sets_how_often_a_silo_rereads_its_reminders()
    {
        var defaults = TransientRetryOptionsTests.Resolve<Orleans.Hosting.ReminderOptions>([]);
        var options = TransientRetryOptionsTests.Resolve<Orleans.Hosting.ReminderOptions>(new() { ["Reminders:RefreshReminderListPeriod"] = "00:00:07" });
        Assert.NotEqual(TimeSpan.FromSeconds(7), defaults.RefreshReminderListPeriod);
        Assert.Equal(TimeSpan.FromSeconds(7), options.RefreshReminderListPeriod);
    }
}
