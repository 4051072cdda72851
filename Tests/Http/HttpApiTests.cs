using System.Net;
using System.Text.Json;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Http;

/// <summary>The HTTP API against the real co-hosted silo: every endpoint, every error a request can meet here, the API key, idempotency.</summary>
[Collection(HttpApiCollection.Name)]
public sealed class HttpApiTests(HttpApiFixture fixture)
{
    private static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(30);

    /// <summary>The product's subscribers (this test assembly adds one of its own, audit-trail, which the silo here also hosts).</summary>
    private static readonly string[] Subscribers = ["activity-gmv", "coupon", "inventory", "order-sync", "points", "sms"];

    private HttpClient Http => fixture.Client;

    private static object Place(string user, string sku, int quantity, decimal price, string? coupon = null) =>
        new { userId = user, items = new[] { new { sku, quantity, unitPrice = price } }, couponId = coupon };

    private async Task<string> StockedSkuAsync(long units = 10)
    {
        var sku = OrderDriver.NewId("http-sku-");
        await (await Http.PutAsync($"/stock/{sku}", new { available = units })).AssertOkAsync<StockLevel>();
        return sku;
    }

    private async Task<OrderReport> ProgressAsync(string orderId) => await (await Http.GetAsync($"/orders/{orderId}/progress")).AssertOkAsync<OrderReport>();

    [Fact]
    public async Task An_order_placed_paid_shipped_and_received_over_http_reaches_every_subscriber()
    {
        var (id, sku, coupon) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(), OrderDriver.NewId("http-c-"));
        var issued = await (await Http.PutAsync($"/coupons/{coupon}", new { uses = 2 })).AssertOkAsync<CouponLevel>();
        Assert.Equal(2, issued.Issued);

        var placed = await (await Http.PostAsync($"/orders/{id}/place", Place("u-http", sku, 2, 19.90m, coupon))).AssertOkAsync<CommandAccepted>();
        Assert.Equal((1, OrderStatus.Placed, false), (placed.Sequence, placed.Status, placed.Repeated));
        Assert.Equal(2, (await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>()).Reserved);
        Assert.Equal(1, (await (await Http.GetAsync($"/coupons/{coupon}")).AssertOkAsync<CouponLevel>()).Reserved);

        await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = $"p-{id}", amount = 39.80m })).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{id}/ship", null)).AssertOkAsync<CommandAccepted>();
        var received = await (await Http.PostAsync($"/orders/{id}/receive", null)).AssertOkAsync<CommandAccepted>();
        Assert.Equal((4, OrderStatus.Received), (received.Sequence, received.Status));

        var order = await (await Http.GetAsync($"/orders/{id}")).AssertOkAsync<OrderSnapshot>();
        Assert.Equal((OrderStatus.Received, 39.80m, 39.80m, "u-http", coupon), (order.Status, order.Total, order.PaidAmount, order.UserId, order.CouponId));
        // The sale is committed by the inventory subscriber, after the payment's answer.
        await Eventually.Until(async () => await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>(), level => level.Sold == 2, CatchUp,
            level => $"stock {sku}: sold {level.Sold}, expected 2 after order {id} was paid");

        var report = await Eventually.Until(() => ProgressAsync(id),
            r => Subscribers.All(name => r.Subscribers.Any(s => s.Subscriber == name)) && r.Subscribers.All(s => s.AppliedSequence == 4), CatchUp,
            r => $"order {id}: expected {string.Join(", ", Subscribers)} at sequence 4, saw {string.Join(", ", r.Subscribers.Select(s => $"{s.Subscriber}={s.AppliedSequence}"))}");
        Assert.All(report.Subscribers, s => Assert.False(s.Parked, $"{s.Subscriber} parked order {id}"));

        var audit = await (await Http.PostAsync("/audit", new { orderIds = new[] { id } })).AssertOkAsync<AuditResult>();
        Assert.Equal((1, 0), (audit.Checked, audit.DiscrepancyCount));
        Assert.Empty(audit.Discrepancies);
    }

    [Fact]
    public async Task A_cancel_without_a_body_cancels_the_order_and_gives_its_stock_back()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(5));
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 3, 1.00m))).AssertOkAsync<CommandAccepted>();
        Assert.Equal(2, (await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>()).Available);

        var cancelled = await (await Http.PostAsync($"/orders/{id}/cancel", null)).AssertOkAsync<CommandAccepted>();

        Assert.Equal(OrderStatus.Cancelled, cancelled.Status);
        // The reservation goes back through the inventory subscriber, after the cancel's answer.
        await Eventually.Until(() => LevelAsync(sku), level => level == (5, 0), CatchUp, level => $"stock {sku}: {level}, expected (5, 0) after cancelling order {id}");
    }

    [Fact]
    public async Task The_same_idempotency_key_and_body_returns_the_first_result_and_another_body_is_refused()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync());
        var key = OrderDriver.NewId("key-");
        var first = await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 5.00m), key)).AssertOkAsync<CommandAccepted>();
        var again = await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 5.00m), key)).AssertOkAsync<CommandAccepted>();

        Assert.Equal((key, 1, false), (first.CommandId, first.Sequence, first.Repeated));
        Assert.Equal((key, 1, true), (again.CommandId, again.Sequence, again.Repeated));

        var other = await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 2, 5.00m), key)).AssertProblemAsync(HttpStatusCode.Conflict, "CommandIdReused");
        Assert.Contains("different content", other.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = "p-x", amount = 5.00m }, key)).AssertProblemAsync(HttpStatusCode.Conflict, "CommandIdReused");

        var order = await (await Http.GetAsync($"/orders/{id}")).AssertOkAsync<OrderSnapshot>();
        Assert.Equal((1, 1), (order.LastSequence, order.Items[0].Quantity));
        Assert.Equal(1, (await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>()).Reserved);
    }

    [Fact]
    public async Task Every_refused_order_command_is_a_problem_with_its_code_and_changes_nothing()
    {
        var (id, sku, coupon) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3), OrderDriver.NewId("http-c-"));
        await (await Http.PutAsync($"/coupons/{coupon}", new { uses = 1 })).AssertOkAsync<CouponLevel>();

        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 4, 1.00m))).AssertProblemAsync(HttpStatusCode.Conflict, "OutOfStock");
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", OrderDriver.NewId("no-stock-"), 1, 1.00m))).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "UnknownSku");
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m, OrderDriver.NewId("no-coupon-")))).AssertProblemAsync(HttpStatusCode.Conflict, "CouponUnavailable");
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 0, 1.00m))).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.001m))).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");
        await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = "p", amount = 1.00m })).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
        Assert.Equal((3, 0), await LevelAsync(sku));
        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");

        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 2.50m, coupon))).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{OrderDriver.NewId("http-o-")}/place", Place("u", sku, 1, 2.50m, coupon))).AssertProblemAsync(HttpStatusCode.Conflict, "CouponUnavailable");
        await (await Http.PostAsync($"/orders/{id}/ship", null)).AssertProblemAsync(HttpStatusCode.Conflict, "IllegalTransition");
        var mismatch = await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = $"p-{id}", amount = 2.49m })).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "AmountMismatch");
        Assert.Equal("Placed", mismatch.GetProperty("orderStatus").GetString());
        await (await Http.PostAsync($"/orders/{id}/cancel", new { reason = new string('r', TextLimits.MaxReasonLength + 1) })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");
        await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = $"p-{id}", amount = 2.50m })).AssertOkAsync<CommandAccepted>();

        var (other, payment) = (OrderDriver.NewId("http-o-"), $"p-{id}");
        await (await Http.PostAsync($"/orders/{other}/place", Place("u", sku, 1, 2.50m))).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{other}/pay", new { paymentId = payment, amount = 2.50m })).AssertProblemAsync(HttpStatusCode.Conflict, "PaymentIdReused");

        var order = await (await Http.GetAsync($"/orders/{id}")).AssertOkAsync<OrderSnapshot>();
        Assert.Equal((OrderStatus.Paid, 2), (order.Status, order.LastSequence));
        Assert.Equal(OrderStatus.Placed, (await (await Http.GetAsync($"/orders/{other}")).AssertOkAsync<OrderSnapshot>()).Status);
    }

    private async Task<(long Available, long Reserved)> LevelAsync(string sku)
    {
        var level = await (await Http.GetAsync($"/stock/{sku}")).AssertOkAsync<StockLevel>();
        return (level.Available, level.Reserved);
    }

    [Fact]
    public async Task Bad_json_an_unknown_field_a_missing_body_and_a_wrong_content_type_are_refused_before_any_grain_is_called()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3));
        var valid = $$"""{"userId":"u","items":[{"sku":"{{sku}}","quantity":1,"unitPrice":1.00}]}""";

        var bad = await (await Http.PostRawAsync($"/orders/{id}/place", valid[..^2])).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        Assert.Contains("JSON", bad.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await (await Http.PostRawAsync($"/orders/{id}/place", valid.Replace("\"userId\"", "\"user\"", StringComparison.Ordinal)))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostRawAsync($"/orders/{id}/place", valid.Replace("1.00", "\"a lot\"", StringComparison.Ordinal)))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostAsync($"/orders/{id}/place", null)).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostRawAsync($"/orders/{id}/place", valid, "text/plain")).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType");

        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
        Assert.Equal((3, 0), await LevelAsync(sku));
    }

    [Fact]
    public async Task A_missing_field_a_number_as_a_string_a_null_and_a_field_given_twice_are_refused_and_change_nothing()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3));

        // PUT /stock/{sku} {} used to set the stock to 0.
        await (await Http.PutAsync($"/stock/{sku}", new { })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PutRawAsync($"/stock/{sku}", """{"available":"5"}""")).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PutRawAsync($"/stock/{sku}", """{"available":5,"available":6}""")).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        Assert.Equal((3, 0), await LevelAsync(sku));

        var line = $$"""{"sku":"{{sku}}","quantity":1,"unitPrice":1.00}""";
        string[] bodies =
        [
            $$"""{"items":[{{line}}]}""",
            $$"""{"userId":null,"items":[{{line}}]}""",
            $$"""{"userId":"u","items":[{"sku":"{{sku}}","unitPrice":1.00}]}""",
            $$"""{"userId":"u","items":[{"sku":"{{sku}}","quantity":"1","unitPrice":1.00}]}""",
            $$"""{"userId":"u","userId":"v","items":[{{line}}]}""",
            // More digits than a decimal keeps: read as 1.00 (rounded) and accepted before (red-team finding).
            $$"""{"userId":"u","items":[{"sku":"{{sku}}","quantity":1,"unitPrice":0.999999999999999999999999999999}]}""",
            $$"""{"userId":"u","items":[{"sku":"{{sku}}","quantity":1,"unitPrice":1.0000000000000000000000000000049}]}""",
        ];
        foreach (var body in bodies)
        {
            await (await Http.PostRawAsync($"/orders/{id}/place", body)).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        }

        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
        Assert.Equal((3, 0), await LevelAsync(sku));
        // Optional fields stay optional; a price with trailing zeros or an exponent is exactly what it says.
        await (await Http.PostRawAsync($"/orders/{id}/place", $$"""{"userId":"u","items":[{{line}}]}""")).AssertOkAsync<JsonElement>();
        await (await Http.PostRawAsync($"/orders/{id}/pay", """{"paymentId":"p-exact-1","amount":1.000000000000000000000000000001}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostRawAsync($"/orders/{id}/pay", $$"""{"paymentId":"{{id}}-pay","amount":0.100e1}""")).AssertOkAsync<JsonElement>();
    }

    [Fact]
    public async Task A_body_over_the_limit_is_refused_413_and_places_nothing()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3));
        var lines = Enumerable.Range(0, 100).Select(_ => new { sku, quantity = 1, unitPrice = 1.00m }).ToArray();
        Assert.True(JsonSerializer.Serialize(new { userId = "u", items = lines }).Length > 8192);

        await (await Http.PostAsync($"/orders/{id}/place", new { userId = "u", items = lines })).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "PayloadTooLarge");

        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
        Assert.Equal((3, 0), await LevelAsync(sku));
    }

    [Theory]
    [InlineData("GET", "/orders/bad%20id", HttpStatusCode.BadRequest, "InvalidRequest")]
    [InlineData("GET", "/orders/bad%20id/progress", HttpStatusCode.BadRequest, "InvalidRequest")]
    [InlineData("POST", "/orders/bad%23id/ship", HttpStatusCode.BadRequest, "InvalidRequest")]
    [InlineData("GET", "/stock/sku%3A1", HttpStatusCode.BadRequest, "InvalidRequest")]
    [InlineData("GET", "/coupons/bad%20coupon", HttpStatusCode.BadRequest, "InvalidRequest")]
    [InlineData("GET", "/orders/http-never-placed", HttpStatusCode.NotFound, "OrderNotFound")]
    [InlineData("GET", "/orders/http-never-placed/progress", HttpStatusCode.NotFound, "OrderNotFound")]
    [InlineData("POST", "/orders/http-never-placed/receive", HttpStatusCode.NotFound, "OrderNotFound")]
    [InlineData("GET", "/stock/http-never-stocked", HttpStatusCode.NotFound, "StockNotFound")]
    [InlineData("GET", "/coupons/http-never-issued", HttpStatusCode.NotFound, "CouponNotFound")]
    [InlineData("GET", "/deadletters?subscriber=nobody", HttpStatusCode.NotFound, "UnknownSubscriber")]
    [InlineData("POST", "/deadletters/nobody/retry-all", HttpStatusCode.NotFound, "UnknownSubscriber")]
    [InlineData("POST", "/deadletters/nobody/o-1/retry", HttpStatusCode.NotFound, "UnknownSubscriber")]
    [InlineData("POST", "/subscribers/nobody/backfill", HttpStatusCode.NotFound, "UnknownSubscriber")]
    [InlineData("GET", "/subscribers/sms/backfill", HttpStatusCode.NotFound, "NoBackfill")]
    [InlineData("POST", "/deadletters/points/http-never-parked/retry", HttpStatusCode.Conflict, "NotParked")]
    [InlineData("GET", "/no/such/endpoint", HttpStatusCode.NotFound, "NotFound")]
    [InlineData("DELETE", "/orders/o-1", HttpStatusCode.MethodNotAllowed, "MethodNotAllowed")]
    public async Task Unknown_and_malformed_ids_are_problems_with_their_code(string method, string path, HttpStatusCode status, string code)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        await (await Http.SendAsync(request)).AssertProblemAsync(status, code);
    }

    [Fact]
    public async Task An_idempotency_key_outside_the_id_alphabet_is_refused_and_places_nothing()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3));

        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m), "key with spaces")).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");

        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
    }

    [Fact]
    public async Task Stock_and_coupon_bounds_are_the_grains_and_a_refusal_writes_nothing()
    {
        var (sku, coupon) = (await StockedSkuAsync(7), OrderDriver.NewId("http-c-"));

        await (await Http.PutAsync($"/stock/{sku}", new { available = -1 })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");
        await (await Http.PutAsync($"/stock/{sku}", new { available = InventoryLimits.MaxStock + 1 })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");
        await (await Http.PutAsync($"/coupons/{coupon}", new { uses = 0 })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidCommand");

        Assert.Equal((7, 0), await LevelAsync(sku));
        await (await Http.GetAsync($"/coupons/{coupon}")).AssertProblemAsync(HttpStatusCode.NotFound, "CouponNotFound");
    }

    [Fact]
    public async Task A_parked_order_is_listed_skipped_at_its_sequence_and_then_no_longer_parked()
    {
        var (id, sku) = (OrderDriver.NewId(HttpApiFixture.ParkPrefix), await StockedSkuAsync());
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 3.00m))).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{id}/pay", new { paymentId = $"p-{id}", amount = 3.00m })).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{id}/ship", null)).AssertOkAsync<CommandAccepted>();

        var list = await Eventually.Until(async () => await (await Http.GetAsync("/deadletters?subscriber=points")).AssertOkAsync<DeadLetterList>(),
            l => l.Letters.Any(d => d.OrderId == id), CatchUp, l => $"order {id} not listed as parked at points; listed: {l.Letters.Count}");
        var letter = list.Letters.Single(d => d.OrderId == id);
        Assert.Equal((2, "OrderPaid", "points"), (letter.Sequence, letter.EventKind, letter.Subscriber));
        Assert.True(list.Counts["points"] >= 1);
        // The status an operator pages on counts it too, as parked at points (the list's count, read from the same index).
        var status = await (await Http.GetAsync("/subscribers")).AssertOkAsync<SubscribersStatus>();
        Assert.Equal(list.Counts["points"], status.Lag.Single(row => row.Subscriber == "points").Parked);

        var resumed = await (await Http.PostAsync($"/deadletters/points/{id}/retry", null)).AssertOkAsync<DeadLetterActionResult>();
        Assert.Equal(DeadLetterActionOutcome.Resumed, resumed.Outcome);
        // The drill still fails the event: it parks again after its one attempt.
        await Eventually.Until(ProgressAsyncFor(id), r => r.Subscribers.Single(s => s.Subscriber == "points").Parked, CatchUp, r => $"order {id}: points not parked again");

        await (await Http.PostAsync($"/deadletters/points/{id}/skip", new { sequence = 3 })).AssertProblemAsync(HttpStatusCode.Conflict, "WrongSequence");
        await (await Http.PostAsync($"/deadletters/points/{id}/skip", new { sequence = 0 })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        var skipped = await (await Http.PostAsync($"/deadletters/points/{id}/skip", new { sequence = 2 })).AssertOkAsync<DeadLetterActionResult>();
        Assert.Equal(DeadLetterActionOutcome.Skipped, skipped.Outcome);

        var points = (await ProgressAsync(id)).Subscribers.Single(s => s.Subscriber == "points");
        Assert.False(points.Parked);
        Assert.Contains(2L, points.SkippedSequences);
        await (await Http.PostAsync($"/deadletters/points/{id}/retry", null)).AssertProblemAsync(HttpStatusCode.Conflict, "NotParked");
        var all = await (await Http.PostAsync("/deadletters/points/retry-all", new { since = DateTimeOffset.UtcNow.AddMinutes(1) })).AssertOkAsync<BulkRetryResult>();
        Assert.Equal((0, 0), (all.Resumed, all.Failed));
    }

    private Func<Task<OrderReport>> ProgressAsyncFor(string id) => () => ProgressAsync(id);

    [Fact]
    public async Task Subscribers_status_lists_every_subscriber_and_a_backfill_starts_and_reports()
    {
        var status = await (await Http.GetAsync("/subscribers")).AssertOkAsync<SubscribersStatus>();
        Assert.Subset(status.Subscribers.ToHashSet(), Subscribers.ToHashSet());

        var started = await (await Http.PostAsync("/subscribers/coupon/backfill", new { includeFinished = true })).AssertOkAsync<BackfillProgress>(HttpStatusCode.Accepted);
        Assert.Equal(("coupon", true), (started.Subscriber, started.IncludeFinished));

        var done = await Eventually.Until(async () => await (await Http.GetAsync("/subscribers/coupon/backfill")).AssertOkAsync<BackfillProgress>(),
            p => p.State != BackfillState.Running, CatchUp, p => $"backfill of coupon still {p.State} at {p.Processed}/{p.Total}");
        Assert.Equal(BackfillState.Done, done.State);
    }

    [Fact]
    public async Task An_audit_needs_orders_or_all_and_takes_at_most_a_thousand()
    {
        await (await Http.PostAsync("/audit", new { })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostAsync("/audit", new { orderIds = new[] { "o-1" }, all = true })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostAsync("/audit", new { orderIds = new[] { "bad id" } })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await Http.PostAsync("/audit", new { orderIds = Enumerable.Range(0, 1001).Select(i => $"o-{i}").ToArray() })).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");

        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync());
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m))).AssertOkAsync<CommandAccepted>();
        var all = await (await Http.PostAsync("/audit", new { all = true })).AssertOkAsync<AuditResult>();
        Assert.True(all.Checked >= 1, $"audit of all orders checked {all.Checked}");
        Assert.Equal(0, all.DiscrepancyCount);
        var unknown = await (await Http.PostAsync("/audit", new { orderIds = new[] { "http-never-placed" }, verbose = true })).AssertOkAsync<AuditResult>();
        Assert.Equal(0, unknown.Checked);
        Assert.Contains(unknown.Notes!, n => n.OrderId == "http-never-placed" && n.Area == "order");
    }

    [Fact]
    public async Task Without_the_api_key_every_endpoint_but_health_answers_401()
    {
        foreach (var path in new[] { "/orders/o-1", "/subscribers", "/deadletters", "/openapi/v1.json", "/scalar/", "/no/such/endpoint" })
        {
            await (await fixture.Anonymous.GetAsync(path)).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
        }

        var id = OrderDriver.NewId("http-o-");
        await (await fixture.Anonymous.PostAsync($"/orders/{id}/place", Place("u", "sku", 1, 1.00m))).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/subscribers") { Headers = { { HttpApiOptions.ApiKeyHeader, HttpApiFixture.Key + "x" } } };
        var refused = await (await fixture.Anonymous.SendAsync(wrong)).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
        Assert.Contains("does not match", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await fixture.Anonymous.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Anonymous.GetAsync("/health/ready")).StatusCode);
        await (await Http.GetAsync($"/orders/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
    }

    [Fact]
    public async Task Head_is_answered_as_get_without_a_body_and_needs_the_key_like_get()
    {
        var (id, sku) = (OrderDriver.NewId("http-head-"), await StockedSkuAsync(5));
        await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m))).AssertOkAsync<CommandAccepted>();

        foreach (var (path, status) in new[]
        {
            ($"/orders/{id}", HttpStatusCode.OK), ($"/stock/{sku}", HttpStatusCode.OK), ("/subscribers", HttpStatusCode.OK),
            ("/health/live", HttpStatusCode.OK), ("/openapi/v1.json", HttpStatusCode.OK), ("/", HttpStatusCode.OK), ("/live/live.js", HttpStatusCode.OK),
            ($"/orders/{OrderDriver.NewId("http-head-none-")}", HttpStatusCode.NotFound),
        })
        {
            var get = await Http.GetAsync(path);
            using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.Equal((path, status, status), (path, get.StatusCode, head.StatusCode));
            Assert.Equal(get.Content.Headers.ContentType, head.Content.Headers.ContentType);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }

        using var anonymous = await fixture.Anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/orders/{id}"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        // HEAD reads, like GET: a HEAD to a command's path is not a command.
        using var headPlace = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/orders/{OrderDriver.NewId("http-head-")}/place"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, headPlace.StatusCode);
    }

    [Fact]
    public async Task Ready_turns_503_while_grain_storage_fails_and_live_stays_200()
    {
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "orderflow-health", Operations = StorageOperations.Read }))
        {
            var ready = await fixture.Anonymous.GetAsync("/health/ready");
            var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal("Unhealthy", body.GetProperty("checks").GetProperty("storage").GetProperty("status").GetString());
            Assert.Equal("Healthy", body.GetProperty("checks").GetProperty("silo").GetProperty("status").GetString());
            Assert.Equal(HttpStatusCode.OK, (await fixture.Anonymous.GetAsync("/health/live")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await fixture.Anonymous.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task A_command_whose_order_cannot_load_its_state_is_503_cluster_unavailable_and_a_retry_with_the_same_key_succeeds()
    {
        var (id, sku) = (OrderDriver.NewId("http-o-"), await StockedSkuAsync(3));
        using (fixture.Faults.Fail(new StorageFault { StorageName = StorageNames.Orders, GrainType = "order", KeyPrefix = id, Operations = StorageOperations.Read }))
        {
            await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m), "retry-me")).AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "ClusterUnavailable");
        }

        var placed = await (await Http.PostAsync($"/orders/{id}/place", Place("u", sku, 1, 1.00m), "retry-me")).AssertOkAsync<CommandAccepted>();
        Assert.Equal((1, false), (placed.Sequence, placed.Repeated));
    }

    [Fact]
    public async Task The_openapi_document_names_every_endpoint_and_the_ui_is_served()
    {
        var document = JsonDocument.Parse(await (await Http.GetAsync("/openapi/v1.json")).Content.ReadAsStringAsync()).RootElement;
        var operations = document.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Where(op => op.Value.ValueKind == JsonValueKind.Object && op.Value.TryGetProperty("operationId", out _))
                .Select(op => $"{op.Name.ToUpperInvariant()} {path.Name} {op.Value.GetProperty("operationId").GetString()}"))
            .ToHashSet();

        string[] expected =
        [
            "POST /orders/{orderId}/place PlaceOrder", "POST /orders/{orderId}/pay PayOrder", "POST /orders/{orderId}/ship ShipOrder",
            "POST /orders/{orderId}/receive ReceiveOrder", "POST /orders/{orderId}/cancel CancelOrder", "GET /orders/{orderId} GetOrder",
            "GET /orders/{orderId}/progress GetOrderProgress", "GET /deadletters ListDeadLetters", "POST /deadletters/{subscriber}/{orderId}/retry RetryDeadLetter",
            "POST /deadletters/{subscriber}/{orderId}/skip SkipDeadLetter", "POST /deadletters/{subscriber}/retry-all RetryAllDeadLetters",
            "GET /subscribers GetSubscribers", "POST /subscribers/{subscriber}/backfill StartBackfill", "GET /subscribers/{subscriber}/backfill GetBackfill",
            "PUT /stock/{sku} SetStock", "GET /stock/{sku} GetStock", "PUT /coupons/{couponId} IssueCoupon", "GET /coupons/{couponId} GetCoupon", "POST /audit Audit",
            "PUT /flashsales/{saleId} CreateFlashSale", "PUT /flashsales/{saleId}/rate SetFlashSaleRate", "POST /flashsales/{saleId}/buy BuyFlashSale",
            "GET /flashsales/{saleId}/tickets/{ticket} GetFlashSaleTicket", "GET /flashsales/{saleId} GetFlashSale",
        ];
        Assert.Empty(expected.Except(operations));
        Assert.Contains("CommandIdReused", document.GetProperty("info").GetProperty("description").GetString(), StringComparison.Ordinal);
        // Decimals are JSON numbers in the schema (ExactDecimalConverter hid their type from the generator: review finding).
        var schemas = document.GetProperty("components").GetProperty("schemas");
        Assert.Equal("number", schemas.GetProperty("PayOrderRequest").GetProperty("properties").GetProperty("amount").GetProperty("type").ToString());

        // What an endpoint can answer is listed: a bad path id or body (400) on the operators' endpoints, and on every
        // endpoint but the probes the key (401) and the rate limit (429).
        string Responses(string path, string method) =>
            string.Join(",", document.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses").EnumerateObject().Select(r => r.Name).Order());
        foreach (var (path, method) in new[] { ("/deadletters/{subscriber}/{orderId}/skip", "post"), ("/deadletters/{subscriber}/{orderId}/retry", "post"),
                     ("/deadletters/{subscriber}/retry-all", "post"), ("/subscribers/{subscriber}/backfill", "post"), ("/subscribers/{subscriber}/backfill", "get") })
        {
            Assert.Contains("400", Responses(path, method));
        }

        foreach (var path in document.GetProperty("paths").EnumerateObject().Where(p => !p.Name.StartsWith("/health", StringComparison.Ordinal)))
        {
            foreach (var op in path.Value.EnumerateObject().Where(op => op.Value.ValueKind == JsonValueKind.Object && op.Value.TryGetProperty("responses", out _)))
            {
                Assert.True(Responses(path.Name, op.Name).Contains("401") && Responses(path.Name, op.Name).Contains("429"), $"{op.Name} {path.Name}: {Responses(path.Name, op.Name)}");
            }
        }

        var ui = await Http.GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
        Assert.Equal("text/html", ui.Content.Headers.ContentType?.MediaType);
    }
}
