using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>
/// Body of <c>PUT /flashsales/{saleId}</c>: the CLI's <c>flashsale create</c> options, with the same defaults (start now,
/// one unit per user, a backlog of <see cref="FlashSaleLimits.DefaultBuffer"/>, price 1.00).
/// </summary>
public sealed record CreateFlashSaleRequest(
    string Sku, long Stock, long Rate, DateTimeOffset? StartsAt = null, long? PerUserLimit = null, long? Buffer = null, decimal? Price = null);

/// <summary>Body of <c>PUT /flashsales/{saleId}/rate</c>.</summary>
public sealed record FlashSaleRateRequest(long Rate);

/// <summary>
/// Body of <c>POST /flashsales/{saleId}/buy</c>. The request id is the buy's idempotency key: the body's
/// <see cref="RequestId"/> or the <c>Idempotency-Key</c> header (both given: they must be equal).
/// </summary>
public sealed record BuyRequest(string UserId, string? RequestId = null);

/// <summary>A buy that holds a ticket: <c>queued</c> now, or <c>duplicate</c> (the same request id again: the first ticket).</summary>
public sealed record BuyAccepted(string SaleId, string Outcome, string Ticket);

/// <summary>
/// A sale's settings and counters (<see cref="FlashSaleStatus"/>), with refusals keyed by the answers' names
/// (<c>sold_out</c>, <c>limit_reached</c> …, as <c>buy</c> gives them) and the drain's orders per second by unix second.
/// </summary>
public sealed record FlashSaleStatusAnswer(
    string SaleId, FlashSaleSpec Spec, long Accepted, IReadOnlyDictionary<string, long> Refused, long Processed, long Won, long Backlog,
    long CurrentRate, long UnitsLeft, bool SoldOut, IReadOnlyDictionary<long, long> Windows)
{
    public static FlashSaleStatusAnswer Of(FlashSaleStatus s) => new(s.SaleId, s.Spec!, s.Accepted,
        s.Refused.ToDictionary(r => r.Key.Name(), r => r.Value), s.Processed, s.Won, s.Backlog, s.CurrentRate, s.UnitsLeft, s.SoldOut, s.Windows);
}

/// <summary>Where a ticket stands: <c>pending</c>, <c>won</c> (with its order id) or <c>sold_out</c>.</summary>
public sealed record TicketAnswer(string SaleId, string Ticket, string State, string? OrderId);

/// <summary>
/// <c>/flashsales</c>: the CLI's <c>flashsale create|rate|buy|ticket|status</c>. Every admission answer that is not a
/// ticket is a problem with its code (<see cref="ErrorCodes.For(AdmissionOutcome)"/>); <c>busy</c> carries a
/// <c>Retry-After</c> header and the hint in milliseconds.
/// </summary>
public static class FlashSaleEndpoints
{
    public static IEndpointRouteBuilder MapFlashSales(this IEndpointRouteBuilder app)
    {
        var sales = app.MapGroup("/flashsales").WithTags("Flash sales");
        sales.MapPut("/{saleId}", CreateAsync)
            .WithName("CreateFlashSale").WithSummary("Creates a flash sale (the same settings again is a harmless repeat); its stock is taken from the SKU's")
            .WithDescription(Refusals(ErrorCodes.InvalidRequest, ErrorCodes.SaleExists, ErrorCodes.UnknownSku, ErrorCodes.InsufficientStock))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        sales.MapPut("/{saleId}/rate", SetRateAsync)
            .WithName("SetFlashSaleRate").WithSummary($"Changes a sale's drain rate (1-{FlashSaleLimits.MaxRate} orders per second, cluster-wide), within one drain tick")
            .WithDescription(Refusals(ErrorCodes.InvalidRequest, ErrorCodes.UnknownSale))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        sales.MapPost("/{saleId}/buy", BuyAsync)
            .WithName("BuyFlashSale").WithSummary("Asks for a unit: 202 queued with a ticket (durably buffered), 200 duplicate with the first ticket, or a problem")
            .WithDescription($"The request id (body requestId or the {OrderEndpoints.IdempotencyKeyHeader} header) makes a retry safe: the same id again answers " +
                             "duplicate with the first ticket. " + Refusals(ErrorCodes.InvalidRequest, ErrorCodes.UnknownSale, ErrorCodes.SoldOut,
                                 ErrorCodes.NotStarted, ErrorCodes.LimitReached, ErrorCodes.Busy))
            .Produces<BuyAccepted>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        sales.MapGet("/{saleId}/tickets/{ticket}", TicketAsync)
            .WithName("GetFlashSaleTicket").WithSummary("Where a ticket stands: pending, won (the order id) or sold_out")
            .WithDescription(Refusals(ErrorCodes.InvalidRequest, ErrorCodes.UnknownSale, ErrorCodes.TicketNotFound))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        sales.MapGet("/{saleId}", StatusAsync)
            .WithName("GetFlashSale").WithSummary("A sale's settings and counters: accepted, refused by reason, processed, won, backlog, current rate")
            .WithDescription(Refusals(ErrorCodes.InvalidRequest, ErrorCodes.UnknownSale))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static string Refusals(params KnownError[] errors) => $"Refusals: {string.Join(", ", errors.Select(e => e.Code))}.";

    // Every bound is checked here, before the grain is called, with the CLI's checks (FlashSaleLimits); the grain
    // checks them again, so any other client meets the same refusal.
    private static async Task<Results<Ok<FlashSaleSpec>, ProblemHttpResult>> CreateAsync(string saleId, CreateFlashSaleRequest body, IGrainFactory grains)
    {
        var perUser = body.PerUserLimit ?? 1;
        var buffer = body.Buffer ?? FlashSaleLimits.DefaultBuffer;
        var price = body.Price ?? 1.00m;
        // The long fields are checked before they are narrowed to the spec's ints; then the whole spec, start included.
        if (Problems.FirstInvalid(FlashSaleLimits.StockProblem(body.Stock), FlashSaleLimits.RateProblem(body.Rate),
                FlashSaleLimits.PerUserLimitProblem(perUser), FlashSaleLimits.BufferProblem(buffer)) is { } outOfRange)
        {
            return outOfRange;
        }

        var spec = new FlashSaleSpec(body.Sku, body.Stock, (int)body.Rate, body.StartsAt ?? FlashSaleSpec.StartsNow, (int)perUser, (int)buffer, price);
        if (Problems.FirstInvalid(FlashSaleLimits.SpecProblem(saleId, spec, DateTimeOffset.UtcNow)) is { } invalid)
        {
            return invalid;
        }

        var result = await grains.GetGrain<IFlashSaleGrain>(saleId).CreateAsync(spec);
        return result.Accepted ? TypedResults.Ok(result.Spec!) : Refused(saleId, result);
    }

    private static async Task<Results<Ok<FlashSaleSpec>, ProblemHttpResult>> SetRateAsync(string saleId, FlashSaleRateRequest body, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(FlashSaleLimits.SaleIdProblem(saleId), FlashSaleLimits.RateProblem(body.Rate)) is { } invalid)
        {
            return invalid;
        }

        var result = await grains.GetGrain<IFlashSaleGrain>(saleId).SetRateAsync((int)body.Rate);
        return result.Accepted ? TypedResults.Ok(result.Spec!) : Refused(saleId, result);
    }

    private static async Task<Results<Accepted<BuyAccepted>, Ok<BuyAccepted>, ProblemHttpResult>> BuyAsync(
        string saleId, BuyRequest body, [FromHeader(Name = OrderEndpoints.IdempotencyKeyHeader)] string? key, HttpContext http, IGrainFactory grains)
    {
        var requestId = body.RequestId ?? key;
        if (Problems.FirstInvalid(
                FlashSaleLimits.SaleIdProblem(saleId),
                Ids.Problem(body.UserId, "user id"),
                requestId is null ? $"a request id is required: the body's requestId or the {OrderEndpoints.IdempotencyKeyHeader} header" : Ids.Problem(requestId, "request id"),
                body.RequestId is not null && key is not null && body.RequestId != key
                    ? $"the body's requestId and the {OrderEndpoints.IdempotencyKeyHeader} header differ; send one, or the same id in both"
                    : null) is { } invalid)
        {
            return invalid;
        }

        var answer = await grains.GetGrain<IFlashSaleGrain>(saleId).BuyAsync(body.UserId, requestId!);
        switch (answer.Outcome)
        {
            case AdmissionOutcome.Queued:
                return TypedResults.Accepted($"/flashsales/{saleId}/tickets/{answer.Ticket}", new BuyAccepted(saleId, answer.Outcome.Name(), answer.Ticket!));
            case AdmissionOutcome.Duplicate:
                http.Response.Headers.Location = $"/flashsales/{saleId}/tickets/{answer.Ticket}";
                return TypedResults.Ok(new BuyAccepted(saleId, answer.Outcome.Name(), answer.Ticket!));
            case AdmissionOutcome.Busy:
                var retryAfterMs = Math.Max(1, answer.RetryAfterMs ?? 1000);
                http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfterMs / 1000.0)).ToString(CultureInfo.InvariantCulture);
                return Problems.Of(ErrorCodes.Busy, $"flash sale {saleId}: {answer.Message ?? "the backlog is at its bound"}; retry after {retryAfterMs} ms with the same request id",
                    new Dictionary<string, object?> { ["outcome"] = answer.Outcome.Name(), ["retryAfterMs"] = retryAfterMs });
            default:
                return Problems.Of(ErrorCodes.For(answer.Outcome)!, $"flash sale {saleId}: {answer.Message ?? answer.Outcome.Name()}",
                    new Dictionary<string, object?> { ["outcome"] = answer.Outcome.Name() });
        }
    }

    private static async Task<Results<Ok<TicketAnswer>, ProblemHttpResult>> TicketAsync(string saleId, string ticket, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(
                FlashSaleLimits.SaleIdProblem(saleId),
                FlashSaleLimits.TicketProblem(ticket)) is { } invalid)
        {
            return invalid;
        }

        var grain = grains.GetGrain<IFlashSaleGrain>(saleId);
        var status = await grain.GetTicketAsync(ticket);
        return status.State switch
        {
            TicketState.Pending => TypedResults.Ok(new TicketAnswer(saleId, ticket, "pending", null)),
            TicketState.Won => TypedResults.Ok(new TicketAnswer(saleId, ticket, "won", status.OrderId)),
            TicketState.SoldOut => TypedResults.Ok(new TicketAnswer(saleId, ticket, "sold_out", null)),
            // Unknown: no such sale, or no such ticket in it.
            _ => (await grain.GetStatusAsync()).Exists
                ? Problems.Of(ErrorCodes.TicketNotFound, $"flash sale {saleId}: no ticket {ticket}")
                : Problems.Of(ErrorCodes.UnknownSale, $"no flash sale {saleId}"),
        };
    }

    private static async Task<Results<Ok<FlashSaleStatusAnswer>, ProblemHttpResult>> StatusAsync(string saleId, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(FlashSaleLimits.SaleIdProblem(saleId)) is { } invalid)
        {
            return invalid;
        }

        var status = await grains.GetGrain<IFlashSaleGrain>(saleId).GetStatusAsync();
        return status.Exists ? TypedResults.Ok(FlashSaleStatusAnswer.Of(status)) : Problems.Of(ErrorCodes.UnknownSale, $"no flash sale {saleId}");
    }

    private static ProblemHttpResult Refused(string saleId, FlashSaleCommandResult result) =>
        Problems.Of(ErrorCodes.For(result.Error ?? FlashSaleError.InvalidInput), $"flash sale {saleId}: {result.Message ?? "refused"}");
}
