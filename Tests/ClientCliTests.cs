using System.Diagnostics;
using System.Text.RegularExpressions;
using OrderFlow.Client;
using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>
/// The CLI end to end but in process: <see cref="Cli.RunAsync"/> with the test cluster's client, or with a runner that
/// fails the test if a bad command line gets as far as connecting.
/// </summary>
[Collection(PipelineCollection.Name)]
public sealed class ClientCliTests(PipelineFixture fixture)
{
    private IClusterClient Client => fixture.Cluster.Client;

    private sealed record Run(int ExitCode, string Output, string Error);

    private Task<Run> RunAsync(params string[] args) => RunAsync((_, work) => work(Client), args);

    private static Task<Run> RunWithoutClusterAsync(params string[] args) => RunAsync((_, _) =>
    {
        Assert.Fail($"'{string.Join(' ', args)}' connected to the cluster; a bad command line must be refused before that");
        return Task.FromResult(-1);
    }, args);

    private static async Task<Run> RunAsync(ClusterRunner cluster, string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var exitCode = await Cli.RunAsync(args, output, error, cluster);
        return new Run(exitCode, output.ToString(), error.ToString());
    }

    /// <summary>Exit code 2 and one line on the error writer.</summary>
    private static void AssertUsageError(Run run, string? contains = null)
    {
        Assert.True(run.ExitCode == Cli.BadCommandLine, $"exit code {run.ExitCode}, error '{run.Error}', output '{run.Output}'");
        var line = Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.EndsWith(" (run with --help for usage)", line);
        Assert.DoesNotContain(line, char.IsControl);
        if (contains is not null)
        {
            Assert.Contains(contains, line);
        }
    }

    private async Task AssertNothingSentAsync(string orderId) =>
        Assert.Equal(0, (await fixture.Grains.GetGrain<IOrderGrain>(orderId).GetAsync()).LastSequence);

    [Fact]
    public async Task Order_commands_place_pay_and_show_through_the_cli()
    {
        var id = OrderDriver.NewId("cli-");
        var output = new StringWriter();
        async Task<int> Cli(params string[] args)
        {
            var run = await RunAsync(args);
            output.Write(run.Output);
            return run.ExitCode;
        }

        // A placement reserves the line's stock and the coupon: both must exist first.
        Assert.Equal(0, await Cli("stock", "set", $"sku-{id}", "2"));
        Assert.Equal(0, await Cli("coupon", "issue", $"c-{id}"));
        Assert.Equal(0, await Cli("order", "place", id, "--user", "u-cli", "--item", $"sku-{id}:2:9.90", "--coupon", $"c-{id}"));
        Assert.Equal(0, await Cli("order", "pay", id, "--payment", $"p-{id}", "--amount", "19.80", "--command-id", "pay-1"));
        Assert.Equal(0, await Cli("order", "pay", id, "--payment", $"p-{id}", "--amount", "19.80", "--command-id", "pay-1"));
        Assert.Equal(1, await Cli("order", "receive", id));
        await new OrderDriver(fixture.Grains).WaitCaughtUpAsync(id);
        Assert.Equal(0, await Cli("order", "show", id));
        Assert.Equal(0, await Cli("stock", "show", $"sku-{id}"));
        Assert.Equal(0, await Cli("coupon", "show", $"c-{id}"));

        var text = output.ToString();
        Assert.Contains($"stock sku-{id}: available 2, reserved 0, sold 0, pending 0", text);
        Assert.Contains($"coupon c-{id}: issued 1, reserved 0, redeemed 0, available 1, pending 0", text);
        Assert.Contains($"stock sku-{id}: available 0, reserved 0, sold 2, pending 0", text);
        Assert.Contains($"coupon c-{id}: issued 1, reserved 0, redeemed 1, available 0, pending 0", text);
        Assert.Contains($"order {id}: place accepted as event 1", text);
        Assert.Contains($"order {id}: pay accepted as event 2, status Paid", text);
        Assert.Contains("(repeated command: no new event)", text);
        Assert.Contains($"order {id}: Paid, user u-cli, total 19.80", text);
        foreach (var subscriber in new[] { "points", "coupon", "sms", "activity-gmv", "inventory", "order-sync" })
        {
            Assert.Matches($@"\n  {subscriber} +2 +- +0 ", text);
        }
    }

    [Fact]
    public async Task A_refused_command_is_one_line_on_the_error_writer_and_exit_code_1()
    {
        var id = OrderDriver.NewId("cli-refused-");

        var run = await RunAsync("order", "ship", id);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith($"error: order {id} refused ship: ", Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(1, (await RunAsync("order", "show", id)).ExitCode);
    }

    [Theory]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:two:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "ten")]
    [InlineData("order", "fly", "{id}")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00", "--colour", "red")]
    [InlineData("order", "ship")]
    // Thousands separators, signs, exponents and fractions of a cent are refused, not read as something else
    // (NumberStyles.Number read "19,90" as 1990.00).
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "19,90")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "1,990.00")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "-5.00")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "1e3")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "19.999")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "0")]
    [InlineData("order", "pay", "{id}", "--payment", "p", "--amount", "1.0000000000000000000000000000049")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:0.999999999999999999999999999999")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1,000.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:0:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:+1:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00:9")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sk u:1:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u/1", "--item", "sku:1:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00", "--coupon", "c#1")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00", "--activity", "")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00", "extra")]
    [InlineData("order", "place", "{id}", "--user", "u", "--user", "v", "--item", "sku:1:1.00")]
    [InlineData("order", "pay", "{id}", "--payment", "p?1", "--amount", "1.00")]
    [InlineData("order", "ship", "{id}", "--command-id", "a b")]
    [InlineData("order", "cancel", "{id}", "--reason", "line\nbreak")]
    [InlineData("order", "show", "{id}", "--payment", "p")]
    [InlineData("order")]
    // Names given anew cannot be "." or "..", which an HTTP path never carries (red-team finding: refused only after connecting, exit 1).
    [InlineData("order", "place", "..", "--user", "u", "--item", "sku:1:1.00")]
    [InlineData("order", "place", "{id}", "--user", ".", "--item", "sku:1:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "..:1:1.00")]
    [InlineData("order", "place", "{id}", "--user", "u", "--item", "sku:1:1.00", "--coupon", "..")]
    public async Task Bad_order_arguments_are_usage_errors_that_send_nothing(params string[] args)
    {
        var id = OrderDriver.NewId("cli-bad-");

        AssertUsageError(await RunWithoutClusterAsync(args.Select(a => a.Replace("{id}", id, StringComparison.Ordinal)).ToArray()));
        await AssertNothingSentAsync(id);
    }

    [Fact]
    public async Task An_order_id_outside_the_id_alphabet_is_refused_before_anything_is_sent()
    {
        AssertUsageError(await RunWithoutClusterAsync("order", "place", "x/1", "--user", "u", "--item", "sku:1:1.00"), "order id must be");
        AssertUsageError(await RunWithoutClusterAsync("order", "pay", "x_1\u0000", "--payment", "p", "--amount", "1.00"));
        // A control character is shown escaped, never written to the terminal.
        AssertUsageError(await RunWithoutClusterAsync("order", "show", $"{OrderDriver.NewId("cli-show-")}\u0007"), "\\u0007");
        AssertUsageError(await RunWithoutClusterAsync("order", "show", new string('o', Ids.MaxLength + 1)));
    }

    [Fact]
    public async Task A_cancel_reason_is_bounded()
    {
        var id = OrderDriver.NewId("cli-reason-");

        AssertUsageError(await RunWithoutClusterAsync("order", "cancel", id, "--reason", new string('r', TextLimits.MaxReasonLength + 1)), "cancel reason");
        await AssertNothingSentAsync(id);
        // '@' is an ordinary first character of a value, not a response file to read.
        Assert.Equal(1, (await RunAsync("order", "cancel", id, "--reason", "@never-a-file")).ExitCode);
    }

    [Fact]
    public async Task A_placement_without_stock_or_coupon_is_refused_with_its_reason_and_reserves_nothing()
    {
        var id = OrderDriver.NewId("cli-stock-");
        var (sku, coupon) = ($"sku-{id}", $"c-{id}");

        var unknown = await RunAsync("order", "place", id, "--user", "u", "--item", $"{sku}:1:1.00");
        Assert.Equal(1, unknown.ExitCode);
        Assert.StartsWith($"error: order {id} refused place: UnknownSku: ", Assert.Single(unknown.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        var noRecord = await RunAsync("stock", "show", sku);
        Assert.Equal(1, noRecord.ExitCode);
        Assert.Contains("no stock record", noRecord.Error);

        Assert.Equal(0, (await RunAsync("stock", "set", sku, "1")).ExitCode);
        var tooFew = await RunAsync("order", "place", id, "--user", "u", "--item", $"{sku}:2:1.00");
        Assert.Equal(1, tooFew.ExitCode);
        Assert.StartsWith($"error: order {id} refused place: OutOfStock: ", tooFew.Error);

        var neverIssued = await RunAsync("order", "place", id, "--user", "u", "--item", $"{sku}:1:1.00", "--coupon", coupon);
        Assert.Equal(1, neverIssued.ExitCode);
        Assert.StartsWith($"error: order {id} refused place: CouponUnavailable: ", neverIssued.Error);
        Assert.Equal(1, (await RunAsync("coupon", "show", coupon)).ExitCode);

        // All or nothing: the refused placements left the one unit available.
        var stock = await RunAsync("stock", "show", sku);
        Assert.Equal((0, $"stock {sku}: available 1, reserved 0, sold 0, pending 0"), (stock.ExitCode, stock.Output.Trim()));
        await AssertNothingSentAsync(id);
    }

    [Fact]
    public async Task Coupon_issue_sets_the_total_uses_and_show_reads_them()
    {
        var coupon = OrderDriver.NewId("cli-coupon-");

        var issued = await RunAsync("coupon", "issue", coupon, "--uses", "3");
        Assert.Equal((0, $"coupon {coupon}: issued 3, reserved 0, redeemed 0, available 3, pending 0"), (issued.ExitCode, issued.Output.Trim()));
        Assert.Equal(0, (await RunAsync("coupon", "issue", coupon, "--uses", "3")).ExitCode);
        var shown = await RunAsync("coupon", "show", coupon);
        Assert.Equal((0, $"coupon {coupon}: issued 3, reserved 0, redeemed 0, available 3, pending 0"), (shown.ExitCode, shown.Output.Trim()));
    }

    [Fact]
    public async Task Audit_of_orders_prints_a_result_line_and_exits_0_when_everything_adds_up()
    {
        var id = OrderDriver.NewId("cli-audit-");
        Assert.Equal(0, (await RunAsync("stock", "set", $"sku-{id}", "5")).ExitCode);
        Assert.Equal(0, (await RunAsync("order", "place", id, "--user", "u", "--item", $"sku-{id}:2:3.00")).ExitCode);
        Assert.Equal(0, (await RunAsync("order", "pay", id, "--payment", $"p-{id}", "--amount", "6.00")).ExitCode);
        await new OrderDriver(fixture.Grains).WaitCaughtUpAsync(id);

        var run = await RunAsync("audit", "--order", id, "--order", id);

        Assert.True(run.ExitCode == 0, $"exit code {run.ExitCode}: {run.Output} {run.Error}");
        Assert.DoesNotContain("DISCREPANCY", run.Output);
        Assert.EndsWith("RESULT checked=1 discrepancies=0", run.Output.Trim());
    }

    [Theory]
    [InlineData("stock", "set", "sku-1")]
    [InlineData("stock", "set", "sku-1", "-5")]
    [InlineData("stock", "set", "sku-1", "+5")]
    [InlineData("stock", "set", "sku-1", "1,000")]
    [InlineData("stock", "set", "sku-1", "1.000")]
    [InlineData("stock", "set", "sku-1", "1e3")]
    [InlineData("stock", "set", "sku-1", "five")]
    [InlineData("stock", "set", "sku-1", "1000000001")]
    [InlineData("stock", "set", "sku-1", "99999999999999999999999")]
    [InlineData("stock", "set", "sku-1", "")]
    [InlineData("stock", "set", "sk/u", "5")]
    [InlineData("stock", "set", "sk u", "5")]
    [InlineData("stock", "set", "", "5")]
    [InlineData("stock", "set", "sku-1", "5", "6")]
    [InlineData("stock", "show")]
    [InlineData("stock", "show", "sku#1")]
    [InlineData("stock", "show", "sku-1", "extra")]
    [InlineData("stock", "add", "sku-1", "5")]
    [InlineData("stock")]
    [InlineData("coupon", "issue", "c-1", "--uses", "0")]
    [InlineData("coupon", "issue", "c-1", "--uses", "-1")]
    [InlineData("coupon", "issue", "c-1", "--uses", "1,000")]
    [InlineData("coupon", "issue", "c-1", "--uses", "1000000001")]
    [InlineData("coupon", "issue", "c-1", "--uses", "two")]
    [InlineData("coupon", "issue", "c-1", "--uses")]
    [InlineData("coupon", "issue", "c-1", "--uses", "1", "--uses", "2")]
    [InlineData("coupon", "issue", "c?1")]
    [InlineData("coupon", "issue")]
    [InlineData("coupon", "issue", ".", "--uses", "1")]
    [InlineData("stock", "set", "..", "5")]
    [InlineData("coupon", "show", "c/1")]
    [InlineData("coupon", "show")]
    [InlineData("coupon")]
    [InlineData("audit")]
    [InlineData("audit", "--verbose")]
    [InlineData("audit", "--order", "o1", "--all")]
    [InlineData("audit", "--order", "o/1")]
    [InlineData("audit", "--order")]
    [InlineData("audit", "--all", "extra")]
    [InlineData("audit", "o1")]
    public async Task Bad_stock_coupon_and_audit_arguments_are_usage_errors(params string[] args) =>
        AssertUsageError(await RunWithoutClusterAsync(args));

    [Fact]
    public async Task A_flash_sale_is_created_bought_followed_and_reported_from_the_command_line()
    {
        var sale = $"cli-fs-{Guid.NewGuid():N}";
        Assert.Equal(0, (await RunAsync("stock", "set", $"{sale}-sku", "2")).ExitCode);
        var created = await RunAsync("flashsale", "create", sale, "--sku", $"{sale}-sku", "--stock", "2", "--rate", "50", "--price", "3.50");
        Assert.True(created.ExitCode == 0, created.Error);
        // The same command again (no --starts-at: the sale stamped its start) is a harmless repeat.
        var repeated = await RunAsync("flashsale", "create", sale, "--sku", $"{sale}-sku", "--stock", "2", "--rate", "50", "--price", "3.50");
        Assert.True(repeated.ExitCode == 0, repeated.Error);

        var bought = await RunAsync("flashsale", "buy", sale, "--user", "u-1", "--request-id", "r-1");
        Assert.Equal(0, bought.ExitCode);
        Assert.StartsWith("queued ticket=", bought.Output.Trim());
        var ticket = bought.Output.Trim()["queued ticket=".Length..];
        Assert.Equal($"duplicate ticket={ticket}", (await RunAsync("flashsale", "buy", sale, "--user", "u-1", "--request-id", "r-1")).Output.Trim());
        var limited = await RunAsync("flashsale", "buy", sale, "--user", "u-1", "--request-id", "r-2");
        Assert.Equal(1, limited.ExitCode);
        // The answer's name, then the code the HTTP API gives the same refusal (one vocabulary).
        Assert.StartsWith($"limit_reached code={ErrorCodes.LimitReached.Code}", limited.Error);
        Assert.Equal(0, (await RunAsync("flashsale", "rate", sale, "60")).ExitCode);

        var won = await Eventually.Until(() => RunAsync("flashsale", "ticket", sale, ticket), r => r.Output.StartsWith("won", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), r => $"ticket {ticket}: '{r.Output.Trim()}' '{r.Error.Trim()}'");
        Assert.Matches($"^won order={System.Text.RegularExpressions.Regex.Escape($"{sale}.{string.Join('.', ticket.Split('-')[..2])}.")}[0-9a-f]{{{FlashSaleLimits.OrderTagLength}}}$", won.Output.Trim());
        var status = await RunAsync("flashsale", "status", sale);
        Assert.Contains("accepted 1, processed 1, won 1, backlog 0", status.Output);
        Assert.Contains("rate 60/s", status.Output);
        var none = await RunAsync("flashsale", "status", $"{sale}-none");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains(ErrorCodes.UnknownSale.Code, none.Error);
        // A ticket of no sale is UnknownSale, as over HTTP (it was TicketNotFound); one the sale never gave, TicketNotFound.
        var noSale = await RunAsync("flashsale", "ticket", $"{sale}-none", ticket);
        Assert.Equal(1, noSale.ExitCode);
        Assert.Contains(ErrorCodes.UnknownSale.Code, noSale.Error);
        var noTicket = await RunAsync("flashsale", "ticket", sale, $"{ticket.Split('-')[0]}-999-0123456789ab");
        Assert.Equal(1, noTicket.ExitCode);
        Assert.Contains(ErrorCodes.TicketNotFound.Code, noTicket.Error);
    }

    [Theory]
    [InlineData("flashsale")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "0", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "-5", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "100001", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "0")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "1000000")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10")]
    [InlineData("flashsale", "create", "fs/1", "--sku", "sku-1", "--stock", "10", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku 1", "--stock", "10", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "10", "--per-user-limit", "0")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "10", "--buffer", "0")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "10", "--starts-at", "tomorrow")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "10", "--price", "0")]
    [InlineData("flashsale", "buy", "fs-1", "--user", "u/1", "--request-id", "r-1")]
    [InlineData("flashsale", "buy", "fs-1", "--user", "u-1")]
    [InlineData("flashsale", "rate", "fs-1", "0")]
    [InlineData("flashsale", "rate", "fs-1", "10001")]
    [InlineData("flashsale", "status")]
    [InlineData("flashsale", "ticket", "fs-1")]
    [InlineData("flashsale", "ticket", "fs-1", "0-0-abc")]
    [InlineData("flashsale", "ticket", "fs-1", "99-0-0123456789ab")]
    [InlineData("flashsale", "create", "..", "--sku", "sku-1", "--stock", "10", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "..", "--stock", "10", "--rate", "10")]
    [InlineData("flashsale", "create", "fs-1", "--sku", "sku-1", "--stock", "10", "--rate", "10", "--starts-at", "2999-01-01T00:00:00Z")]
    [InlineData("flashsale", "bench", "--requests", "0")]
    [InlineData("flashsale", "bench", "--rate", "20000")]
    public async Task Bad_flashsale_arguments_are_usage_errors_before_any_connection(params string[] args) =>
        AssertUsageError(await RunWithoutClusterAsync(args));

    [Fact]
    public async Task Stock_and_coupon_figures_are_bounded_with_the_limits_in_the_message()
    {
        AssertUsageError(await RunWithoutClusterAsync("stock", "set", "sku-1", $"{InventoryLimits.MaxStock + 1}"), $"{InventoryLimits.MaxStock}");
        AssertUsageError(await RunWithoutClusterAsync("coupon", "issue", "c-1", "--uses", "0"), $"{InventoryLimits.MaxCouponUses}");
        AssertUsageError(await RunWithoutClusterAsync("stock", "set", "sku-1", "1,000"), "thousands separator");
        // Zero units is a valid stock (sold out), and the largest allowed figures parse.
        var connected = 0;
        ClusterRunner pretend = (_, _) =>
        {
            connected++;
            return Task.FromResult(0);
        };

        Assert.Equal(0, (await RunAsync(pretend, ["stock", "set", "sku-1", "0"])).ExitCode);
        Assert.Equal(0, (await RunAsync(pretend, ["stock", "set", "sku-1", $"{InventoryLimits.MaxStock}"])).ExitCode);
        Assert.Equal(0, (await RunAsync(pretend, ["coupon", "issue", "c-1", "--uses", $"{InventoryLimits.MaxCouponUses}"])).ExitCode);
        Assert.Equal(3, connected);
    }

    [Fact]
    public async Task Audit_takes_at_most_a_thousand_orders()
    {
        var args = new List<string> { "audit" };
        foreach (var i in Enumerable.Range(0, AuditCommands.MaxOrders + 1))
        {
            args.AddRange(["--order", $"o{i}"]);
        }

        AssertUsageError(await RunWithoutClusterAsync([.. args]), "--order takes at most");
    }

    [Fact]
    public void Order_show_escapes_control_characters_that_come_from_storage()
    {
        var order = new OrderSnapshot("o\u001b[2J", OrderStatus.Paid, "u\u0007", [new OrderLine("s\r", 1, 1m)], 1m, 1m, "c\n", null, 2, 2);
        var points = new SubscriberStatus("points\u0000", "o", 1, [2], 3, null, true, "boom\u001b[31m\nsecond line", [], 0, 3, 1, null, 0);
        var output = new StringWriter();

        OrderCommands.Print(new OrderReport(order, [points]), output);

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // order, events, relay, item, the subscribers' header and points' row.
        Assert.Equal(6, lines.Length);
        Assert.All(lines, line => Assert.DoesNotContain(line, char.IsControl));
        Assert.Contains("boom\\u001b[31m\\u000asecond line", lines[^1]);
    }

    [Fact]
    public async Task Dead_letter_commands_validate_their_arguments()
    {
        AssertUsageError(await RunAsync("deadletters", "list", "--subscriber", "nope"), "no subscriber named 'nope'");
        AssertUsageError(await RunWithoutClusterAsync("deadletters", "skip", "points", "o1", "zero"));
        AssertUsageError(await RunWithoutClusterAsync("deadletters", "purge"));
        Assert.Equal(1, (await RunAsync("deadletters", "retry", "points", OrderDriver.NewId("never-parked-"))).ExitCode);

        var list = await RunAsync("deadletters", "list", "--subscriber", "points");
        Assert.Equal(0, list.ExitCode);
        Assert.StartsWith("parked orders per subscriber: activity-gmv=", list.Output);
    }

    [Theory]
    [InlineData("deadletters", "retry", "points", "o1", "extra")]
    [InlineData("deadletters", "retry", "points")]
    [InlineData("deadletters", "retry", "points", "x/1")]
    [InlineData("deadletters", "retry", "poi nts", "o1")]
    [InlineData("deadletters", "skip", "points", "o1", "zero")]
    [InlineData("deadletters", "skip", "points", "o1", "0")]
    [InlineData("deadletters", "skip", "points", "o1", "-1")]
    [InlineData("deadletters", "skip", "points", "o1", "1,000")]
    [InlineData("deadletters", "skip", "points", "o1", "3", "extra")]
    [InlineData("deadletters", "skip", "points", "o1")]
    [InlineData("deadletters", "retry", "points", "o1", "--all")]
    [InlineData("deadletters", "retry", "points", "o1", "--since", "2026-11-27T10:00:00Z")]
    [InlineData("deadletters", "retry", "points", "--all", "--since", "2026-11-27T10:00:00")]
    [InlineData("deadletters", "retry", "points", "--all", "--since", "yesterday")]
    [InlineData("deadletters", "list", "extra")]
    [InlineData("deadletters", "list", "--subscriber", "a/b")]
    [InlineData("deadletters")]
    public async Task Dead_letter_arguments_are_all_checked_before_the_cluster_is_called(params string[] args) =>
        AssertUsageError(await RunWithoutClusterAsync(args));

    [Fact]
    public async Task Bulk_retry_resumes_every_parked_order_of_a_subscriber_and_says_how_many()
    {
        var run = await RunAsync("deadletters", "retry", "points", "--all", "--since", "2999-01-01T00:00:00Z");
        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("points: resumed 0, failed 0", run.Output);
        AssertUsageError(await RunAsync("deadletters", "retry", "nope", "--all"), "no subscriber named 'nope'");
    }

    [Theory]
    [InlineData("subscribers", "backfill")]
    [InlineData("subscribers", "backfill", "a/b")]
    [InlineData("subscribers", "backfill", "poi nts")]
    [InlineData("subscribers", "backfill", "points", "extra")]
    [InlineData("subscribers", "backfill", "points", "--since", "yesterday")]
    [InlineData("subscribers", "backfill", "points", "--since", "2026-11-27T10:00:00")]
    [InlineData("subscribers", "backfill", "points", "--since", "2026-11-27T10:00:00Z", "--since", "2026-11-28T10:00:00Z")]
    [InlineData("subscribers", "backfill", "points", "--since")]
    [InlineData("subscribers", "backfill", "points", "--attach", "--since", "2026-11-27T10:00:00Z")]
    [InlineData("subscribers", "backfill", "points", "--attach", "--include-finished")]
    [InlineData("subscribers", "backfill", "points", "--attach", "--detach")]
    [InlineData("subscribers", "backfill", "points", "--all")]
    [InlineData("subscribers", "backfill", "points", "--include-finished=maybe")]
    [InlineData("subscribers", "status", "points")]
    [InlineData("subscribers")]
    public async Task Backfill_arguments_are_all_checked_before_the_cluster_is_called(params string[] args) =>
        AssertUsageError(await RunWithoutClusterAsync(args));

    [Fact]
    public async Task Backfill_starts_a_job_in_the_cluster_and_watches_it_to_its_end()
    {
        AssertUsageError(await RunAsync("subscribers", "backfill", "nope"), "no subscriber named 'nope'");
        AssertUsageError(await RunAsync("subscribers", "backfill", "nope", "--attach"), "no subscriber named 'nope'");
        var none = await RunAsync("subscribers", "backfill", "sms", "--attach");
        Assert.Equal((1, "error: NoBackfill: no backfill of sms has run"), (none.ExitCode, none.Error.Trim()));

        // Orders created from the year 2999 on: none, so the job walks the whole catalog and finds nothing to do.
        var detached = await RunAsync("subscribers", "backfill", "coupon", "--since", "2999-01-01T00:00:00Z", "--detach");
        Assert.Equal(0, detached.ExitCode);
        Assert.Contains("started backfill 1 of coupon since 2999-01-01 00:00:00Z, open orders only", detached.Output);
        Assert.Contains("watch it with: subscribers backfill coupon --attach", detached.Output);

        var watched = await RunAsync("subscribers", "backfill", "coupon", "--attach");
        Assert.True(watched.ExitCode == 0, $"exit code {watched.ExitCode}: {watched.Output} {watched.Error}");
        Assert.Contains("backfill 1 of coupon done: 0 orders, 0 needed work", watched.Output);

        var status = await RunAsync("subscribers", "status");
        Assert.Equal(0, status.ExitCode);
        var lines = status.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["subscriber", "undelivered", "parked", "oldest", "undelivered"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        // Every subscriber and the two relay rows, each with its counts.
        var rows = lines.Skip(1).Select(line => Regex.Match(line, @"^(?<name>.{16}) +(?<orders>\d+) +(?<parked>\d+) (?<oldest>.+)$")).ToArray();
        Assert.All(rows, row => Assert.True(row.Success, row.Value));
        Assert.Equal(["points", "(outbox)", "(not checked)"],
            rows.Select(row => row.Groups["name"].Value.Trim()).Where(name => name is "points" or "(outbox)" or "(not checked)"));
        var points = rows.Single(row => row.Groups["name"].Value.Trim() == "points");
        var parked = (await Client.GetGrain<IOperationsGrain>(0).CountDeadLettersAsync())["points"];
        Assert.Equal(parked.ToString(System.Globalization.CultureInfo.InvariantCulture), points.Groups["parked"].Value);
    }

    [Theory]
    [InlineData("bench", "--profile", "fast")]
    [InlineData("bench", "--profile", "azure", "--emulator-pid", "table=abc")]
    [InlineData("bench", "--profile", "azure", "--orders", "0")]
    [InlineData("bench", "--orders", "5")]
    [InlineData("bench", "--orders", "1,000")]
    [InlineData("bench", "--concurrency", "+4")]
    [InlineData("bench", "--profile", "azure", "--latency-seconds", "5")]
    [InlineData("bench", "--azure-storage", "UseDevelopmentStorage=true")]
    [InlineData("bench", "--scale-orders", "0", "extra")]
    [InlineData("bench", "--workload", "flash")]
    [InlineData("bench", "--workload", "")]
    [InlineData("bench", "--hot-orders", "20000")]
    [InlineData("bench", "--flash-orders", "500")]
    [InlineData("bench", "--workload", "consistency", "--hot-orders", "1000")]
    [InlineData("bench", "--workload", "consistency", "--hot-orders", "1000001")]
    [InlineData("bench", "--workload", "consistency", "--hot-orders", "2500")]
    [InlineData("bench", "--workload", "consistency", "--hot-orders", "20,000")]
    [InlineData("bench", "--workload", "consistency", "--flash-orders", "99")]
    [InlineData("bench", "--workload", "consistency", "--orders", "50")]
    [InlineData("bench", "--workload", "consistency", "--scale-orders", "1000")]
    [InlineData("bench", "--workload", "consistency", "--latency-seconds", "5")]
    [InlineData("bench", "--profile", "azure", "--workload", "consistency", "--hot-orders", "200000")]
    [InlineData("bench", "--profile", "azure", "--workload", "brokers")]
    [InlineData("bench", "--workload", "brokers", "--orders", "99")]
    [InlineData("bench", "--workload", "brokers", "--latency-seconds", "5")]
    [InlineData("bench", "--workload", "brokers", "--scale-orders", "0")]
    [InlineData("bench", "--profile", "azure", "--workload", "consistency", "--orders", "200")]
    [InlineData("bench", "--profile", "azure", "--workload", "consistency", "--flash-orders", "500")]
    [InlineData("bench", "--memory-orders", "2000")]
    [InlineData("bench", "--scale-lifecycle", "medium")]
    [InlineData("bench", "--profile", "azure", "--scale-lifecycle", "full")]
    [InlineData("bench", "--workload", "brokers", "--scale-lifecycle", "full")]
    [InlineData("bench", "--profile", "azure", "--memory-orders", "100001")]
    [InlineData("bench", "--profile", "azure", "--memory-orders", "-1")]
    [InlineData("demo", "--orders", "0")]
    [InlineData("demo", "--concurrency", "1,000")]
    [InlineData("demo", "--run-id", "run/1")]
    [InlineData("demo", "--catch-up-seconds", "3601")]
    public async Task Bad_bench_and_demo_arguments_are_usage_errors(params string[] args) =>
        AssertUsageError(await RunWithoutClusterAsync(args));

    [Theory]
    [InlineData("--workload", "flash", "option --workload must be pipeline, consistency or brokers, was 'flash'")]
    [InlineData("--hot-orders", "20000", "option --hot-orders does not apply to bench --profile embedded")]
    [InlineData("--workload", "consistency", "--hot-orders", "1000", "option --hot-orders must be a whole number from 2000 to 1000000, was '1000'")]
    [InlineData("--workload", "consistency", "--hot-orders", "2500", "option --hot-orders must be a multiple of 1000")]
    [InlineData("--workload", "consistency", "--scale-orders", "1000", "option --scale-orders does not apply to bench --profile embedded --workload consistency")]
    [InlineData("--profile", "azure", "--workload", "consistency", "--hot-orders", "200000",
        "option --hot-orders must be a whole number from 2000 to 100000, was '200000'")]
    [InlineData("--profile", "azure", "--workload", "consistency", "--orders", "200", "option --orders does not apply to bench --profile azure --workload consistency")]
    [InlineData("--memory-orders", "2000", "option --memory-orders does not apply to bench --profile embedded")]
    [InlineData("--profile", "azure", "--memory-orders", "100001", "option --memory-orders must be a whole number from 0 to 100000, was '100001'")]
    public async Task The_consistency_workload_names_what_is_wrong(params string[] argsAndMessage)
    {
        var args = argsAndMessage[..^1].Prepend("bench").ToArray();
        AssertUsageError(await RunWithoutClusterAsync(args), argsAndMessage[^1]);
    }

    [Fact]
    public async Task The_consistency_workload_refuses_a_silo_that_does_not_allow_benchmarks()
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, (await RunAsync("bench", "--workload", "Consistency", "--hot-orders", "2000")).ExitCode);
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.Contains("Benchmarks:Enabled=true", error.ToString());
    }

    [Fact]
    public async Task The_durable_bench_refuses_a_silo_that_does_not_allow_benchmarks()
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, (await RunAsync("bench", "--profile", "azure")).ExitCode);
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.Contains("Benchmarks:Enabled=true", error.ToString());
    }

    [Fact]
    public async Task Every_command_has_generated_help()
    {
        var place = await RunWithoutClusterAsync("order", "place", "--help");
        Assert.Equal(0, place.ExitCode);
        Assert.Contains("--item", place.Output);
        Assert.Contains("--user", place.Output);
        Assert.Contains("SKU:QTY:PRICE", place.Output);
        Assert.Equal("", place.Error);

        var pay = await RunWithoutClusterAsync("help", "order", "pay");
        Assert.Equal(0, pay.ExitCode);
        Assert.Contains("--amount", pay.Output);

        var backfill = await RunWithoutClusterAsync("subscribers", "backfill", "--help");
        Assert.Contains("--include-finished", backfill.Output);
        Assert.Contains("--attach", backfill.Output);

        var bench = await RunWithoutClusterAsync("bench", "--help");
        Assert.Contains("--emulator-pid", bench.Output);
        Assert.Contains("--workload", bench.Output);
        Assert.Contains("--hot-orders", bench.Output);

        var stock = await RunWithoutClusterAsync("help", "stock", "set");
        Assert.Equal(0, stock.ExitCode);
        Assert.Contains("QTY", stock.Output);
        Assert.Contains("--uses", (await RunWithoutClusterAsync("coupon", "issue", "--help")).Output);
        var audit = await RunWithoutClusterAsync("audit", "--help");
        Assert.Contains("--order", audit.Output);
        Assert.Contains("--all", audit.Output);

        foreach (var args in new[] { new[] { "--help" }, new[] { "help" } })
        {
            var help = await RunWithoutClusterAsync(args);
            Assert.Equal(0, help.ExitCode);
            Assert.Contains("deadletters", help.Output);
            Assert.Contains("stock", help.Output);
            Assert.Contains("audit", help.Output);
            Assert.Contains("--gateway", help.Output);
        }

        var none = await RunWithoutClusterAsync();
        Assert.Equal(Cli.BadCommandLine, none.ExitCode);
        Assert.Contains("deadletters", none.Output);
    }

    [Fact]
    public async Task Global_options_name_the_gateways_and_the_cluster_wherever_they_stand()
    {
        var targets = new List<ClusterTarget>();
        Task<int> Record(ClusterTarget target, Func<IClusterClient, Task<int>> work)
        {
            targets.Add(target);
            return work(Client);
        }

        var id = OrderDriver.NewId("cli-target-");
        await RunAsync(Record, ["--gateway", "127.0.0.1:30010,127.0.0.1:30011", "--cluster-id", "orderflow", "order", "show", id]);
        await RunAsync(Record, ["order", "show", id, "--gateway", "localhost:30012"]);
        await RunAsync(Record, ["order", "show", id]);

        Assert.Equal(["127.0.0.1:30010", "127.0.0.1:30011"], targets[0].Gateways.Select(g => g.ToString()));
        Assert.Equal("orderflow", targets[0].ClusterId);
        Assert.Equal(["127.0.0.1:30012"], targets[1].Gateways.Select(g => g.ToString()));
        Assert.Equal(ClusterConnection.DefaultClusterId, targets[1].ClusterId);
        Assert.Equal(["127.0.0.1:30000"], targets[2].Gateways.Select(g => g.ToString()));
        AssertUsageError(await RunWithoutClusterAsync("--gateway", "example.com:30000", "order", "show", id), "--gateway");
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
        var run = await RunAsync(ClusterConnection.RunAsync, ["--gateway", "127.0.0.1:1", "order", "show", "o1"]);
        // The contract is "says so within 10 seconds"; the slack covers a loaded CI machine.
        Assert.True(watch.Elapsed < ClusterConnection.ConnectTimeout + TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        Assert.Equal(Cli.GatewayUnreachable, run.ExitCode);
        Assert.StartsWith("error: GatewayUnreachable: cannot reach the silo gateway at 127.0.0.1:1", Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }
}
