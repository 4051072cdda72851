using System.Net;
using System.Text.Json;
using OrderFlow.Contracts;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Http;

/// <summary>
/// <c>/flashsales</c> against the real co-hosted silo: a sale created, bought, followed to its order and reported; every
/// admission answer that is not a ticket as a problem with the CLI's code; bad input refused before anything is written.
/// </summary>
[Collection(HttpApiCollection.Name)]
public sealed class FlashSaleHttpTests(HttpApiFixture fixture)
{
    private HttpClient Http => fixture.Client;

    private async Task<string> StockedSkuAsync(long units)
    {
        var sku = OrderDriver.NewId("http-fs-sku-");
        await (await Http.PutAsync($"/stock/{sku}", new { available = units })).AssertOkAsync<StockLevel>();
        return sku;
    }

    private async Task<string> SaleAsync(long stock, int rate, int perUserLimit = 1, int? buffer = null, DateTimeOffset? startsAt = null)
    {
        var sale = OrderDriver.NewId("http-fs-");
        var sku = await StockedSkuAsync(stock);
        var spec = await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock, rate, perUserLimit, buffer, startsAt, price = 2.50m }))
            .AssertOkAsync<FlashSaleSpec>();
        Assert.Equal((sku, stock, rate), (spec.Sku, spec.Stock, spec.Rate));
        return sale;
    }

    private Task<HttpResponseMessage> BuyAsync(string sale, string user, string? requestId, string? idempotencyKey = null) =>
        Http.PostAsync($"/flashsales/{sale}/buy", new { userId = user, requestId }, idempotencyKey);

    [Fact]
    public async Task A_sale_is_created_bought_followed_to_its_order_and_reported_over_http()
    {
        var sale = await SaleAsync(stock: 2, rate: 50);

        var response = await BuyAsync(sale, "u-1", "r-1");
        var queued = await response.AssertOkAsync<BuyAccepted>(HttpStatusCode.Accepted);
        Assert.Equal("queued", queued.Outcome);
        Assert.Equal($"/flashsales/{sale}/tickets/{queued.Ticket}", response.Headers.Location?.OriginalString);
        // The same request id again, from the body or the Idempotency-Key header: the first ticket, nothing new queued.
        var repeated = await BuyAsync(sale, "u-1", "r-1");
        Assert.Equal(new BuyAccepted(sale, "duplicate", queued.Ticket), await repeated.AssertOkAsync<BuyAccepted>());
        Assert.Equal($"/flashsales/{sale}/tickets/{queued.Ticket}", repeated.Headers.Location?.OriginalString);
        Assert.Equal(new BuyAccepted(sale, "duplicate", queued.Ticket), await (await BuyAsync(sale, "u-1", null, "r-1")).AssertOkAsync<BuyAccepted>());
        var limited = await (await BuyAsync(sale, "u-1", "r-2")).AssertProblemAsync(HttpStatusCode.Conflict, ErrorCodes.LimitReached.Code);
        Assert.Equal("limit_reached", limited.GetProperty("outcome").GetString());
        // Refusals are counted where answered and reach the sale's status within a cache period, under the answer's name.
        await Eventually.Until(async () => await (await Http.GetAsync($"/flashsales/{sale}")).AssertOkAsync<FlashSaleStatusAnswer>(),
            st => st.Refused.GetValueOrDefault("limit_reached") == 1, TimeSpan.FromSeconds(10), st => $"refused: {string.Join(", ", st.Refused)}");

        Assert.Equal(60, (await (await Http.PutAsync($"/flashsales/{sale}/rate", new { rate = 60 })).AssertOkAsync<FlashSaleSpec>()).Rate);
        var won = await Eventually.Until(
            async () => await (await Http.GetAsync($"/flashsales/{sale}/tickets/{queued.Ticket}")).AssertOkAsync<TicketAnswer>(), t => t.State != "pending",
            TimeSpan.FromSeconds(30), t => $"ticket {queued.Ticket}: {t}");
        Assert.Equal((sale, queued.Ticket, "won"), (won.SaleId, won.Ticket, won.State));
        // {sale}.{shard}.{seq}.{tag}: the tag comes from the sale's secret key, so no caller could have placed it first.
        Assert.Matches($"^{System.Text.RegularExpressions.Regex.Escape($"{sale}.{string.Join('.', queued.Ticket.Split('-')[..2])}.")}[0-9a-f]{{{FlashSaleLimits.OrderTagLength}}}$", won.OrderId);
        var order = await (await Http.GetAsync($"/orders/{won.OrderId}")).AssertOkAsync<OrderSnapshot>();
        Assert.Equal((OrderStatus.Placed, 2.50m), (order.Status, order.Total));

        var status = await (await Http.GetAsync($"/flashsales/{sale}")).AssertOkAsync<FlashSaleStatusAnswer>();
        Assert.Equal((1L, 1L, 1L, 0L, 1L, 60), (status.Accepted, status.Processed, status.Won, status.Backlog, status.UnitsLeft, status.Spec.Rate));
    }

    [Fact]
    public async Task Orders_placed_first_under_the_ids_a_sale_once_used_do_not_take_a_winners_unit()
    {
        var sale = await SaleAsync(stock: 1, rate: 50);
        // Before order keys, a winner's order was {sale}.{shard}.{seq}: anyone could place those ids first, and the
        // winner's placement was refused, its ticket ended sold out and its unit was gone.
        var cheap = await StockedSkuAsync(100);
        for (var shard = 0; shard < FlashSaleLimits.Shards; shard++)
        {
            await (await Http.PostAsync($"/orders/{sale}.{shard}.0/place", new { userId = "squatter", items = new[] { new { sku = cheap, quantity = 1, unitPrice = 0.01m } } }))
                .AssertOkAsync<JsonElement>();
        }

        var queued = await (await BuyAsync(sale, "winner", "r-1")).AssertOkAsync<BuyAccepted>(HttpStatusCode.Accepted);
        var won = await Eventually.Until(
            async () => await (await Http.GetAsync($"/flashsales/{sale}/tickets/{queued.Ticket}")).AssertOkAsync<TicketAnswer>(), t => t.State != "pending",
            TimeSpan.FromSeconds(30), t => $"ticket {queued.Ticket}: {t}");
        Assert.Equal("won", won.State);
        var order = await (await Http.GetAsync($"/orders/{won.OrderId}")).AssertOkAsync<OrderSnapshot>();
        Assert.Equal((OrderStatus.Placed, "winner", 2.50m), (order.Status, order.UserId, order.Total));
    }

    [Fact]
    public async Task A_ticket_is_answered_only_under_the_id_its_buyer_was_given_so_winners_cannot_be_walked()
    {
        var sale = await SaleAsync(stock: 2, rate: 50);
        var queued = await (await BuyAsync(sale, "buyer", "r-1")).AssertOkAsync<BuyAccepted>(HttpStatusCode.Accepted);
        var parts = queued.Ticket.Split('-');
        Assert.Equal(3, parts.Length);
        var won = await Eventually.Until(
            async () => await (await Http.GetAsync($"/flashsales/{sale}/tickets/{queued.Ticket}")).AssertOkAsync<TicketAnswer>(), t => t.State != "pending",
            TimeSpan.FromSeconds(30), t => $"ticket {queued.Ticket}: {t}");
        Assert.Equal("won", won.State);

        // Walking the numbers, with no tag or another one, finds nothing (the first round's attack read every winner's order).
        var wrongTag = $"{parts[0]}-{parts[1]}-{(parts[2][0] == '0' ? '1' : '0')}{parts[2][1..]}";
        foreach (var guess in new[] { $"{parts[0]}-{parts[1]}", wrongTag })
        {
            await (await Http.GetAsync($"/flashsales/{sale}/tickets/{guess}")).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.TicketNotFound.Code);
        }

        await (await Http.GetAsync($"/flashsales/{sale}/tickets/{parts[0]}-{parts[1]}-XYZ")).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
    }

    [Fact]
    public async Task Creating_a_sale_again_without_a_start_is_a_repeat_and_other_settings_are_refused()
    {
        var sale = OrderDriver.NewId("http-fs-");
        var sku = await StockedSkuAsync(10);
        var first = await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 5, rate = 5 })).AssertOkAsync<FlashSaleSpec>();
        Assert.True(first.StartsAt <= DateTimeOffset.UtcNow && first.StartsAt > DateTimeOffset.UtcNow.AddMinutes(-1), $"{first.StartsAt:O}");

        // A retry after a lost answer: the start was stamped by the sale, so the same body is the same sale.
        var again = await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 5, rate = 5 })).AssertOkAsync<FlashSaleSpec>();
        Assert.Equal(first, again);
        await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 6, rate = 5 })).AssertProblemAsync(HttpStatusCode.Conflict, "SaleExists");
        await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 5, rate = 5, startsAt = DateTimeOffset.UtcNow.AddHours(1) }))
            .AssertProblemAsync(HttpStatusCode.Conflict, "SaleExists");
    }

    [Fact]
    public async Task Racing_buyers_for_one_unit_get_one_ticket_and_the_rest_sold_out()
    {
        var sale = await SaleAsync(stock: 1, rate: 10);

        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => BuyAsync(sale, $"racer-{i}", "r")));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Accepted);
        foreach (var refused in answers.Where(a => a.StatusCode != HttpStatusCode.Accepted))
        {
            Assert.Equal("sold_out", (await refused.AssertProblemAsync(HttpStatusCode.Conflict, ErrorCodes.SoldOut.Code)).GetProperty("outcome").GetString());
        }
    }

    [Fact]
    public async Task A_sale_not_started_answers_not_started_and_a_full_backlog_busy_with_retry_after()
    {
        var early = await SaleAsync(stock: 5, rate: 5, startsAt: DateTimeOffset.UtcNow.AddHours(1));
        await (await BuyAsync(early, "early-bird", "r")).AssertProblemAsync(HttpStatusCode.Conflict, ErrorCodes.NotStarted.Code);
        Assert.Equal(0, (await (await Http.GetAsync($"/flashsales/{early}")).AssertOkAsync<FlashSaleStatusAnswer>()).Accepted);

        // Buffer 8 over 8 shards: one waiting per shard; at 1 order/s the shard stays full for the test.
        var full = await SaleAsync(stock: 50, rate: 1, buffer: 8);
        var users = FlashSaleKit.UsersOfShard("http-busy-", shard: 5, count: 6);
        var answers = await Task.WhenAll(users.Select(u => BuyAsync(full, u, "r")));
        var busy = answers.Where(a => a.StatusCode == HttpStatusCode.ServiceUnavailable).ToArray();
        Assert.InRange(busy.Length, 4, 5); // one fits; a second only if the drain took the first in between
        foreach (var answer in busy)
        {
            var problem = await answer.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, ErrorCodes.Busy.Code);
            Assert.True(problem.GetProperty("retryAfterMs").GetInt32() > 0, problem.ToString());
            Assert.True(answer.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {answer.Headers.RetryAfter}");
        }
    }

    [Fact]
    public async Task Refused_sale_commands_are_problems_with_their_codes_and_write_nothing()
    {
        var sku = await StockedSkuAsync(5);
        var sale = OrderDriver.NewId("http-fs-bad-");
        object[] bad =
        [
            new { sku, stock = 0, rate = 10 }, new { sku, stock = 100_001, rate = 10 }, new { sku, stock = 5, rate = 0 },
            new { sku, stock = 5, rate = 10_001 }, new { sku = "a b", stock = 5, rate = 10 }, new { sku, stock = 5, rate = 10, perUserLimit = 0 },
            new { sku, stock = 5, rate = 10, buffer = 0 }, new { sku, stock = 5, rate = 10, price = 0.001m },
            new { sku, stock = 5, rate = 10, startsAt = DateTimeOffset.UtcNow.AddDays(400) },
        ];
        foreach (var body in bad)
        {
            await (await Http.PutAsync($"/flashsales/{sale}", body)).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        }

        await (await Http.PutAsync($"/flashsales/{new string('s', FlashSaleLimits.MaxSaleIdLength + 1)}", new { sku, stock = 5, rate = 10 }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        await (await Http.PutAsync($"/flashsales/{sale}", new { sku = $"{sku}-none", stock = 5, rate = 10 })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, ErrorCodes.UnknownSku.Code);
        await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 6, rate = 10 })).AssertProblemAsync(HttpStatusCode.Conflict, ErrorCodes.InsufficientStock.Code);
        // Nothing of the above was written: no sale, the SKU's units untouched.
        await (await Http.GetAsync($"/flashsales/{sale}")).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.UnknownSale.Code);
        Assert.Equal(5, (await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>()).Available);
        await (await Http.PutAsync($"/flashsales/{sale}/rate", new { rate = 5 })).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.UnknownSale.Code);
        await (await BuyAsync(sale, "u", "r")).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.UnknownSale.Code);
        await (await Http.GetAsync($"/flashsales/{sale}/tickets/0-0")).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.UnknownSale.Code);

        await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 3, rate = 10 })).AssertOkAsync<FlashSaleSpec>();
        await (await Http.PutAsync($"/flashsales/{sale}", new { sku, stock = 2, rate = 10 })).AssertProblemAsync(HttpStatusCode.Conflict, ErrorCodes.SaleExists.Code);
        await (await Http.PutAsync($"/flashsales/{sale}/rate", new { rate = 0 })).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        await (await Http.GetAsync($"/flashsales/{sale}/tickets/0-0")).AssertProblemAsync(HttpStatusCode.NotFound, ErrorCodes.TicketNotFound.Code);
        foreach (var ticket in new[] { "8-0", "x-1", "0", "0--1" })
        {
            await (await Http.GetAsync($"/flashsales/{sale}/tickets/{ticket}")).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        }

        await (await BuyAsync(sale, "u/1", "r")).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        // A buyer's id becomes its order's user, which is never newly named "." or "..": queued before, then sold_out (review finding).
        await (await BuyAsync(sale, "..", "r-dots")).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        await (await BuyAsync(sale, "u", null)).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        await (await BuyAsync(sale, "u", "r-1", "r-2")).AssertProblemAsync(HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest.Code);
        var status = await (await Http.GetAsync($"/flashsales/{sale}")).AssertOkAsync<FlashSaleStatusAnswer>();
        Assert.Equal((0L, 3L, 10), (status.Accepted, status.UnitsLeft, status.Spec.Rate));
    }
}
