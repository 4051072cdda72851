using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Tests;

/// <summary>
/// The order stream's pulling agent in both profiles: a quiet stream's state (~600 B per order in the agent) is
/// dropped after 2 minutes unless <c>OrderStreams:PullingAgent</c> says otherwise, and the Azure profile polls its
/// queues at <c>AzureQueues:QueuePollPeriod</c>. Before, the Azure profile read no <c>OrderStreams</c> setting and kept
/// every order's stream state for Orleans' default 30 minutes.
/// </summary>
public sealed class OrderStreamAgentOptionsTests
{
    public static TheoryData<string> Profiles => new() { "embedded", "azure" };

    [Theory]
    [MemberData(nameof(Profiles))]
    public void A_quiet_order_stream_leaves_the_agent_after_2_minutes_without_settings(string profile)
    {
        var options = Agent(profile, []);
        Assert.Equal(TimeSpan.FromMinutes(2), options.StreamInactivityPeriod);
        Assert.NotEqual(new StreamPullingAgentOptions().StreamInactivityPeriod, options.StreamInactivityPeriod);
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public void The_order_streams_section_sets_how_long_a_quiet_stream_is_kept(string profile)
    {
        var options = Agent(profile, new() { ["OrderStreams:PullingAgent:StreamInactivityPeriod"] = "00:00:10" });
        Assert.Equal(TimeSpan.FromSeconds(10), options.StreamInactivityPeriod);
    }

    [Fact]
    public void The_azure_profile_polls_its_queues_at_its_own_period_not_the_in_memory_queues_period()
    {
        var settings = new Dictionary<string, string?> { ["OrderStreams:PullingAgent:GetQueueMsgsTimerPeriod"] = "00:00:00.020" };
        Assert.Equal(new AzureOrderStorageOptions().QueuePollPeriod, Agent("azure", settings).GetQueueMsgsTimerPeriod);
        Assert.Equal(TimeSpan.FromMilliseconds(20), Agent("embedded", settings).GetQueueMsgsTimerPeriod);
    }

    [Fact]
    public void The_in_memory_order_stream_keeps_a_minute_of_events_and_no_record_of_purged_ones_without_settings()
    {
        var options = TransientRetryOptionsTests.Resolve<StreamCacheEvictionOptions>([], silo => silo.UseEmbeddedOrderStorage(singleSilo: true), OrderStreams.ProviderName);
        Assert.Equal(TimeSpan.FromMinutes(1), options.DataMaxAgeInCache);
        Assert.Equal(TimeSpan.FromMinutes(1), options.DataMinTimeInCache);
        Assert.Null(options.MetadataMinTimeInCache);
        Assert.NotEqual(StreamCacheEvictionOptions.DefaultDataMaxAgeInCache, options.DataMaxAgeInCache);
    }

    [Fact]
    public void The_order_streams_section_sets_the_in_memory_stream_cache_window()
    {
        var options = TransientRetryOptionsTests.Resolve<StreamCacheEvictionOptions>(new()
        {
            ["OrderStreams:CacheEviction:DataMaxAgeInCache"] = "00:05:00",
            ["OrderStreams:CacheEviction:DataMinTimeInCache"] = "00:00:30",
        }, silo => silo.UseEmbeddedOrderStorage(singleSilo: true), OrderStreams.ProviderName);
        Assert.Equal(TimeSpan.FromMinutes(5), options.DataMaxAgeInCache);
        Assert.Equal(TimeSpan.FromSeconds(30), options.DataMinTimeInCache);
    }

    [Fact]
    public void The_embedded_silo_re_reads_its_reminders_every_minute_unless_the_reminders_section_says_otherwise()
    {
        var embedded = TransientRetryOptionsTests.Resolve<ReminderOptions>([], silo => silo.UseEmbeddedOrderStorage(singleSilo: true).AddOrderMessaging(), Options.DefaultName);
        Assert.Equal(TimeSpan.FromMinutes(1), embedded.RefreshReminderListPeriod);
        Assert.NotEqual(new ReminderOptions().RefreshReminderListPeriod, embedded.RefreshReminderListPeriod);

        // The section wins whichever of the two is called first.
        var settings = new Dictionary<string, string?> { ["Reminders:RefreshReminderListPeriod"] = "00:00:10" };
        Assert.Equal(TimeSpan.FromSeconds(10), TransientRetryOptionsTests.Resolve<ReminderOptions>(settings,
            silo => silo.UseEmbeddedOrderStorage(singleSilo: true).AddOrderMessaging(), Options.DefaultName).RefreshReminderListPeriod);
        Assert.Equal(TimeSpan.FromSeconds(10), TransientRetryOptionsTests.Resolve<ReminderOptions>(settings,
            silo => silo.AddOrderMessaging().UseEmbeddedOrderStorage(singleSilo: true), Options.DefaultName).RefreshReminderListPeriod);
    }

    private static StreamPullingAgentOptions Agent(string profile, Dictionary<string, string?> settings) =>
        TransientRetryOptionsTests.Resolve<StreamPullingAgentOptions>(settings, silo =>
        {
            if (profile == "azure")
            {
                // Nothing is contacted: the options are only built.
                silo.UseAzureOrderStorage(new AzureOrderStorageOptions { ConnectionString = "UseDevelopmentStorage=true" });
            }
            else
            {
                silo.UseEmbeddedOrderStorage(singleSilo: true);
            }
        }, OrderStreams.ProviderName);
}
