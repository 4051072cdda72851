namespace OrderFlow.Contracts;

/// <summary>
/// One error of the one vocabulary the CLI and the HTTP API share: <see cref="Code"/> is what the CLI prints
/// (<c>error: … OutOfStock: …</c>) and what an HTTP problem carries as its <c>code</c> extension.
/// <see cref="ExitCode"/> is the CLI's exit code for it (null: the CLI never meets it); <see cref="HttpStatus"/> the
/// HTTP status of the problem (null: HTTP never meets it). Codes are stable: never rename one once shipped.
/// </summary>
public sealed record KnownError(string Code, int? ExitCode, int? HttpStatus, string Title);

/// <summary>
/// Every error a caller can meet, from the CLI or over HTTP, with its exit code and HTTP status
/// (README, "Error codes", prints this table). A refused command writes nothing, whichever way it came in.
/// </summary>
public static class ErrorCodes
{
    /// <summary>CLI exit code: a command refused, something not found, nothing to retry.</summary>
    public const int ExitRefused = 1;

    /// <summary>CLI exit code: a bad command line (the HTTP API's 400 <see cref="InvalidRequest"/>).</summary>
    public const int ExitInvalidRequest = 2;

    /// <summary>CLI exit code: no gateway answered.</summary>
    public const int ExitGatewayUnreachable = 3;

    public static readonly KnownError InvalidRequest = new("InvalidRequest", ExitInvalidRequest, 400,
        "The request is malformed: bad JSON, a missing or unknown field, an id outside the alphabet, an unknown option");

    public static readonly KnownError InvalidCommand = new(nameof(OrderErrorCode.InvalidCommand), ExitRefused, 400,
        "The command's fields are out of bounds (quantities, prices, lines, reason length)");

    public static readonly KnownError IllegalTransition = new(nameof(OrderErrorCode.IllegalTransition), ExitRefused, 409,
        "The command is not allowed in the order's current status");

    public static readonly KnownError OrderNotFound = new(nameof(OrderErrorCode.OrderNotFound), ExitRefused, 404,
        "The order has never been placed");

    public static readonly KnownError AmountMismatch = new(nameof(OrderErrorCode.AmountMismatch), ExitRefused, 422,
        "The paid amount differs from the order total");

    public static readonly KnownError CommandIdReused = new(nameof(OrderErrorCode.CommandIdReused), ExitRefused, 409,
        "The command id (Idempotency-Key) was already used on this order by another kind of command or with other content");

    public static readonly KnownError OutOfStock = new(nameof(OrderErrorCode.OutOfStock), ExitRefused, 409,
        "A line asks for more units than its SKU has available");

    public static readonly KnownError UnknownSku = new(nameof(OrderErrorCode.UnknownSku), ExitRefused, 422,
        "A line names a SKU without a stock record");

    public static readonly KnownError CouponUnavailable = new(nameof(OrderErrorCode.CouponUnavailable), ExitRefused, 409,
        "The coupon was never issued or has no use left");

    public static readonly KnownError PaymentIdReused = new(nameof(OrderErrorCode.PaymentIdReused), ExitRefused, 409,
        "The payment id already paid another order");

    public static readonly KnownError TryLater = new(nameof(OrderErrorCode.TryLater), ExitRefused, 503,
        "Too many placements in flight on one SKU or coupon; nothing was written, retry later");

    public static readonly KnownError PaymentTimedOut = new(nameof(OrderErrorCode.PaymentTimedOut), ExitRefused, 409,
        "The order was not paid in time and was cancelled");

    public static readonly KnownError StockNotFound = new("StockNotFound", ExitRefused, 404,
        "The SKU has no stock record (create it with stock set / PUT /stock/{sku})");

    public static readonly KnownError CouponNotFound = new("CouponNotFound", ExitRefused, 404,
        "The coupon was never issued (coupon issue / PUT /coupons/{couponId})");

    public static readonly KnownError UnknownSubscriber = new(nameof(DeadLetterActionOutcome.UnknownSubscriber), ExitInvalidRequest, 404,
        "No subscriber has that name");

    public static readonly KnownError NotParked = new(nameof(DeadLetterActionOutcome.NotParked), ExitRefused, 409,
        "The order is not parked at that subscriber: nothing to retry or skip");

    public static readonly KnownError WrongSequence = new(nameof(DeadLetterActionOutcome.WrongSequence), ExitRefused, 409,
        "The sequence to skip is not the parked one");

    public static readonly KnownError RetryFailed = new("RetryFailed", ExitRefused, 503,
        "Some parked orders could not be resumed (listed); run the retry again");

    public static readonly KnownError BackfillRefused = new("BackfillRefused", ExitRefused, 409,
        "A backfill with other options is running for that subscriber");

    public static readonly KnownError NoBackfill = new("NoBackfill", ExitRefused, 404,
        "No backfill has ever run for that subscriber");

    public static readonly KnownError UnknownSale = new(nameof(FlashSaleError.UnknownSale), ExitRefused, 404,
        "No flash sale with that id was created");

    public static readonly KnownError SaleExists = new(nameof(FlashSaleError.SaleExists), ExitRefused, 409,
        "The flash sale exists with other settings (the same settings again is a harmless repeat)");

    public static readonly KnownError InsufficientStock = new(nameof(FlashSaleError.InsufficientStock), ExitRefused, 409,
        "The SKU has fewer units available than the flash sale's stock");

    public static readonly KnownError SoldOut = new(nameof(AdmissionOutcome.SoldOut), ExitRefused, 409,
        "The flash sale has no unit left (final: do not retry)");

    public static readonly KnownError NotStarted = new(nameof(AdmissionOutcome.NotStarted), ExitRefused, 409,
        "The flash sale has not started yet");

    public static readonly KnownError LimitReached = new(nameof(AdmissionOutcome.LimitReached), ExitRefused, 409,
        "The user already holds the flash sale's per-user limit of units");

    public static readonly KnownError Busy = new(nameof(AdmissionOutcome.Busy), ExitRefused, 503,
        "The flash sale's backlog is at its bound: nothing was queued; retry after the hint (Retry-After) with the same request id");

    public static readonly KnownError TicketNotFound = new("TicketNotFound", ExitRefused, 404,
        "The flash sale has no such ticket");

    public static readonly KnownError ClusterUnavailable = new("ClusterUnavailable", ExitRefused, 503,
        "The cluster did not answer in time (a silo failing over, storage down); retry with the same command id");

    public static readonly KnownError GatewayUnreachable = new("GatewayUnreachable", ExitGatewayUnreachable, null,
        "No gateway answered (CLI only: the HTTP API runs inside the silo)");

    public static readonly KnownError Unauthorized = new("Unauthorized", null, 401,
        "Http:ApiKey is set and the request's X-Api-Key header is missing or wrong");

    public static readonly KnownError NotFound = new("NotFound", null, 404, "No endpoint at that path");

    public static readonly KnownError MethodNotAllowed = new("MethodNotAllowed", null, 405, "The endpoint does not take that HTTP method");

    public static readonly KnownError PayloadTooLarge = new("PayloadTooLarge", null, 413, "The request body is larger than Http:MaxRequestBodyBytes");

    public static readonly KnownError UnsupportedMediaType = new("UnsupportedMediaType", null, 415, "The request body must be application/json");

    public static readonly KnownError RateLimited = new("RateLimited", null, 429, "More requests than Http:RateLimit:PermitsPerSecond; retry later");

    public static readonly KnownError InternalError = new("InternalError", null, 500, "An unexpected error; the silo log has its details");

    public static IReadOnlyList<KnownError> All { get; } =
    [
        InvalidRequest, InvalidCommand, IllegalTransition, OrderNotFound, AmountMismatch, CommandIdReused, OutOfStock, UnknownSku,
        CouponUnavailable, PaymentIdReused, TryLater, PaymentTimedOut, StockNotFound, CouponNotFound, UnknownSubscriber, NotParked,
        WrongSequence, RetryFailed, BackfillRefused, NoBackfill, UnknownSale, SaleExists, InsufficientStock, SoldOut, NotStarted,
        LimitReached, Busy, TicketNotFound, ClusterUnavailable, GatewayUnreachable, Unauthorized, NotFound,
        MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType, RateLimited, InternalError,
    ];

    /// <summary>The error of a refused order, stock or coupon command.</summary>
    public static KnownError For(OrderErrorCode code) => code switch
    {
        OrderErrorCode.InvalidCommand => InvalidCommand,
        OrderErrorCode.IllegalTransition => IllegalTransition,
        OrderErrorCode.OrderNotFound => OrderNotFound,
        OrderErrorCode.AmountMismatch => AmountMismatch,
        OrderErrorCode.CommandIdReused => CommandIdReused,
        OrderErrorCode.OutOfStock => OutOfStock,
        OrderErrorCode.UnknownSku => UnknownSku,
        OrderErrorCode.CouponUnavailable => CouponUnavailable,
        OrderErrorCode.PaymentIdReused => PaymentIdReused,
        OrderErrorCode.TryLater => TryLater,
        OrderErrorCode.PaymentTimedOut => PaymentTimedOut,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, "an order error code without an entry in ErrorCodes"),
    };

    /// <summary>The error of an operator's retry or skip that did not resume or skip anything; null when it did.</summary>
    public static KnownError? For(DeadLetterActionOutcome outcome) => outcome switch
    {
        DeadLetterActionOutcome.Resumed or DeadLetterActionOutcome.Skipped => null,
        DeadLetterActionOutcome.NotParked => NotParked,
        DeadLetterActionOutcome.WrongSequence => WrongSequence,
        DeadLetterActionOutcome.UnknownSubscriber => UnknownSubscriber,
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "a dead-letter outcome without an entry in ErrorCodes"),
    };

    /// <summary>The error of a backfill request that started, joined or reported no job; null when it did.</summary>
    public static KnownError? For(BackfillOutcome outcome) => outcome switch
    {
        BackfillOutcome.Started or BackfillOutcome.Attached or BackfillOutcome.Resumed or BackfillOutcome.Reported => null,
        BackfillOutcome.Refused => BackfillRefused,
        BackfillOutcome.UnknownSubscriber => UnknownSubscriber,
        BackfillOutcome.NoJob => NoBackfill,
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "a backfill outcome without an entry in ErrorCodes"),
    };

    /// <summary>The error of a refused flash-sale <c>create</c> or <c>rate</c>.</summary>
    public static KnownError For(FlashSaleError error) => error switch
    {
        FlashSaleError.InvalidInput => InvalidRequest,
        FlashSaleError.UnknownSale => UnknownSale,
        FlashSaleError.SaleExists => SaleExists,
        FlashSaleError.UnknownSku => UnknownSku,
        FlashSaleError.InsufficientStock => InsufficientStock,
        _ => throw new ArgumentOutOfRangeException(nameof(error), error, "a flash-sale error without an entry in ErrorCodes"),
    };

    /// <summary>The error of a buy request that was not queued; null for <c>queued</c> and <c>duplicate</c> (the request holds a ticket).</summary>
    public static KnownError? For(AdmissionOutcome outcome) => outcome switch
    {
        AdmissionOutcome.Queued or AdmissionOutcome.Duplicate => null,
        AdmissionOutcome.SoldOut => SoldOut,
        AdmissionOutcome.NotStarted => NotStarted,
        AdmissionOutcome.LimitReached => LimitReached,
        AdmissionOutcome.Busy => Busy,
        AdmissionOutcome.UnknownSale => UnknownSale,
        AdmissionOutcome.InvalidInput => InvalidRequest,
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "an admission outcome without an entry in ErrorCodes"),
    };
}
