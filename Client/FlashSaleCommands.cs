using System.CommandLine;
using OrderFlow.Client.Bench;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// <c>flashsale create|buy|ticket|status|rate|bench</c>: a flash sale's operator and buyer commands (issue 12), and its
/// load tool. Every value is checked before the client connects (<see cref="FlashSaleLimits"/>, <see cref="Ids"/>).
/// </summary>
public static class FlashSaleCommands
{
    public static Command Create(CliContext cli)
    {
        var flash = new Command("flashsale", "Flash sales: admission answered at once, a durable backlog drained into orders at a capped rate");

        var createSale = SaleArgument(newName: true);
        var sku = CliValues.IdOption("--sku", "SKU", "The SKU sold (its stock record must hold at least --stock units)", required: true, newName: true);
        var stock = LongOption("--stock", "Units the sale sells", FlashSaleLimits.StockProblem, required: true);
        var rate = LongOption("--rate", "Most orders created per second, cluster-wide", FlashSaleLimits.RateProblem, required: true);
        var startsAt = CliValues.Single("--starts-at", "TIME", $"When buying opens, ISO 8601 with a zone, at most {FlashSaleLimits.MaxStartAhead.TotalDays:0} days ahead (default: now)",
            text => CliValues.Instant(text) is var at && at > DateTimeOffset.UtcNow + FlashSaleLimits.MaxStartAhead
                ? throw new UsageException($"--starts-at must be at most {FlashSaleLimits.MaxStartAhead.TotalDays:0} days ahead, was {at:O}")
                : at);
        var perUser = LongOption("--per-user-limit", "Most units one user may hold (default 1)", FlashSaleLimits.PerUserLimitProblem, fallback: 1);
        var buffer = LongOption("--buffer", $"Bound of the backlog: queued requests not yet answered (default {FlashSaleLimits.DefaultBuffer})",
            FlashSaleLimits.BufferProblem, fallback: FlashSaleLimits.DefaultBuffer);
        var price = CliValues.Single("--price", "PRICE", "Unit price of the winners' orders (default 1.00)", text =>
            CliValues.Amount(text, "--price") is var p && FlashSaleLimits.PriceProblem(p) is { } problem ? throw new UsageException(problem) : p);
        var create = new Command("create", "Creates a sale (the same settings again is a harmless repeat)")
        {
            createSale, sku, stock, rate, startsAt, perUser, buffer, price,
        };
        create.SetAction(parse => cli.WithClientAsync(parse, client => CreateAsync(client, parse.GetValue(createSale)!,
            new FlashSaleSpec(parse.GetValue(sku)!, parse.GetValue(stock), (int)parse.GetValue(rate),
                parse.GetValue(startsAt) is { } at && at != default ? at : FlashSaleSpec.StartsNow,
                (int)parse.GetValue(perUser), (int)parse.GetValue(buffer), parse.GetValue(price) is > 0 and var p ? p : 1.00m),
            cli.Output, cli.Error)));
        flash.Subcommands.Add(create);

        var buySale = SaleArgument();
        var user = CliValues.IdOption("--user", "user id", "The buyer", required: true, newName: true);
        var request = CliValues.IdOption("--request-id", "request id", "The request's id: the same id again is answered with the first answer", required: true);
        var buy = new Command("buy", "Asks for a unit: queued (a ticket), sold_out, not_started, duplicate, limit_reached or busy (retry after)") { buySale, user, request };
        buy.SetAction(parse => cli.WithClientAsync(parse, client =>
            BuyAsync(client, parse.GetValue(buySale)!, parse.GetValue(user)!, parse.GetValue(request)!, cli.Output, cli.Error)));
        flash.Subcommands.Add(buy);

        var ticketSale = SaleArgument();
        var ticket = new Argument<string>("TICKET")
        {
            Description = "The ticket of a queued request, as the buy answered it, e.g. 3-17-9d41c07be2a3",
            // Checked before connecting, like every other argument: a malformed ticket is bad input (exit 2), not TicketNotFound.
            CustomParser = result => CliValues.Read(result, text => FlashSaleLimits.TicketProblem(text) is { } problem ? throw new UsageException(problem) : text),
        };
        var ticketCommand = new Command("ticket", "Where a ticket stands: pending, won (the order id) or sold_out") { ticketSale, ticket };
        ticketCommand.SetAction(parse => cli.WithClientAsync(parse, client =>
            TicketAsync(client, parse.GetValue(ticketSale)!, parse.GetValue(ticket)!, cli.Output, cli.Error)));
        flash.Subcommands.Add(ticketCommand);

        var statusSale = SaleArgument();
        var status = new Command("status", "A sale's counters: accepted, refused by reason, processed, won, backlog, current rate") { statusSale };
        status.SetAction(parse => cli.WithClientAsync(parse, client => StatusAsync(client, parse.GetValue(statusSale)!, cli.Output, cli.Error)));
        flash.Subcommands.Add(status);

        var rateSale = SaleArgument();
        var newRate = new Argument<long>("RATE")
        {
            Description = $"Orders per second, cluster-wide (1-{FlashSaleLimits.MaxRate})",
            CustomParser = result => CliValues.Read(result, text => CliValues.Count(text, "RATE", FlashSaleLimits.RateProblem)),
        };
        var rateCommand = new Command("rate", "Changes a running sale's drain rate") { rateSale, newRate };
        rateCommand.SetAction(parse => cli.WithClientAsync(parse, client =>
            RateAsync(client, parse.GetValue(rateSale)!, (int)parse.GetValue(newRate), cli.Output, cli.Error)));
        flash.Subcommands.Add(rateCommand);

        flash.Subcommands.Add(FlashSaleBench.Create(cli));
        return flash;
    }

    private static Argument<string> SaleArgument(bool newName = false) => new("SALE")
    {
        Description = $"The sale's id ({Ids.Rule}, at most {FlashSaleLimits.MaxSaleIdLength})",
        CustomParser = result => CliValues.Read(result, text =>
            (FlashSaleLimits.SaleIdProblem(text) ?? (newName ? Ids.NewIdProblem(text, "sale id") : null)) is { } problem ? throw new UsageException(problem) : text),
    };

    private static Option<long> LongOption(string name, string description, Func<long, string?> problem, bool required = false, long fallback = 0)
    {
        var option = new Option<long>(name)
        {
            Description = description,
            HelpName = "N",
            Required = required,
            CustomParser = result => CliValues.Read(result, text => CliValues.Count(text, name, problem)),
        };
        if (!required)
        {
            option.DefaultValueFactory = _ => fallback;
        }

        return option;
    }

    public static async Task<int> CreateAsync(IClusterClient client, string saleId, FlashSaleSpec spec, TextWriter output, TextWriter error)
    {
        var result = await client.GetGrain<IFlashSaleGrain>(saleId).CreateAsync(spec);
        if (!result.Accepted)
        {
            var code = ErrorCodes.For(result.Error ?? FlashSaleError.InvalidInput);
            error.WriteLine($"error: flashsale {saleId} refused create: {code.Code}: {Ids.Printable(result.Message, 500)}");
            return code.ExitCode ?? Cli.Refused; // bad input (the sale's own check) exits 2 like a bad command line
        }

        output.WriteLine($"flashsale {saleId}: {Describe(result.Spec!)}");
        return Cli.Ok;
    }

    public static async Task<int> BuyAsync(IClusterClient client, string saleId, string userId, string requestId, TextWriter output, TextWriter error)
    {
        // Retried with the same request id through a failover: a request that landed is answered duplicate, with its ticket.
        var result = await new ResilientCaller().ExecuteAsync(() => client.GetGrain<IFlashSaleGrain>(saleId).BuyAsync(userId, requestId));
        if (ErrorCodes.For(result.Outcome) is not { } refusal)
        {
            output.WriteLine($"{result.Outcome.Name()} ticket={result.Ticket}");
            return Cli.Ok;
        }

        // The answer's name first (what a script matches), then the code the HTTP API gives the same answer.
        var line = result.Outcome is AdmissionOutcome.Busy ? $"busy retry_after_ms={result.RetryAfterMs}" : result.Outcome.Name();
        error.WriteLine($"{line} code={refusal.Code}{(result.Message is null ? "" : $": {Ids.Printable(result.Message, 500)}")}");
        return refusal.ExitCode ?? Cli.Refused;
    }

    public static async Task<int> TicketAsync(IClusterClient client, string saleId, string ticket, TextWriter output, TextWriter error)
    {
        var status = await client.GetGrain<IFlashSaleGrain>(saleId).GetTicketAsync(ticket);
        switch (status.State)
        {
            case TicketState.Pending:
                output.WriteLine("pending");
                return Cli.Ok;
            case TicketState.Won:
                output.WriteLine($"won order={status.OrderId}");
                return Cli.Ok;
            case TicketState.SoldOut:
                output.WriteLine("sold_out");
                return Cli.Ok;
            default:
                // Unknown: no such sale (UnknownSale, as over HTTP), or no such ticket in it.
                var exists = (await client.GetGrain<IFlashSaleGrain>(saleId).GetStatusAsync()).Exists;
                error.WriteLine(exists
                    ? $"error: {ErrorCodes.TicketNotFound.Code}: {Ids.Printable(status.Message, 500)}"
                    : $"error: {ErrorCodes.UnknownSale.Code}: no flash sale {saleId}");
                return Cli.Refused;
        }
    }

    public static async Task<int> StatusAsync(IClusterClient client, string saleId, TextWriter output, TextWriter error)
    {
        var s = await client.GetGrain<IFlashSaleGrain>(saleId).GetStatusAsync();
        if (!s.Exists)
        {
            error.WriteLine($"error: {ErrorCodes.UnknownSale.Code}: no flash sale {saleId}");
            return Cli.Refused;
        }

        output.WriteLine($"flashsale {saleId}: {Describe(s.Spec!)}");
        output.WriteLine($"  accepted {s.Accepted}, processed {s.Processed}, won {s.Won}, backlog {s.Backlog}, units left {s.UnitsLeft}{(s.SoldOut ? " (sold out)" : "")}");
        output.WriteLine($"  refused: {(s.Refused.Count == 0 ? "none" : string.Join(", ", s.Refused.OrderBy(r => r.Key).Select(r => $"{r.Key.Name()} {r.Value}")))}");
        output.WriteLine($"  processing rate {s.CurrentRate}/s (last complete second; cap {s.Spec!.Rate}/s)");
        return Cli.Ok;
    }

    public static async Task<int> RateAsync(IClusterClient client, string saleId, int rate, TextWriter output, TextWriter error)
    {
        var result = await client.GetGrain<IFlashSaleGrain>(saleId).SetRateAsync(rate);
        if (!result.Accepted)
        {
            var code = ErrorCodes.For(result.Error ?? FlashSaleError.InvalidInput);
            error.WriteLine($"error: flashsale {saleId} refused rate: {code.Code}: {Ids.Printable(result.Message, 500)}");
            return code.ExitCode ?? Cli.Refused;
        }

        output.WriteLine($"flashsale {saleId}: rate {result.Spec!.Rate}/s");
        return Cli.Ok;
    }

    public static string Describe(FlashSaleSpec s) =>
        $"sku {s.Sku}, stock {s.Stock}, rate {s.Rate}/s, starts {s.StartsAt:O}, per-user limit {s.PerUserLimit}, buffer {s.Buffer}, price {s.Price:0.00}";
}
