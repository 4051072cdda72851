using OrderFlow.Grains.Hosting;

namespace OrderFlow.Tests.Durable;

public sealed class ProfileOptionsTests
{
    [Fact]
    public void A_connection_string_that_does_not_parse_is_refused_before_the_silo_starts()
    {
        var problems = new AzureOrderStorageOptions { ConnectionString = "not a connection string" }.Problems();

        Assert.Contains(problems, p => p.Contains("AzureStorage is not a valid Azure Storage connection string", StringComparison.Ordinal));
    }

    [Fact]
    public void Queue_settings_out_of_range_are_refused()
    {
        var problems = new AzureOrderStorageOptions { QueueCount = 0, QueueVisibilityTimeout = TimeSpan.FromSeconds(1) }.Problems();

        Assert.Equal(2, problems.Count);
    }

    [Fact]
    public void Queue_names_are_lowercase_per_service_and_a_service_id_with_an_underscore_is_refused()
    {
        var options = new AzureOrderStorageOptions { QueueCount = 2 };

        Assert.Equal(["orderflow-shop-eu-0", "orderflow-shop-eu-1"], options.QueueNamesFor("Shop-EU"));
        Assert.True(AzureOrderStorageOptions.IsValidServiceId("Shop-EU"));
        Assert.False(AzureOrderStorageOptions.IsValidServiceId("shop_eu"));
        var error = Assert.Throws<InvalidOperationException>(() => options.QueueNamesFor("shop_eu"));
        Assert.Contains("no '_'", error.Message, StringComparison.Ordinal);
    }
}
