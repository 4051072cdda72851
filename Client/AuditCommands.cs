using System.CommandLine;
using System.Globalization;
using OrderFlow.Contracts;
using Totals = OrderFlow.Client.AuditTotals;

namespace OrderFlow.Client;

/// <summary>
/// <c>audit --order ID … | --all</c>: reconciles orders with every effect (stock and coupon reservations, points, GMV,
/// the replica row, the subscribers' progress) from stored state only (<see cref="IAuditGrain"/>); it repairs nothing.
/// Prints one <c>DISCREPANCY</c> line per finding, then <c>RESULT checked=N discrepancies=D</c>; exit 1 when D &gt; 0.
/// </summary>
public static class AuditCommands
{
    /// <summary>Most orders one <c>audit --order</c> takes (larger sets: <c>--all</c>).</summary>
    public const int MaxOrders = AuditRuns.MaxOrders;

    public static Command Create(CliContext cli)
    {
        var orders = new Option<string[]>("--order")
        {
            Description = $"An order to audit; repeat it for more (at most {MaxOrders})",
            HelpName = "ID",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = result => CliValues.ReadAll(result, texts => texts.Count > MaxOrders
                ? throw new UsageException($"--order takes at most {MaxOrders} orders, was {texts.Count} (use --all for every order)")
                : texts.Select(text => CliValues.Id(text, "order id")).Distinct(StringComparer.Ordinal).ToArray()),
        };
        var all = new Option<bool>("--all") { Description = "Audit every order ever placed, walking the order catalog shard by shard" };
        var verbose = new Option<bool>("--verbose") { Description = "Also print each note (information that is not a discrepancy); without it, only their count" };
        var audit = new Command("audit",
            "Reconciles orders with their stock and coupon reservations, points, GMV, replica row and subscribers' progress, from stored state only; " +
            "prints every discrepancy and a RESULT line; exit 1 if any")
        {
            orders, all, verbose,
        };
        audit.Validators.Add(given =>
        {
            var (some, every) = (given.GetResult(orders) is not null, given.GetValue(all));
            if (some && every)
            {
                given.AddError("give either --order or --all, not both");
            }
            else if (!some && !every)
            {
                given.AddError("missing --order ID (repeatable) or --all");
            }
        });
        audit.SetAction(parse => cli.WithClientAsync(parse, client => parse.GetValue(all)
            ? AuditAllAsync(client, parse.GetValue(verbose), cli.Output)
            : AuditOrdersAsync(client, parse.GetValue(orders)!, parse.GetValue(verbose), cli.Output)));
        return audit;
    }

    /// <summary>Audits the orders in batches of <see cref="IStoredStateGrain.MaxBatch"/>; prints the findings and the RESULT line.</summary>
    public static async Task<int> AuditOrdersAsync(IClusterClient client, IReadOnlyList<string> orderIds, bool verbose, TextWriter output)
    {
        var total = await RunOrdersAsync(client.GetGrain<IAuditGrain>(0), orderIds, report => Print(report, verbose, output));
        return Finish(total, verbose, output);
    }

    /// <summary>Audits every order of the catalog, segment by segment (each segment is one call).</summary>
    public static async Task<int> AuditAllAsync(IClusterClient client, bool verbose, TextWriter output)
    {
        var (total, segments) = await AuditRuns.RunAllAsync(client, report => Print(report, verbose, output));
        output.WriteLine($"walked {IOrderRelayGrain.Shards} catalog shards, {segments} segments");
        return Finish(total, verbose, output);
    }

    /// <summary>Audits <paramref name="orderIds"/> in batches, handing each report to <paramref name="onReport"/>; the demo uses it too.</summary>
    public static Task<Totals> RunOrdersAsync(IAuditGrain audit, IReadOnlyList<string> orderIds, Action<AuditReport> onReport) =>
        AuditRuns.RunOrdersAsync(audit, orderIds, onReport);

    /// <summary>One line per discrepancy (and per note with <paramref name="verbose"/>); every string came from storage.</summary>
    public static void Print(AuditReport report, bool verbose, TextWriter output)
    {
        foreach (var finding in report.Discrepancies)
        {
            output.WriteLine($"DISCREPANCY {Line(finding)}");
        }

        if (verbose)
        {
            foreach (var note in report.Notes)
            {
                output.WriteLine($"NOTE {Line(note)}");
            }
        }
    }

    public static string ResultLine(Totals total) =>
        string.Create(CultureInfo.InvariantCulture, $"RESULT checked={total.Checked} discrepancies={total.Discrepancies}");

    private static int Finish(Totals total, bool verbose, TextWriter output)
    {
        if (!verbose && total.Notes > 0)
        {
            output.WriteLine($"notes: {total.Notes} (information, not discrepancies; --verbose prints them)");
        }

        output.WriteLine(ResultLine(total));
        return total.Discrepancies == 0 ? Cli.Ok : Cli.Refused;
    }

    private static string Line(AuditFinding finding) =>
        $"order={Ids.Printable(finding.OrderId, Ids.MaxLength)} area={Ids.Printable(finding.Area)} {Ids.Printable(finding.Detail, 1000)}";
}
