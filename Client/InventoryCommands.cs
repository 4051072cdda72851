using System.CommandLine;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// <c>stock set|show</c> and <c>coupon issue|show</c>: the operators' side of the stock and coupon records that a
/// placement reserves from (a SKU without a stock record, or a coupon never issued, refuses every order that names it).
/// </summary>
public static class InventoryCommands
{
    public static Command CreateStock(CliContext cli)
    {
        var stock = new Command("stock", "Sets or shows a SKU's stock: available, reserved by placed orders, sold to paid ones");

        var setSku = SkuArgument(newName: true);
        var quantity = new Argument<long>("QTY")
        {
            Description = $"Units that can still be reserved, absolute (0-{InventoryLimits.MaxStock}); reserved and sold units are not touched",
            CustomParser = result => CliValues.Read(result, text => CliValues.Count(text, "QTY", InventoryLimits.StockProblem)),
        };
        var set = new Command("set", "Sets how many units of a SKU can still be reserved (creates its stock record; repeating it is harmless)") { setSku, quantity };
        set.SetAction(parse => cli.WithClientAsync(parse, client =>
            SetStockAsync(client, parse.GetValue(setSku)!, parse.GetValue(quantity), cli.Output, cli.Error)));
        stock.Subcommands.Add(set);

        var showSku = SkuArgument();
        var show = new Command("show", "Shows a SKU's stock: available, reserved, sold, pending (reservations not yet confirmed by their order)") { showSku };
        show.SetAction(parse => cli.WithClientAsync(parse, client => ShowStockAsync(client, parse.GetValue(showSku)!, cli.Output, cli.Error)));
        stock.Subcommands.Add(show);
        return stock;
    }

    public static Command CreateCoupon(CliContext cli)
    {
        var coupon = new Command("coupon", "Issues a coupon with a number of uses, or shows its uses: reserved by placed orders, redeemed by paid ones");

        var issueId = CouponArgument(newName: true);
        var uses = new Option<long>("--uses")
        {
            Description = $"Uses in total, absolute (1-{InventoryLimits.MaxCouponUses}); each paid order redeems one, a cancellation gives it back",
            HelpName = "N",
            DefaultValueFactory = _ => 1,
            CustomParser = result => CliValues.Read(result, text => CliValues.Count(text, "--uses", InventoryLimits.UsesProblem)),
        };
        var issue = new Command("issue", "Issues a coupon (or sets its total uses; refused below the uses already reserved or redeemed)") { issueId, uses };
        issue.SetAction(parse => cli.WithClientAsync(parse, client =>
            IssueCouponAsync(client, parse.GetValue(issueId)!, parse.GetValue(uses), cli.Output, cli.Error)));
        coupon.Subcommands.Add(issue);

        var showId = CouponArgument();
        var show = new Command("show", "Shows a coupon's uses: issued, reserved, redeemed, available, pending") { showId };
        show.SetAction(parse => cli.WithClientAsync(parse, client => ShowCouponAsync(client, parse.GetValue(showId)!, cli.Output, cli.Error)));
        coupon.Subcommands.Add(show);
        return coupon;
    }

    private static Argument<string> SkuArgument(bool newName = false) => CliValues.IdArgument("SKU", "SKU", "The SKU, e.g. sku-1", newName);

    private static Argument<string> CouponArgument(bool newName = false) => CliValues.IdArgument("COUPON", "coupon id", "The coupon's id, e.g. c-1", newName);

    public static async Task<int> SetStockAsync(IClusterClient client, string sku, long available, TextWriter output, TextWriter error)
    {
        var result = await client.GetGrain<IStockGrain>(sku).SetAvailableAsync(available);
        if (!result.Accepted)
        {
            error.WriteLine($"error: stock {Id(sku)} refused set: {result.Code}: {Ids.Printable(result.Message, 500)}");
            return Cli.Refused;
        }

        output.WriteLine(Describe(result.Level));
        return Cli.Ok;
    }

    public static async Task<int> ShowStockAsync(IClusterClient client, string sku, TextWriter output, TextWriter error)
    {
        var level = await client.GetGrain<IStockGrain>(sku).GetAsync();
        if (!level.Exists)
        {
            error.WriteLine($"error: {ErrorCodes.StockNotFound.Code}: stock {Id(sku)}: no stock record (orders naming it are refused UnknownSku); create it with: stock set {Id(sku)} QTY");
            return Cli.Refused;
        }

        output.WriteLine(Describe(level));
        return Cli.Ok;
    }

    public static async Task<int> IssueCouponAsync(IClusterClient client, string couponId, long uses, TextWriter output, TextWriter error)
    {
        var result = await client.GetGrain<ICouponGrain>(couponId).IssueAsync(uses);
        if (!result.Accepted)
        {
            error.WriteLine($"error: coupon {Id(couponId)} refused issue: {result.Code}: {Ids.Printable(result.Message, 500)}");
            return Cli.Refused;
        }

        output.WriteLine(Describe(result.Level));
        return Cli.Ok;
    }

    public static async Task<int> ShowCouponAsync(IClusterClient client, string couponId, TextWriter output, TextWriter error)
    {
        var level = await client.GetGrain<ICouponGrain>(couponId).GetAsync();
        if (!level.Exists)
        {
            error.WriteLine($"error: {ErrorCodes.CouponNotFound.Code}: coupon {Id(couponId)}: never issued (orders using it are refused CouponUnavailable); issue it with: coupon issue {Id(couponId)} --uses N");
            return Cli.Refused;
        }

        output.WriteLine(Describe(level));
        return Cli.Ok;
    }

    public static string Describe(StockLevel s) =>
        $"stock {Id(s.Sku)}: available {s.Available}, reserved {s.Reserved}, sold {s.Sold}, pending {s.Pending}";

    public static string Describe(CouponLevel c) =>
        $"coupon {Id(c.CouponId)}: issued {c.Issued}, reserved {c.Reserved}, redeemed {c.Redeemed}, available {c.Available}, pending {c.Pending}";

    private static string Id(string? id) => Ids.Printable(id, Ids.MaxLength);
}
