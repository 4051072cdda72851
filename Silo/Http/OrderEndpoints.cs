using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>Body of <c>POST /orders/{orderId}/place</c>: the CLI's <c>order place</c> options.</summary>
public sealed record PlaceOrderRequest(string UserId, IReadOnlyList<OrderLine> Items, string? CouponId = null, string? ActivityId = null);

/// <summary>Body of <c>POST /orders/{orderId}/pay</c>: the amount must equal the order total.</summary>
public sealed record PayOrderRequest(string PaymentId, decimal Amount);

/// <summary>Body of <c>POST /orders/{orderId}/cancel</c> (optional).</summary>
public sealed record CancelOrderRequest(string? Reason = null);

/// <summary>An accepted command: the event it produced (or, for a repeated Idempotency-Key, produced the first time).</summary>
public sealed record CommandAccepted(string OrderId, string CommandId, long Sequence, OrderStatus Status, bool Repeated);

/// <summary>
/// <c>/orders</c>: the five commands (each one an <see cref="IOrderGrain"/> call with the <c>Idempotency-Key</c> header as
/// its command id), the order, and its progress at every subscriber (the CLI's <c>order show</c>).
/// </summary>
public static class OrderEndpoints
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public static RouteGroupBuilder MapOrders(this IEndpointRouteBuilder app)
    {
        var orders = app.MapGroup("/orders").WithTags("Orders");

        orders.MapPost("/{orderId}/place", (string orderId, PlaceOrderRequest body, [FromHeader(Name = IdempotencyKeyHeader)] string? key, IGrainFactory grains) =>
                SendAsync(grains, orderId, key, commandId => new PlaceOrder(commandId, body.UserId, body.Items ?? [], body.CouponId, body.ActivityId)))
            .Command("PlaceOrder", "Places an order: reserves its stock and coupon, all or nothing",
                ErrorCodes.OutOfStock, ErrorCodes.UnknownSku, ErrorCodes.CouponUnavailable, ErrorCodes.TryLater, ErrorCodes.IllegalTransition);

        orders.MapPost("/{orderId}/pay", (string orderId, PayOrderRequest body, [FromHeader(Name = IdempotencyKeyHeader)] string? key, IGrainFactory grains) =>
                SendAsync(grains, orderId, key, commandId => new PayOrder(commandId, body.PaymentId, body.Amount)))
            .Command("PayOrder", "Pays a placed order; the amount must equal its total",
                ErrorCodes.OrderNotFound, ErrorCodes.AmountMismatch, ErrorCodes.PaymentIdReused, ErrorCodes.PaymentTimedOut, ErrorCodes.IllegalTransition);

        orders.MapPost("/{orderId}/ship", (string orderId, [FromHeader(Name = IdempotencyKeyHeader)] string? key, IGrainFactory grains) =>
                SendAsync(grains, orderId, key, commandId => new ShipOrder(commandId)))
            .Command("ShipOrder", "Ships a paid order", ErrorCodes.OrderNotFound, ErrorCodes.IllegalTransition);

        orders.MapPost("/{orderId}/receive", (string orderId, [FromHeader(Name = IdempotencyKeyHeader)] string? key, IGrainFactory grains) =>
                SendAsync(grains, orderId, key, commandId => new ConfirmReceipt(commandId)))
            .Command("ReceiveOrder", "Confirms that a shipped order was received", ErrorCodes.OrderNotFound, ErrorCodes.IllegalTransition);

        // The body is optional: a cancel without a reason is a bare POST.
        orders.MapPost("/{orderId}/cancel", (string orderId, CancelOrderRequest? body,
                    [FromHeader(Name = IdempotencyKeyHeader)] string? key, IGrainFactory grains) =>
                SendAsync(grains, orderId, key, commandId => new CancelOrder(commandId, body?.Reason)))
            .Command("CancelOrder", "Cancels an order before it ships; a paid order is compensated once",
                ErrorCodes.OrderNotFound, ErrorCodes.IllegalTransition);

        orders.MapGet("/{orderId}", GetAsync)
            .WithName("GetOrder").WithSummary("The order as its grain holds it")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        orders.MapGet("/{orderId}/progress", ProgressAsync)
            .WithName("GetOrderProgress").WithSummary("The order, then per subscriber: applied, buffered, attempts, next attempt, parked (the CLI's order show)")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return orders;
    }

    private static RouteHandlerBuilder Command(this RouteHandlerBuilder endpoint, string name, string summary, params KnownError[] refusals)
    {
        endpoint.WithName(name).WithSummary(summary)
            .WithDescription($"The {IdempotencyKeyHeader} header is the command id: the same key with the same body returns the first result " +
                             $"(repeated = true, no new event); with another body it is refused {ErrorCodes.CommandIdReused.Code}. Without it, a new id is made. " +
                             $"Refusals: {string.Join(", ", refusals.Append(ErrorCodes.InvalidCommand).Append(ErrorCodes.CommandIdReused).Select(r => r.Code).Distinct())}.")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        foreach (var status in refusals.Select(r => r.HttpStatus!.Value).Append(409).Distinct())
        {
            endpoint.ProducesProblem(status);
        }

        return endpoint;
    }

    private static async Task<Results<Ok<CommandAccepted>, ProblemHttpResult>> SendAsync(IGrainFactory grains, string orderId, string? key, Func<string, OrderCommand> command)
    {
        // The route and the header first; the command's own fields are the order grain's to check (OrderCommandValidator),
        // which refuses them InvalidCommand before any write — one validator for the CLI, the API and any client.
        if (Problems.FirstInvalid(Ids.Problem(orderId, "order id"), key is null ? null : Ids.Problem(key, IdempotencyKeyHeader)) is { } invalid)
        {
            return invalid;
        }

        var toSend = command(key ?? $"http-{Guid.NewGuid():N}");
        var order = grains.GetGrain<IOrderGrain>(orderId);
        var result = await (toSend switch
        {
            PlaceOrder place => order.PlaceAsync(place),
            PayOrder pay => order.PayAsync(pay),
            ShipOrder ship => order.ShipAsync(ship),
            ConfirmReceipt receive => order.ConfirmReceiptAsync(receive),
            CancelOrder cancel => order.CancelAsync(cancel),
            _ => throw new InvalidOperationException($"no call for {toSend.GetType().Name}"),
        });
        return result.Accepted
            ? TypedResults.Ok(new CommandAccepted(orderId, toSend.CommandId, result.Sequence, result.Status, result.Repeated))
            : Problems.Of(ErrorCodes.For(result.Error!.Code), $"order {orderId}: {result.Error.Message}",
                new Dictionary<string, object?> { ["orderId"] = orderId, ["orderStatus"] = result.Status.ToString() });
    }

    private static async Task<Results<Ok<OrderSnapshot>, ProblemHttpResult>> GetAsync(string orderId, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(orderId, "order id")) is { } invalid)
        {
            return invalid;
        }

        var order = await grains.GetGrain<IOrderGrain>(orderId).GetAsync();
        return order.Status == OrderStatus.None ? NotFound(orderId) : TypedResults.Ok(order);
    }

    private static async Task<Results<Ok<OrderReport>, ProblemHttpResult>> ProgressAsync(string orderId, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(orderId, "order id")) is { } invalid)
        {
            return invalid;
        }

        var report = await grains.GetGrain<IOperationsGrain>(0).InspectAsync(orderId);
        return report.Order.Status == OrderStatus.None ? NotFound(orderId) : TypedResults.Ok(report);
    }

    private static ProblemHttpResult NotFound(string orderId) => Problems.Of(ErrorCodes.OrderNotFound, $"order {orderId} has never been placed");
}
