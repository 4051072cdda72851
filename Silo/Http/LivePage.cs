using System.Globalization;
using System.Reflection;
using Microsoft.AspNetCore.Http.HttpResults;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Silo.Http;

/// <summary>What <c>GET /live/summary</c> answers: totals the live page turns into rates by taking two of them.</summary>
/// <param name="At">When the silo read them.</param>
/// <param name="OrdersPlaced">Orders the catalog holds, cluster-wide (an order placed twice after a catalog retry counts twice).</param>
/// <param name="Silo">This silo's subscriber counters since it started.</param>
/// <param name="Subscribers">Per subscriber: orders the relay holds as not delivered there yet, the oldest one's start, parked orders.</param>
/// <param name="OutboxOrders">Orders whose events are not all published (relay row <c>outbox</c>).</param>
/// <param name="UncheckedOrders">Orders with new events no relay check has answered for yet (relay row <c>*</c>): any subscriber may be behind on them.</param>
public sealed record LiveSummary(
    DateTimeOffset At, long OrdersPlaced, LiveSiloCounters Silo, IReadOnlyList<LiveSubscriber> Subscribers, int OutboxOrders, int UncheckedOrders);

/// <summary>This silo's pipeline counters (<see cref="SubscriberMetrics"/>): events delivered to, applied by and dropped as duplicates by its subscriber grains.</summary>
public sealed record LiveSiloCounters(long Deliveries, long Applied, long Duplicates);

/// <summary>One subscriber on the live page.</summary>
public sealed record LiveSubscriber(string Name, int OrdersBehind, DateTimeOffset? OldestBehindSince, int DeadLetters);

/// <summary>What <c>GET /live/orders/{orderId}</c> answers: the order's stored events and where each subscriber's stored inbox stands.</summary>
public sealed record LiveOrder(
    string OrderId, OrderStatus Status, long LastSequence, long PublishedSequence, IReadOnlyList<LiveEvent> Events,
    IReadOnlyList<LiveProgress> Subscribers, RelayEntry? Relay);

/// <summary>One stored event of an order, with a one-line description of what it carries.</summary>
public sealed record LiveEvent(long Sequence, string Kind, DateTimeOffset OccurredAt, string Detail);

/// <summary>
/// One subscriber's stored inbox for the order: the last event applied, events held behind a gap or a parked event, its
/// <see cref="DeliveryState"/>, the head event's failed attempts, events an operator skipped, and the dead letter
/// (with its error) when parked.
/// </summary>
public sealed record LiveProgress(
    string Subscriber, bool Stored, long AppliedSequence, IReadOnlyList<long> Held, DeliveryState Delivery, int Attempts,
    IReadOnlyList<long> Skipped, DeadLetter? DeadLetter);

/// <summary>
/// The live page at <c>/</c> (<c>Silo/wwwroot</c>, embedded in the silo assembly: plain HTML, CSS and one script, no build
/// step) and the two read-only JSON endpoints it polls. Both read what is stored or counted — the catalog, the relay's
/// shards, the dead-letter indexes, <see cref="IStoredStateGrain"/> — and never activate an order or subscriber grain:
/// watching the page must not make an order publish its outbox or an inbox catch up, or it would hide what it shows.
/// </summary>
public static class LivePage
{
    private const string ResourcePrefix = "OrderFlow.Silo.wwwroot.";

    // No inline script or style, nothing from elsewhere: if a rendered value ever reached the DOM as markup, the browser
    // would still refuse to run it.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>The page's static files: path, embedded file, content type. They hold no data, only the page that fetches it.</summary>
    private static readonly (string Path, string File, string ContentType)[] Shell =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/live/live.js", "live.js", "text/javascript; charset=utf-8"),
        ("/live/live.css", "live.css", "text/css; charset=utf-8"),
    ];

    /// <summary>A GET (or HEAD) of one of the page's static files, which the API key does not guard (<see cref="ApiKeyMiddleware"/>).</summary>
    public static bool IsShell(HttpRequest request) =>
        (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
        && Array.Exists(Shell, asset => string.Equals(asset.Path, request.Path.Value, StringComparison.Ordinal));

    public static IEndpointRouteBuilder MapLivePage(this IEndpointRouteBuilder app)
    {
        foreach (var (path, file, contentType) in Shell)
        {
            MapAsset(app, path, file, contentType);
        }

        var live = app.MapGroup("/live").WithTags("Live page");
        live.MapGet("/summary", SummaryAsync)
            .WithName("GetLiveSummary").WithSummary("Orders placed (catalog), this silo's subscriber counters, per subscriber the orders behind and dead letters; reads only");
        live.MapGet("/orders/{orderId}", OrderAsync)
            .WithName("GetLiveOrder").WithSummary("An order's stored events and each subscriber's stored progress (activates no order or subscriber grain)")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static void MapAsset(IEndpointRouteBuilder app, string path, string file, string contentType)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourcePrefix + file)
            ?? throw new InvalidOperationException($"the live page's {file} is not embedded in {Assembly.GetExecutingAssembly().GetName().Name} (Silo/wwwroot)");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        app.MapGet(path, (HttpContext context) =>
        {
            context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
            context.Response.Headers.XContentTypeOptions = "nosniff";
            context.Response.Headers.CacheControl = "no-cache";
            return Results.Bytes(bytes, contentType);
        }).ExcludeFromDescription();
    }

    private static async Task<Ok<LiveSummary>> SummaryAsync(IGrainFactory grains, SubscriberMetrics metrics, SubscriberCatalog catalog)
    {
        var segments = Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => grains.GetGrain<IOrderCatalogGrain>(shard).GetSegmentsAsync()));
        var lag = grains.GetGrain<IOperationsGrain>(0).GetLagAsync();
        var placed = (await segments).Sum(shard => shard.Sum(segment => (long)segment.Count));
        var behind = (await lag).ToDictionary(row => row.Subscriber, StringComparer.Ordinal);
        var subscribers = catalog.Names.Select(name => new LiveSubscriber(name,
            behind.TryGetValue(name, out var row) ? row.Orders : 0, row?.OldestSince, row?.Parked ?? 0)).ToArray();
        return TypedResults.Ok(new LiveSummary(DateTimeOffset.UtcNow, placed, new LiveSiloCounters(metrics.Deliveries, metrics.Applied, metrics.Duplicates),
            subscribers, behind.GetValueOrDefault("outbox")?.Orders ?? 0, behind.GetValueOrDefault("*")?.Orders ?? 0));
    }

    private static async Task<Results<Ok<LiveOrder>, ProblemHttpResult>> OrderAsync(string orderId, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(orderId, "order id")) is { } invalid)
        {
            return invalid;
        }

        var stored = grains.GetGrain<IStoredStateGrain>(0);
        var detailRead = stored.ReadOrderDetailsAsync([orderId]);
        var progressRead = stored.ReadOrdersAsync([orderId]);
        var relay = grains.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(orderId)).FindAsync(orderId);
        var (detail, order) = ((await detailRead).Single(), (await progressRead).Single());
        if (!detail.Exists || detail.Status == OrderStatus.None)
        {
            return Problems.Of(ErrorCodes.OrderNotFound, $"order {orderId} has never been placed");
        }

        var subscribers = await Task.WhenAll(order.Subscribers.Select(async s => new LiveProgress(
            s.Subscriber, s.Exists, s.AppliedSequence, s.HeldSequences.Where(seq => seq > s.AppliedSequence).Order().ToArray(), order.Delivery(s),
            s.Attempts, s.SkippedSequences, s.Parked ? await DeadLetterAsync(grains, s.Subscriber, orderId) : null)));
        return TypedResults.Ok(new LiveOrder(orderId, detail.Status, detail.LastSequence, order.PublishedSequence,
            detail.Events.OrderBy(e => e.Sequence).Select(e => new LiveEvent(e.Sequence, e.Kind, e.OccurredAt, Describe(e))).ToArray(),
            subscribers, await relay));
    }

    /// <summary>The order's entry in the subscriber's dead-letter index shard (its error), read from the index alone.</summary>
    private static async Task<DeadLetter?> DeadLetterAsync(IGrainFactory grains, string subscriber, string orderId) =>
        (await grains.GetGrain<IDeadLetterIndexGrain>(DeadLetterShards.KeyFor(subscriber, orderId)).ListAsync())
        .FirstOrDefault(letter => letter.OrderId == orderId);

    private static string Describe(OrderEvent e) => e switch
    {
        OrderPlaced p => $"user {p.UserId}, {Lines(p.Items)}, total {Money(p.Total)}{(p.CouponId is null ? "" : $", coupon {p.CouponId}")}{(p.ActivityId is null ? "" : $", activity {p.ActivityId}")}",
        OrderPaid p => $"payment {p.PaymentId}, {Money(p.Amount)}",
        OrderShipped => "shipped",
        OrderReceived => "received by the buyer",
        OrderCancelled c => $"{(c.WasPaid ? $"refund {Money(c.RefundAmount)}" : "not paid")}{(c.Reason is null ? "" : $", reason: {c.Reason}")}",
        _ => e.Kind,
    };

    private static string Lines(IReadOnlyList<OrderLine> items) =>
        string.Join(" + ", items.Select(i => $"{i.Quantity.ToString(CultureInfo.InvariantCulture)} × {i.Sku} at {Money(i.UnitPrice)}"));

    private static string Money(decimal amount) => amount.ToString("0.00", CultureInfo.InvariantCulture);
}
