using OrderFlow.Client;
using OrderFlow.Client.Bench;

const string Usage = """
    usage: OrderFlow.Client [--gateway HOST:PORT ...] [--cluster-id ID] COMMAND
      commands:
    """;

var flags = new HashSet<string>(StringComparer.Ordinal) { "help" };
try
{
    var cli = new CliArguments(args, flags);
    var command = cli.Positional.Count > 0 ? cli.Positional[0] : null;
    if (command is null or "help" || cli.Flag("help"))
    {
        Console.WriteLine(string.Join('\n', Usage, OrderCommands.Usage, DemoCommand.Usage, BenchCommand.Usage, DeadLetterCommands.Usage));
        return command is null && !cli.Flag("help") ? 2 : 0;
    }

    if (command is not ("order" or "demo" or "bench" or "deadletters"))
    {
        throw new UsageException($"unknown command '{command}' (order, demo, bench, deadletters, help)");
    }

    var gateways = ClusterConnection.ParseGateways(cli.All("gateway"));
    var clusterId = cli.Optional("cluster-id") ?? ClusterConnection.DefaultClusterId;
    using var host = await ClusterConnection.ConnectAsync(gateways, clusterId);
    var client = host.Client();
    var exitCode = command switch
    {
        "order" => await OrderCommands.RunAsync(client, cli, Console.Out),
        "demo" => await DemoCommand.RunAsync(client, cli, Console.Out),
        "bench" => await BenchCommand.RunAsync(client, cli, Console.Out),
        _ => await DeadLetterCommands.RunAsync(client, cli, Console.Out),
    };
    await host.StopAsync();
    return exitCode;
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"error: {ex.Message} (run with --help for usage)");
    return 2;
}
catch (GatewayUnreachableException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 3;
}
catch (Exception ex) when (ex is TimeoutException or OrleansException)
{
    Console.Error.WriteLine($"error: the cluster did not answer: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
    return 1;
}
