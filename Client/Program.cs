using OrderFlow.Client;

return await Cli.RunAsync(args, Console.Out, Console.Error, ClusterConnection.RunAsync);
