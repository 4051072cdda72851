using System.CommandLine;
using System.Net;
using OrderFlow.Client.Bench;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// What every command's action is given: where to write, and the way to the cluster, taken only once the whole
/// command line has parsed and every value passed its check.
/// </summary>
public sealed class CliContext(TextWriter output, TextWriter error, ClusterRunner cluster, Option<IReadOnlyList<IPEndPoint>> gateways, Option<string> clusterId)
{
    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    public Task<int> WithClientAsync(ParseResult parse, Func<IClusterClient, Task<int>> work) =>
        cluster(new ClusterTarget(parse.GetValue(gateways)!, parse.GetValue(clusterId)!), work);
}

/// <summary>
/// The command line: <c>order</c>, <c>demo</c>, <c>bench</c>, <c>deadletters</c>, <c>subscribers</c>, <c>stock</c>,
/// <c>coupon</c>, <c>audit</c>, <c>flashsale</c>, <c>help</c>, with the global <c>--gateway</c> and <c>--cluster-id</c>. Exit codes: 0 ok,
/// 1 refused / not found / nothing to retry / a failed backfill / an audit with discrepancies, 2 bad command line,
/// 3 gateway unreachable, 130 Ctrl+C while watching a backfill (the job goes on).
/// Every problem is one line on the error writer.
/// </summary>
public static class Cli
{
    // The exit codes of the one error vocabulary the CLI shares with the HTTP API (ErrorCodes).
    public const int Ok = 0;
    public const int Refused = ErrorCodes.ExitRefused;
    public const int BadCommandLine = ErrorCodes.ExitInvalidRequest;
    public const int GatewayUnreachable = ErrorCodes.ExitGatewayUnreachable;

    // No response files: "@name" is an ordinary value here (a cancel reason may start with '@'), never a file to read.
    private static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter error, ClusterRunner cluster)
    {
        var root = Build(output, error, cluster);
        var invocation = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            // Exceptions are turned into exit codes below; Ctrl+C ends the process at once, as it always did.
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        var parse = root.Parse(args, Parsing);
        if (parse.Errors.Count > 0)
        {
            WriteUsageError(error, parse.Errors[0].Message);
            return BadCommandLine;
        }

        try
        {
            return await parse.InvokeAsync(invocation);
        }
        catch (UsageException ex)
        {
            WriteUsageError(error, ex.Message);
            return BadCommandLine;
        }
        catch (GatewayUnreachableException ex)
        {
            error.WriteLine($"error: {ErrorCodes.GatewayUnreachable.Code}: {OneLine(ex.Message)}");
            return GatewayUnreachable;
        }
        catch (ArgumentException ex) when (ex.Message.StartsWith("Could not find an implementation for interface", StringComparison.Ordinal))
        {
            // The client knows a grain interface that no silo of this cluster implements: silos older than the client.
            error.WriteLine($"error: the cluster does not offer this yet: {OneLine(ex.Message)} (are its silos older than this client?)");
            return Refused;
        }
        catch (Exception ex) when (ex is TimeoutException or OrleansException)
        {
            error.WriteLine($"error: {ErrorCodes.ClusterUnavailable.Code}: the cluster did not answer: {ex.GetType().Name}: {OneLine(ex.Message.Split('\n')[0])}");
            return ErrorCodes.ClusterUnavailable.ExitCode!.Value;
        }
    }

    public static RootCommand Build(TextWriter output, TextWriter error, ClusterRunner cluster)
    {
        var gateways = new Option<IReadOnlyList<IPEndPoint>>("--gateway")
        {
            Description = "Silo gateway to connect through; repeat it or separate several with commas. The host must be an IP address or localhost",
            HelpName = "HOST:PORT",
            Recursive = true,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => ClusterConnection.ParseGateways([]),
            CustomParser = result => CliValues.ReadAll(result, ClusterConnection.ParseGateways),
        };
        var clusterId = CliValues.Single("--cluster-id", "ID",
            "The silos' Silo:ClusterId: a gateway refuses clients of another cluster (the embedded silo's is 'default')",
            text => string.IsNullOrWhiteSpace(text) || text.Any(char.IsControl)
                ? throw new UsageException($"--cluster-id must be a cluster id, was '{Ids.Printable(text)}'")
                : text);
        clusterId.Recursive = true;
        clusterId.DefaultValueFactory = _ => ClusterConnection.DefaultClusterId;

        var context = new CliContext(output, error, cluster, gateways, clusterId);
        var root = new RootCommand("OrderFlow client: sends order commands, shows an order's progress at every subscriber, runs the demo and the bench, handles dead letters, sets stock and coupons, audits.")
        {
            OrderCommands.Create(context),
            DemoCommand.Create(context),
            BenchCommand.Create(context),
            DeadLetterCommands.Create(context),
            SubscriberCommands.Create(context),
            InventoryCommands.CreateStock(context),
            InventoryCommands.CreateCoupon(context),
            AuditCommands.Create(context),
            FlashSaleCommands.Create(context),
        };
        root.Options.Add(gateways);
        root.Options.Add(clusterId);

        var words = new Argument<string[]>("COMMAND") { Description = "The command to describe, e.g. order place", Arity = ArgumentArity.ZeroOrMore };
        var help = new Command("help", "Shows this help, or a command's: help order place") { words };
        help.SetAction((parse, cancellation) => root.Parse([.. parse.GetValue(words) ?? [], "--help"], Parsing)
            .InvokeAsync(parse.InvocationConfiguration, cancellation));
        root.Subcommands.Add(help);

        // Without a command, the usage (as the CLI always printed it); a group without its verb is a one-line error. Each
        // has an action of its own so that a mistyped verb reads as "unrecognized 'x'", not as "command missing".
        root.SetAction(async (parse, cancellation) =>
        {
            await root.Parse(["--help"], Parsing).InvokeAsync(parse.InvocationConfiguration, cancellation);
            return BadCommandLine;
        });
        foreach (var group in root.Subcommands.Where(command => command.Subcommands.Count > 0))
        {
            group.SetAction(_ => MissingVerb(group));
        }

        return root;
    }

    private static int MissingVerb(Command group) =>
        throw new UsageException($"{group.Name} needs a command: {string.Join(", ", group.Subcommands.Select(verb => verb.Name))}");

    private static void WriteUsageError(TextWriter error, string message) =>
        error.WriteLine($"error: {OneLine(message).TrimEnd('.')} (run with --help for usage)");

    /// <summary>One printable line, whatever the message quotes from the command line or the cluster.</summary>
    private static string OneLine(string message) =>
        Ids.Printable(string.Join(' ', message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)), 1000);
}
