using System.Diagnostics;
using OrderFlow.Client;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

[Collection(PipelineCollection.Name)]
public sealed class ClientCliTests(PipelineFixture fixture)
{
    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "help" };

    private IClusterClient Client => fixture.Cluster.Client;

    private static CliArguments Args(params string[] args) => new(args, Flags);

    [Fact]
    public async Task Order_commands_place_pay_and_show_through_the_cli()
    {
        var id = OrderDriver.NewId("cli-");
        var output = new StringWriter();

        Assert.Equal(0, await OrderCommands.RunAsync(Client, Args("order", "place", id, "--user", "u-cli", "--item", "sku-cli:2:9.90", "--coupon", $"c-{id}"), output));
        Assert.Equal(0, await OrderCommands.RunAsync(Client, Args("order", "pay", id, "--payment", "p-1", "--amount", "19.80", "--command-id", "pay-1"), output));
        Assert.Equal(0, await OrderCommands.RunAsync(Client, Args("order", "pay", id, "--payment", "p-1", "--amount", "19.80", "--command-id", "pay-1"), output));
        Assert.Equal(1, await OrderCommands.RunAsync(Client, Args("order", "receive", id), output));
        await new OrderDriver(fixture.Grains).WaitCaughtUpAsync(id);
        Assert.Equal(0, await OrderCommands.RunAsync(Client, Args("order", "show", id), output));

        var text = output.ToString();
        Assert.Contains($"order {id}: place accepted as event 1", text);
        Assert.Contains($"order {id}: pay accepted as event 2, status Paid", text);
        Assert.Contains("(repeated command: no new event)", text);
        Assert.Contains($"order {id}: Paid, user u-cli, total 19.80", text);
        foreach (var subscriber in new[] { "points", "coupon", "sms", "activity-gmv", "inventory", "order-sync" })
        {
            Assert.Matches($@"\n  {subscriber} +2 +- +0 ", text);
        }
    }

    [Theory]
    [InlineData("order", "place", "o1", "--user", "u", "--item", "sku:two:1.00")]
    [InlineData("order", "place", "o1", "--user", "u")]
    [InlineData("order", "pay", "o1", "--payment", "p", "--amount", "ten")]
    [InlineData("order", "fly", "o1")]
    [InlineData("order", "place", "o1", "--user", "u", "--item", "sku:1:1.00", "--colour", "red")]
    [InlineData("order", "ship")]
    public async Task Bad_order_arguments_are_usage_errors_that_send_nothing(params string[] args)
    {
        await Assert.ThrowsAsync<UsageException>(() => OrderCommands.RunAsync(Client, Args(args), TextWriter.Null));
        Assert.Equal(0, (await fixture.Grains.GetGrain<OrderFlow.Contracts.IOrderGrain>("o1").GetAsync()).LastSequence);
    }

    [Fact]
    public async Task Dead_letter_commands_validate_their_arguments()
    {
        await Assert.ThrowsAsync<UsageException>(() => DeadLetterCommands.RunAsync(Client, Args("deadletters", "list", "--subscriber", "nope"), TextWriter.Null));
        await Assert.ThrowsAsync<UsageException>(() => DeadLetterCommands.RunAsync(Client, Args("deadletters", "skip", "points", "o1", "zero"), TextWriter.Null));
        await Assert.ThrowsAsync<UsageException>(() => DeadLetterCommands.RunAsync(Client, Args("deadletters", "purge"), TextWriter.Null));
        Assert.Equal(1, await DeadLetterCommands.RunAsync(Client, Args("deadletters", "retry", "points", OrderDriver.NewId("never-parked-")), TextWriter.Null));

        var output = new StringWriter();
        Assert.Equal(0, await DeadLetterCommands.RunAsync(Client, Args("deadletters", "list", "--subscriber", "points"), output));
        Assert.StartsWith("parked orders per subscriber: activity-gmv=", output.ToString());
    }

    [Theory]
    [InlineData("bench", "--profile", "fast")]
    [InlineData("bench", "--profile", "azure", "--emulator-pid", "table=abc")]
    [InlineData("bench", "--profile", "azure", "--orders", "0")]
    [InlineData("bench", "--orders", "5")]
    public async Task Bad_bench_arguments_are_usage_errors(params string[] args) =>
        await Assert.ThrowsAsync<UsageException>(() => OrderFlow.Client.Bench.BenchCommand.RunAsync(Client, Args(args), TextWriter.Null));

    [Fact]
    public async Task The_durable_bench_refuses_a_silo_that_does_not_allow_benchmarks()
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, await OrderFlow.Client.Bench.BenchCommand.RunAsync(Client, Args("bench", "--profile", "azure"), TextWriter.Null));
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.Contains("Benchmarks:Enabled=true", error.ToString());
    }

    [Theory]
    [InlineData("not-an-endpoint")]
    [InlineData("127.0.0.1")]
    [InlineData("example.com:30000")]
    public void Gateway_must_be_an_ip_address_and_port(string gateway) =>
        Assert.Throws<UsageException>(() => ClusterConnection.ParseGateways([gateway]));

    [Fact]
    public void Several_gateways_can_be_given_repeated_or_comma_separated()
    {
        var gateways = ClusterConnection.ParseGateways(["127.0.0.1:30010,127.0.0.1:30011", "localhost:30012"]);
        Assert.Equal(["127.0.0.1:30010", "127.0.0.1:30011", "127.0.0.1:30012"], gateways.Select(g => g.ToString()));
    }

    [Fact]
    public async Task An_unreachable_silo_is_reported_within_the_connect_timeout()
    {
        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAsync<GatewayUnreachableException>(() => ClusterConnection.ConnectAsync(ClusterConnection.ParseGateways(["127.0.0.1:1"])));
        // The contract is "says so within 10 seconds"; the slack covers a loaded CI machine.
        Assert.True(watch.Elapsed < ClusterConnection.ConnectTimeout + TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }
}
