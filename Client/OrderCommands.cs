using System.CommandLine;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>order place|pay|ship|receive|cancel|show</c>.</summary>
public static class OrderCommands
{
    public static Command Create(CliContext cli)
    {
        var order = new Command("order", "Sends a command to one order, or shows where it stands");

        var user = CliValues.IdOption("--user", "user id", "The ordering user", required: true, newName: true);
        var items = new Option<OrderLine[]>("--item")
        {
            Description = "A line of the order: SKU, quantity, unit price in whole cents (e.g. sku-1:2:19.90); repeat it for more lines",
            HelpName = "SKU:QTY:PRICE",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = result => CliValues.ReadAll(result, texts => texts.Select(CliValues.Item).ToArray()),
        };
        var coupon = CliValues.IdOption("--coupon", "coupon id", "Coupon the order uses", newName: true);
        var activity = CliValues.IdOption("--activity", "activity id", "Sales activity the order counts towards", newName: true);
        order.Subcommands.Add(Sending(cli, "place", "Places an order", [user, items, coupon, activity],
            (parse, commandId) => new PlaceOrder(commandId, parse.GetValue(user)!, parse.GetValue(items)!, parse.GetValue(coupon), parse.GetValue(activity))));

        var payment = CliValues.IdOption("--payment", "payment id", "The payment's id", required: true);
        var amount = CliValues.Single("--amount", "AMOUNT", "The amount paid, in whole cents (e.g. 44.80); must equal the order total",
            text => CliValues.Amount(text, "--amount"), required: true);
        order.Subcommands.Add(Sending(cli, "pay", "Pays a placed order", [payment, amount],
            (parse, commandId) => new PayOrder(commandId, parse.GetValue(payment)!, parse.GetValue(amount))));

        order.Subcommands.Add(Sending(cli, "ship", "Ships a paid order", [], (_, commandId) => new ShipOrder(commandId)));
        order.Subcommands.Add(Sending(cli, "receive", "Confirms that a shipped order was received", [], (_, commandId) => new ConfirmReceipt(commandId)));

        var reason = CliValues.Single("--reason", "TEXT", $"Why the order is cancelled (at most {TextLimits.MaxReasonLength} characters)", CliValues.Reason);
        order.Subcommands.Add(Sending(cli, "cancel", "Cancels an order before it ships", [reason],
            (parse, commandId) => new CancelOrder(commandId, parse.GetValue(reason))));

        var shown = OrderIdArgument();
        var show = new Command("show", "Shows the order, then per subscriber: applied, buffered, attempts, next attempt, parked") { shown };
        show.SetAction(parse => cli.WithClientAsync(parse, client => ShowAsync(client, parse.GetValue(shown)!, cli.Output)));
        order.Subcommands.Add(show);
        return order;
    }

    /// <summary>A verb that sends one command; every value is parsed and checked before the action connects.</summary>
    private static Command Sending(CliContext cli, string verb, string description, Option[] options, Func<ParseResult, string, OrderCommand> command)
    {
        // A placement names its order anew (not "." or "..", which the HTTP API could never reach); the other verbs name an existing one.
        var orderId = OrderIdArgument(newName: verb == "place");
        var commandId = CliValues.IdOption("--command-id", "command id",
            "Idempotency key: sending the same id again returns the first result and adds no event (default: a new one)");
        var sending = new Command(verb, description) { orderId };
        foreach (var option in options)
        {
            sending.Options.Add(option);
        }

        sending.Options.Add(commandId);
        sending.SetAction(parse =>
        {
            var toSend = command(parse, parse.GetValue(commandId) ?? $"cli-{Guid.NewGuid():N}");
            return cli.WithClientAsync(parse, client => SendAsync(client, parse.GetValue(orderId)!, verb, toSend, cli.Output, cli.Error));
        });
        return sending;
    }

    private static Argument<string> OrderIdArgument(bool newName = false) => CliValues.IdArgument("ORDER", "order id", "The order's id", newName);

    public static async Task<int> SendAsync(IClusterClient client, string orderId, string verb, OrderCommand command, TextWriter output, TextWriter error)
    {
        var order = client.GetGrain<IOrderGrain>(orderId);
        var result = await (command switch
        {
            PlaceOrder place => order.PlaceAsync(place),
            PayOrder pay => order.PayAsync(pay),
            ShipOrder ship => order.ShipAsync(ship),
            ConfirmReceipt receive => order.ConfirmReceiptAsync(receive),
            CancelOrder cancel => order.CancelAsync(cancel),
            _ => throw new InvalidOperationException($"no call for {command.GetType().Name}"),
        });
        if (!result.Accepted)
        {
            error.WriteLine($"error: order {orderId} refused {verb}: {result.Error!.Code}: {Ids.Printable(result.Error.Message, 500)}");
            return ErrorCodes.For(result.Error.Code).ExitCode!.Value;
        }

        output.WriteLine($"order {orderId}: {verb} accepted as event {result.Sequence}, status {result.Status}{(result.Repeated ? " (repeated command: no new event)" : "")}");
        return 0;
    }

    public static async Task<int> ShowAsync(IClusterClient client, string orderId, TextWriter output)
    {
        var report = await client.GetGrain<IOperationsGrain>(0).InspectAsync(orderId);
        Print(report, output);
        return report.Order.Status == OrderStatus.None ? 1 : 0;
    }

    /// <summary>Prints a report; every string in it came from storage, so each goes through <see cref="Ids.Printable"/>.</summary>
    public static void Print(OrderReport report, TextWriter output)
    {
        var o = report.Order;
        if (o.Status == OrderStatus.None)
        {
            output.WriteLine($"order {Id(o.OrderId)}: not found");
            return;
        }

        output.WriteLine($"order {Id(o.OrderId)}: {o.Status}, user {Id(o.UserId)}, total {o.Total:0.00}, paid {o.PaidAmount:0.00}, " +
                         $"coupon {Id(o.CouponId ?? "-")}, activity {Id(o.ActivityId ?? "-")}");
        output.WriteLine($"  events 1..{o.LastSequence}, published up to {o.PublishedSequence}");
        if (o.PublishError is not null)
        {
            // The event waits in the order's outbox and is retried every OutboxRetryPeriod; nothing later overtakes it.
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  outbox: publishing event {o.PublishedSequence + 1} has failed since {o.PublishFailingSince:u}: {Ids.Printable(o.PublishError, 200)}"));
        }
        // Whether the outbox relay holds the order: it does from the order's first command until every event is
        // published and every subscriber reached the last one (or parked on it).
        output.WriteLine(report.Relay is { } relay
            ? string.Create(CultureInfo.InvariantCulture,
                $"  relay: holds it (undelivered work up to event {relay.Sequence}, since {relay.Since:u}, checks {relay.Checks}" +
                $"{(relay.Behind.Count > 0 ? ", behind: " + string.Join(",", relay.Behind.Select(b => Id(b))) : "")})")
            : "  relay: nothing undelivered");
        foreach (var line in o.Items)
        {
            output.WriteLine($"  item {Id(line.Sku)} x{line.Quantity} @ {line.UnitPrice:0.00}");
        }

        output.WriteLine($"  {"subscriber",-14} {"applied",7} {"buffered",-10} {"attempts",8} {"next attempt",-24} {"parked",-6} {"dups",5} last error");
        foreach (var s in report.Subscribers)
        {
            var buffered = s.BufferedSequences.Count == 0 ? "-" : string.Join(",", s.BufferedSequences);
            var next = s.NextAttemptAt?.ToString("u", CultureInfo.InvariantCulture) ?? "-";
            output.WriteLine($"  {Id(s.Subscriber),-14} {s.AppliedSequence,7} {buffered,-10} {s.Attempts,8} {next,-24} {(s.Parked ? "yes" : "no"),-6} {s.DuplicatesIgnored,5} {Ids.Printable(s.LastError ?? "-", 500)}");
            if (s.TransientSince is { } since)
            {
                // Not counted in attempts until TransientRetry:GiveUpAfter has passed.
                output.WriteLine($"  {"",-14} transient failures since {since.ToString("u", CultureInfo.InvariantCulture)} ({s.TransientAttempts}): {Ids.Printable(s.LastTransientError, 300)}");
            }
        }
    }

    private static string Id(string? id) => Ids.Printable(id, Ids.MaxLength);
}
