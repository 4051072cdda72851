using System.CommandLine;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>subscribers status</c>: the lag an operator pages on.</summary>
public static class SubscriberCommands
{
    public static Command Create(CliContext cli)
    {
        var subscribers = new Command("subscribers", "Per-subscriber delivery status");
        var status = new Command("status", "Per subscriber: orders the relay holds with undelivered work, and the oldest one's age");
        status.SetAction(parse => cli.WithClientAsync(parse, client => StatusAsync(client, cli.Output)));
        subscribers.Subcommands.Add(status);
        return subscribers;
    }

    public static async Task<int> StatusAsync(IClusterClient client, TextWriter output)
    {
        var lag = await client.GetGrain<IOperationsGrain>(0).GetLagAsync();
        var now = DateTimeOffset.UtcNow;
        output.WriteLine($"{"subscriber",-16} {"undelivered",11} oldest");
        foreach (var row in lag)
        {
            var name = row.Subscriber switch
            {
                "*" => "(not checked)",
                "outbox" => "(outbox)",
                var other => Ids.Printable(other),
            };
            var oldest = row.OldestSince is { } since
                ? string.Create(CultureInfo.InvariantCulture, $"{(now - since).TotalSeconds:0} s ago ({since:u})")
                : "-";
            output.WriteLine($"{name,-16} {row.Orders,11} {oldest}");
        }

        return 0;
    }
}
