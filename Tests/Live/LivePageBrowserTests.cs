using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using OrderFlow.Contracts;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Live;

/// <summary>
/// The live page at <c>/</c> in a real headless Chromium (Debian's <c>chromium</c>, driven by Playwright): it asks for
/// the API key, then finds known orders, shows their events and where each subscriber stands, renders a reason full of
/// markup as text, and lists a dead letter. Screenshots go to <c>artifacts/</c>.
/// </summary>
[Collection(LiveSiloCollection.Name)]
public sealed class LivePageBrowserTests(LiveSiloFixture fixture)
{
    private static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(30);
    private const float BrowserTimeoutMs = 15_000;

    /// <summary>Markup in a cancel reason: shown as these characters, never parsed (no img, no bold, the handler never runs).</summary>
    private const string HostileReason = "<img src=x onerror=\"window.__pwned=1\"><b>bold</b> & \"quotes\"";

    private HttpClient Http => fixture.Client;

    [Fact]
    public async Task Live_page_finds_a_known_order_and_shows_its_events_and_every_subscriber_in_a_real_browser()
    {
        var sku = OrderDriver.NewId("live-sku-");
        await (await Http.PutAsync($"/stock/{sku}", new { available = 10 })).AssertOkAsync<StockLevel>();
        var (done, cancelled, parked) = (OrderDriver.NewId("live-o-"), OrderDriver.NewId("live-c-"), OrderDriver.NewId(LiveSiloFixture.ParkPrefix));
        await PlaceAsync(done, sku);
        await (await Http.PostAsync($"/orders/{done}/pay", new { paymentId = $"p-{done}", amount = 19.90m })).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{done}/ship", null)).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{done}/receive", null)).AssertOkAsync<CommandAccepted>();
        await PlaceAsync(cancelled, sku);
        await (await Http.PostAsync($"/orders/{cancelled}/cancel", new { reason = HostileReason })).AssertOkAsync<CommandAccepted>();
        await PlaceAsync(parked, sku);
        await (await Http.PostAsync($"/orders/{parked}/pay", new { paymentId = $"p-{parked}", amount = 19.90m })).AssertOkAsync<CommandAccepted>();
        await (await Http.PostAsync($"/orders/{parked}/ship", null)).AssertOkAsync<CommandAccepted>();

        // What the page must show, read first through its own endpoint: every subscriber finished the received order, and
        // points parked the drilled one.
        var subscribers = (await LiveOrderAsync(done)).Subscribers.Select(s => s.Subscriber).ToArray();
        Assert.Contains("points", subscribers);
        await Eventually.Until(() => LiveOrderAsync(done), o => o.Subscribers.All(s => s.Delivery == DeliveryState.Finished), CatchUp,
            o => $"order {done}: expected every subscriber Finished, saw {string.Join(", ", o.Subscribers.Select(s => $"{s.Subscriber}={s.Delivery}@{s.AppliedSequence}"))}");
        await Eventually.Until(() => LiveOrderAsync(parked), o => o.Subscribers.Single(s => s.Subscriber == "points").DeadLetter is not null, CatchUp,
            o => $"order {parked}: expected points parked with a dead letter, saw {JsonSerializer.Serialize(o.Subscribers.Single(s => s.Subscriber == "points"))}");

        await using var browser = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync();
        var pageErrors = new List<string>();
        page.PageError += (_, error) => pageErrors.Add(error);
        var response = await page.GotoAsync(fixture.BaseAddress.ToString());
        Assert.True(response is { Status: 200 }, $"GET / in the browser answered {response?.Status}");

        // The silo has a key: the page loads without it, finds its data refused, and asks for the key once.
        await Assertions.Expect(page.Locator("#key-form")).ToBeVisibleAsync(new() { Timeout = BrowserTimeoutMs });
        await page.FillAsync("#api-key", LiveSiloFixture.Key);
        await page.ClickAsync("#key-form button");
        await Assertions.Expect(page.Locator("#subscribers tbody tr")).ToHaveCountAsync(subscribers.Length, new() { Timeout = BrowserTimeoutMs });
        Assert.NotEqual("–", await page.TextContentAsync("#orders-total"));

        await SearchAsync(page, done);
        await Assertions.Expect(page.Locator("#timeline-title")).ToHaveTextAsync($"Order {done}", new() { Timeout = BrowserTimeoutMs });
        var events = page.Locator("#events tbody tr");
        await Assertions.Expect(events).ToHaveCountAsync(4);
        Assert.Equal(["OrderPlaced", "OrderPaid", "OrderShipped", "OrderReceived"], await page.Locator("#events tbody tr td:nth-child(2)").AllTextContentsAsync());
        Assert.Contains($"1 × {sku} at 19.90", await events.Nth(0).TextContentAsync(), StringComparison.Ordinal);
        var progress = page.Locator("#progress tbody tr");
        await Assertions.Expect(progress).ToHaveCountAsync(subscribers.Length);
        foreach (var name in subscribers)
        {
            var cells = await progress.Filter(new() { Has = page.Locator("td:first-child", new() { HasTextString = name }) }).First.Locator("td").AllTextContentsAsync();
            Assert.True(cells is [_, "4 of 4", "Finished", ..], $"order {done}, subscriber {name}: expected '4 of 4' and Finished, the page shows {string.Join(" | ", cells)}");
        }

        await Screenshot(page, "live-page-order");

        await SearchAsync(page, cancelled);
        await Assertions.Expect(page.Locator("#timeline-title")).ToHaveTextAsync($"Order {cancelled}", new() { Timeout = BrowserTimeoutMs });
        await Assertions.Expect(events).ToHaveCountAsync(2);
        Assert.Equal($"not paid, reason: {HostileReason}", await events.Nth(1).Locator("td:nth-child(4)").TextContentAsync());
        Assert.Equal(0, await page.Locator("#timeline img, #timeline b").CountAsync());
        Assert.True(await page.EvaluateAsync<bool>("() => window.__pwned === undefined"), "the reason's onerror ran in the page");

        await SearchAsync(page, parked);
        await Assertions.Expect(page.Locator("#timeline-title")).ToHaveTextAsync($"Order {parked}", new() { Timeout = BrowserTimeoutMs });
        var points = progress.Filter(new() { Has = page.Locator("td:first-child", new() { HasTextString = "points" }) }).First;
        await Assertions.Expect(points).ToHaveClassAsync("parked");
        await Assertions.Expect(points.Locator("td:nth-child(7)")).ToContainTextAsync("#2 OrderPaid: ");
        await Assertions.Expect(points.Locator("td:nth-child(7)")).ToContainTextAsync("drill: points always fails OrderPaid");

        // The dead-letter count links to the subscriber's list, whose rows name the parked order.
        await page.ClickAsync("#subscribers tbody tr:has(td:first-child:text-is('points')) button");
        await Assertions.Expect(page.Locator("#dead-letters tbody tr", new() { HasTextString = parked })).ToHaveCountAsync(1, new() { Timeout = BrowserTimeoutMs });

        await SearchAsync(page, OrderDriver.NewId("live-none-"));
        // Said on the search's own line, which the summary's periodic refresh does not overwrite.
        await Assertions.Expect(page.Locator("#order-status")).ToContainTextAsync("has never been placed", new() { Timeout = BrowserTimeoutMs });
        await Assertions.Expect(page.Locator("#timeline")).ToBeHiddenAsync();
        await Screenshot(page, "live-page-dead-letters");

        Assert.Empty(pageErrors);
    }

    [Fact]
    public async Task Live_endpoints_answer_problems_for_unknown_and_bad_order_ids_and_need_the_key()
    {
        await (await Http.GetAsync($"/live/orders/{OrderDriver.NewId("live-none-")}")).AssertProblemAsync(HttpStatusCode.NotFound, "OrderNotFound");
        await (await Http.GetAsync("/live/orders/bad%20id")).AssertProblemAsync(HttpStatusCode.BadRequest, "InvalidRequest");
        await (await fixture.Anonymous.GetAsync("/live/summary")).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
        await (await fixture.Anonymous.GetAsync("/live/orders/o-1")).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");

        // The page's files hold no data and load without the key (a browser cannot add a header to a navigation), with a
        // policy that refuses inline script.
        var page = await fixture.Anonymous.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Anonymous.GetAsync("/live/live.js")).StatusCode);
        await (await fixture.Anonymous.PostAsync("/", null)).AssertProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized");
    }

    [Fact]
    public async Task Live_summary_counts_a_placed_order()
    {
        var before = await (await Http.GetAsync("/live/summary")).AssertOkAsync<LiveSummary>();
        var sku = OrderDriver.NewId("live-sku-");
        await (await Http.PutAsync($"/stock/{sku}", new { available = 1 })).AssertOkAsync<StockLevel>();
        await PlaceAsync(OrderDriver.NewId("live-s-"), sku);

        var after = await (await Http.GetAsync("/live/summary")).AssertOkAsync<LiveSummary>();
        Assert.True(after.OrdersPlaced >= before.OrdersPlaced + 1, $"orders placed: {before.OrdersPlaced} before, {after.OrdersPlaced} after one placement");
        Assert.Contains(after.Subscribers, s => s.Name == "points");
    }

    [Fact]
    public async Task Watching_an_order_on_the_live_page_activates_none_of_its_grains()
    {
        var grains = fixture.App.Services.GetRequiredService<IGrainFactory>();
        var management = grains.GetGrain<IManagementGrain>(0);
        var (id, sku) = (OrderDriver.NewId("live-quiet-"), OrderDriver.NewId("live-sku-"));
        string[] types = ["order", "inventory", "points", "order-sync", "order-replica", "coupon", "sms", "activity-gmv"];
        // Every activation in the silo whose key is this order's id (the order, its subscribers, its replica …).
        async Task<string[]> ActiveAsync() =>
            (await management.GetDetailedGrainStatistics())
            .Where(g => g.GrainId.Key.ToString() == id && types.Contains(g.GrainId.Type.ToString()))
            .Select(g => g.GrainId.ToString()).ToArray();

        await (await Http.PutAsync($"/stock/{sku}", new { available = 1 })).AssertOkAsync<StockLevel>();
        await PlaceAsync(id, sku);
        // The check sees these grains at all: the open order's grain is active after its command.
        Assert.Contains($"order/{id}", await ActiveAsync());

        // A finished order (placed, cancelled): every subscriber stores its end, so nothing — not the relay — has a reason
        // to wake any of its grains again; finished grains also deactivate themselves, and idle ones are collected.
        await (await Http.PostAsync($"/orders/{id}/cancel", null)).AssertOkAsync<CommandAccepted>();
        await Eventually.Until(() => LiveOrderAsync(id), o => o.Subscribers.All(s => s.Delivery == DeliveryState.Finished), CatchUp,
            o => $"order {id}: {string.Join(", ", o.Subscribers.Select(s => $"{s.Subscriber}={s.Delivery}@{s.AppliedSequence}"))}");
        await Eventually.Until(async () =>
        {
            await management.ForceActivationCollection(TimeSpan.Zero);
            return await ActiveAsync();
        }, active => active.Length == 0, CatchUp, active => $"order {id}: still active after collection: {string.Join(", ", active)}");

        // Watched twice: still none active.
        var watched = await LiveOrderAsync(id);
        await (await Http.GetAsync("/live/summary")).AssertOkAsync<LiveSummary>();
        Assert.Equal((OrderStatus.Cancelled, 2L), (watched.Status, watched.LastSequence));
        Assert.Empty(await ActiveAsync());
    }

    private async Task PlaceAsync(string orderId, string sku) =>
        await (await Http.PostAsync($"/orders/{orderId}/place", new { userId = "u-live", items = new[] { new { sku, quantity = 1, unitPrice = 19.90m } } }))
            .AssertOkAsync<CommandAccepted>();

    private async Task<LiveOrder> LiveOrderAsync(string orderId) => await (await Http.GetAsync($"/live/orders/{orderId}")).AssertOkAsync<LiveOrder>();

    private static async Task SearchAsync(IPage page, string orderId)
    {
        await page.FillAsync("#order-id", orderId);
        await page.ClickAsync("#order-search");
    }

    private static async Task Screenshot(IPage page, string name)
    {
        var path = Path.Combine(Browser.ArtifactsDirectory, $"{name}.png");
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        Assert.True(new FileInfo(path).Length > 0, $"no screenshot at {path}");
    }
}
