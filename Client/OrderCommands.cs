using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>order place|pay|ship|receive|cancel|show</c>.</summary>
public static class OrderCommands
{
    public const string Usage = """
          order place ORDER --user USER --item SKU:QTY:PRICE [--item ...] [--coupon ID] [--activity ID] [--command-id ID]
          order pay ORDER --payment ID --amount AMOUNT [--command-id ID]
          order ship|receive ORDER [--command-id ID]
          order cancel ORDER [--reason TEXT] [--command-id ID]
          order show ORDER
        """;

    public static async Task<int> RunAsync(IClusterClient client, CliArguments args, TextWriter output)
    {
        var verb = args.Positional0(1, "order verb (place, pay, ship, receive, cancel, show)");
        var orderId = args.Positional0(2, "order id");
        var order = client.GetGrain<IOrderGrain>(orderId);
        string CommandId() => args.Optional("command-id") ?? $"cli-{Guid.NewGuid():N}";

        if (verb == "show")
        {
            args.EnsureAllUsed(3);
            var report = await client.GetGrain<IOperationsGrain>(0).InspectAsync(orderId);
            Print(report, output);
            return report.Order.Status == OrderStatus.None ? 1 : 0;
        }

        // Parse everything and reject leftovers before anything is sent: a typo must never half-run a command.
        OrderCommand command = verb switch
        {
            "place" => new PlaceOrder(CommandId(), args.Required("user"), ParseItems(args.All("item")),
                args.Optional("coupon"), args.Optional("activity")),
            "pay" => new PayOrder(CommandId(), args.Required("payment"),
                CliArguments.ParseDecimal(args.Required("amount"), "--amount")),
            "ship" => new ShipOrder(CommandId()),
            "receive" => new ConfirmReceipt(CommandId()),
            "cancel" => new CancelOrder(CommandId(), args.Optional("reason")),
            _ => throw new UsageException($"unknown order verb '{verb}' (place, pay, ship, receive, cancel, show)"),
        };
        args.EnsureAllUsed(3);
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
            Console.Error.WriteLine($"error: order {orderId} refused {verb}: {result.Error!.Code}: {result.Error.Message}");
            return 1;
        }

        output.WriteLine($"order {orderId}: {verb} accepted as event {result.Sequence}, status {result.Status}{(result.Repeated ? " (repeated command: no new event)" : "")}");
        return 0;
    }

    private static IReadOnlyList<OrderLine> ParseItems(IReadOnlyList<string> items)
    {
        if (items.Count == 0)
        {
            throw new UsageException("order place needs at least one --item SKU:QTY:PRICE");
        }

        return items.Select(text =>
        {
            var parts = text.Split(':');
            if (parts.Length != 3 || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var quantity))
            {
                throw new UsageException($"--item must be SKU:QTY:PRICE (e.g. sku-1:2:19.90), was '{text}'");
            }

            return new OrderLine(parts[0], quantity, CliArguments.ParseDecimal(parts[2], "item price"));
        }).ToArray();
    }

    public static void Print(OrderReport report, TextWriter output)
    {
        var o = report.Order;
        if (o.Status == OrderStatus.None)
        {
            output.WriteLine($"order {o.OrderId}: not found");
            return;
        }

        output.WriteLine($"order {o.OrderId}: {o.Status}, user {o.UserId}, total {o.Total:0.00}, paid {o.PaidAmount:0.00}, " +
                         $"coupon {o.CouponId ?? "-"}, activity {o.ActivityId ?? "-"}");
        output.WriteLine($"  events 1..{o.LastSequence}, published up to {o.PublishedSequence}");
        foreach (var line in o.Items)
        {
            output.WriteLine($"  item {line.Sku} x{line.Quantity} @ {line.UnitPrice:0.00}");
        }

        output.WriteLine($"  {"subscriber",-14} {"applied",7} {"buffered",-10} {"attempts",8} {"next attempt",-24} {"parked",-6} {"dups",5} last error");
        foreach (var s in report.Subscribers)
        {
            var buffered = s.BufferedSequences.Count == 0 ? "-" : string.Join(",", s.BufferedSequences);
            var next = s.NextAttemptAt?.ToString("u", CultureInfo.InvariantCulture) ?? "-";
            output.WriteLine($"  {s.Subscriber,-14} {s.AppliedSequence,7} {buffered,-10} {s.Attempts,8} {next,-24} {(s.Parked ? "yes" : "no"),-6} {s.DuplicatesIgnored,5} {s.LastError ?? "-"}");
            if (s.TransientSince is { } since)
            {
                // Not counted in attempts until TransientRetry:GiveUpAfter has passed.
                output.WriteLine($"  {"",-14} transient failures since {since.ToString("u", CultureInfo.InvariantCulture)} ({s.TransientAttempts}): {s.LastTransientError}");
            }
        }
    }
}
