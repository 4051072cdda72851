using System.Globalization;

namespace OrderFlow.Contracts;

/// <summary>
/// Bounds of a flash sale (checked before any write, in the CLI and in the grains). Every piece of state that grows
/// with traffic is bounded by one of them: tickets per sale by <see cref="MaxStock"/> (a ticket holds a unit), the
/// backlog by the sale's buffer (at most <see cref="MaxBuffer"/>).
/// </summary>
public static class FlashSaleLimits
{
    /// <summary>Admission shards per sale: a buyer's requests go to shard <see cref="ShardOf"/> of his user id.</summary>
    public const int Shards = 8;

    /// <summary>Longest sale id: a winner's order id is <c>{sale}.{shard}.{seq}.{tag}</c> (<see cref="OrderIdOf"/>) and must stay within <see cref="Ids.MaxLength"/>.</summary>
    public const int MaxSaleIdLength = 96;

    /// <summary>Most units one sale may sell (so most tickets it ever holds).</summary>
    public const long MaxStock = 100_000;

    /// <summary>Highest drain rate: orders created per second across the cluster.</summary>
    public const int MaxRate = 10_000;

    /// <summary>Most units one user may hold in one sale.</summary>
    public const int MaxPerUserLimit = 100;

    /// <summary>Most buy requests one <see cref="IFlashSaleGrain.BuyManyAsync"/> call may carry.</summary>
    public const int MaxBuyBatch = 1_024;

    /// <summary>Largest backlog bound (queued requests not yet turned into an order or a final answer).</summary>
    public const int MaxBuffer = 100_000;

    public const int DefaultBuffer = 10_000;

    /// <summary>Latest start a sale may be given, from now.</summary>
    public static readonly TimeSpan MaxStartAhead = TimeSpan.FromDays(366);

    /// <summary>Highest unit price of the sale's orders (the order's own bound).</summary>
    public const decimal MaxPrice = 10_000_000m;

    public static string? SaleIdProblem(string? saleId) =>
        Ids.Problem(saleId, "sale id")
        ?? (saleId!.Length > MaxSaleIdLength ? $"sale id must be at most {MaxSaleIdLength} characters, was {saleId.Length}" : null);

    /// <summary>Why a buy batch of <paramref name="count"/> requests is refused whole, or null.</summary>
    public static string? BatchProblem(int count) =>
        count > MaxBuyBatch ? $"a batch holds at most {MaxBuyBatch} requests, was {count}" : null;

    /// <summary>Why one buy request is refused before any state is read (missing, or a bad user or request id), or null.</summary>
    public static string? RequestProblem(BuyRequest? request) =>
        // The user id becomes the winner's order's user, which a placement refuses as "." or ".." (Ids.NewIdProblem): refused
        // here, the buyer got "queued" and the ticket ended sold_out without its unit going back (review finding).
        request is null ? "a request is missing" : Ids.NewIdProblem(request.UserId, "user id") ?? Ids.Problem(request.RequestId, "request id");

    public static string? StockProblem(long stock) =>
        stock is < 1 or > MaxStock ? $"sale stock must be between 1 and {MaxStock}, was {stock}" : null;

    public static string? RateProblem(long rate) =>
        rate is < 1 or > MaxRate ? $"rate must be between 1 and {MaxRate} orders per second, was {rate}" : null;

    public static string? PerUserLimitProblem(long limit) =>
        limit is < 1 or > MaxPerUserLimit ? $"per-user limit must be between 1 and {MaxPerUserLimit}, was {limit}" : null;

    public static string? BufferProblem(long buffer) =>
        buffer is < 1 or > MaxBuffer ? $"buffer must be between 1 and {MaxBuffer}, was {buffer}" : null;

    public static string? PriceProblem(decimal price) =>
        price <= 0 || price > MaxPrice || decimal.Round(price, 2) != price
            ? $"price must be positive, at most {MaxPrice} and in whole cents, was {price.ToString(CultureInfo.InvariantCulture)}"
            : null;

    /// <summary>Every problem of <paramref name="spec"/> for sale <paramref name="saleId"/>, or null; <paramref name="now"/> bounds the start.</summary>
    public static string? SpecProblem(string saleId, FlashSaleSpec? spec, DateTimeOffset now) =>
        SaleIdProblem(saleId)
        ?? Ids.NewIdProblem(saleId, "sale id")
        ?? (spec is null ? "the sale's settings are missing" : null)
        ?? Ids.NewIdProblem(spec!.Sku, "SKU")
        ?? StockProblem(spec.Stock)
        ?? RateProblem(spec.Rate)
        ?? PerUserLimitProblem(spec.PerUserLimit)
        ?? BufferProblem(spec.Buffer)
        ?? PriceProblem(spec.Price)
        ?? (spec.StartsAt > now + MaxStartAhead ? $"the start must be at most {MaxStartAhead.TotalDays:0} days ahead, was {spec.StartsAt:O}" : null);

    /// <summary>
    /// The admission shard of <paramref name="userId"/>: FNV-1a of its characters, so every silo and client agrees, and
    /// all of one user's requests meet in one shard (the per-user limit and duplicates are decided there, locally).
    /// </summary>
    public static int ShardOf(string userId)
    {
        var hash = 2166136261u;
        foreach (var c in userId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % Shards);
    }

    /// <summary>The ticket id of the <paramref name="seq"/>-th ticket of <paramref name="shard"/> of a sale without an order key: <c>{shard}-{seq}</c>.</summary>
    public static string TicketId(int shard, long seq) => $"{shard}-{seq}";

    /// <summary>
    /// The ticket id the buyer is given: <c>{shard}-{seq}-{tag}</c>, the tag <see cref="OrderTagLength"/> hex characters
    /// of an HMAC under the sale's secret <paramref name="orderKey"/>, so only the buyer who was answered it can look the
    /// ticket up — tickets are numbered in order, and a ticket's answer names the winner's order. A sale created before
    /// order keys existed (null) has <c>{shard}-{seq}</c>.
    /// </summary>
    public static string TicketId(string saleId, int shard, long seq, string? orderKey) =>
        orderKey is null ? TicketId(shard, seq) : $"{shard}-{seq}-{Tag(orderKey, $"ticket.{saleId}.{shard}.{seq}")}";

    /// <summary>Whether <paramref name="tag"/> (null: none given) is the one <see cref="TicketId(string, int, long, string?)"/> gives.</summary>
    public static bool IsTicketTag(string saleId, int shard, long seq, string? orderKey, string? tag) =>
        orderKey is null
            ? tag is null
            : tag is not null && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.ASCII.GetBytes(tag), System.Text.Encoding.ASCII.GetBytes(Tag(orderKey, $"ticket.{saleId}.{shard}.{seq}")));

    /// <summary>Parses a ticket id; false for anything else (refused as bad input).</summary>
    public static bool TryParseTicket(string? ticket, out int shard, out long seq) => TryParseTicket(ticket, out shard, out seq, out _);

    /// <summary>Why <paramref name="ticket"/> does not have a ticket's form (<see cref="TryParseTicket(string?, out int, out long, out string?)"/>), or null.</summary>
    public static string? TicketProblem(string? ticket) =>
        TryParseTicket(ticket, out _, out _, out _)
            ? null
            : $"a ticket is SHARD-SEQ-TAG as the buy answered it (SHARD-SEQ for a sale created before tags; shard 0-{Shards - 1}), was '{Ids.Printable(ticket, 40)}'";

    /// <summary>Parses <c>{shard}-{seq}</c> or <c>{shard}-{seq}-{tag}</c>; false for anything else (refused as bad input).</summary>
    public static bool TryParseTicket(string? ticket, out int shard, out long seq, out string? tag)
    {
        shard = 0;
        seq = 0;
        tag = null;
        var dash = ticket?.IndexOf('-') ?? -1;
        if (dash <= 0 || ticket!.Length > 32)
        {
            return false;
        }

        var rest = ticket.AsSpan(dash + 1);
        var second = rest.IndexOf('-');
        if (second >= 0)
        {
            var given = rest[(second + 1)..];
            if (given.Length != OrderTagLength || given.IndexOfAnyExcept("0123456789abcdef") >= 0)
            {
                return false;
            }

            tag = given.ToString();
            rest = rest[..second];
        }

        return int.TryParse(ticket.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out shard) && shard < Shards
            && long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out seq) && seq < MaxStock;
    }

    /// <summary>Hex characters of a winner's order id that only the sale's order key gives (48 bits).</summary>
    public const int OrderTagLength = 12;

    /// <summary>
    /// The order a ticket becomes: <c>{sale}.{shard}.{seq}.{tag}</c>, the tag <see cref="OrderTagLength"/> hex
    /// characters of an HMAC-SHA256 of <c>{sale}.{shard}.{seq}</c> under the sale's secret <paramref name="orderKey"/>
    /// (drawn at the sale's creation, never shown). Fixed, so placing it again is a repeat; unguessable, so no caller can
    /// place that order first and make the winner's placement fail (order ids are the callers' to choose). A sale created
    /// before order keys existed has none (null): its orders are <c>{sale}.{shard}.{seq}</c>.
    /// At most 96 + 1 + 1 + 1 + 5 + 1 + 12 = 117 characters (<see cref="MaxSaleIdLength"/>, <see cref="Shards"/>, <see cref="MaxStock"/>).
    /// </summary>
    public static string OrderIdOf(string saleId, int shard, long seq, string? orderKey)
    {
        var plain = $"{saleId}.{shard}.{seq}";
        if (orderKey is null)
        {
            return plain;
        }

        return $"{plain}.{Tag(orderKey, plain)}";
    }

    private static string Tag(string orderKey, string text) =>
        Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(Convert.FromHexString(orderKey), System.Text.Encoding.UTF8.GetBytes(text)))[..OrderTagLength];

    /// <summary>A new sale's secret order key: 32 random bytes, in hex.</summary>
    public static string NewOrderKey() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
}

/// <summary>
/// A flash sale's settings. <see cref="Rate"/> is the most orders per second the drain creates across the cluster
/// (changeable while the sale runs); <see cref="Buffer"/> bounds the backlog; <see cref="Price"/> is the unit price of
/// the winners' orders.
/// </summary>
[GenerateSerializer, Immutable, Alias("flash.FlashSaleSpec.v1")]
public sealed record FlashSaleSpec(
    [property: Id(0)] string Sku,
    [property: Id(1)] long Stock,
    [property: Id(2)] int Rate,
    [property: Id(3)] DateTimeOffset StartsAt,
    [property: Id(4)] int PerUserLimit,
    [property: Id(5)] int Buffer,
    [property: Id(6)] decimal Price)
{
    /// <summary>
    /// <see cref="StartsAt"/> for "when it is created": the sale stamps its creation time, and the same settings sent again
    /// are a repeat while the sale has started (a time taken by the caller would differ on every retry).
    /// </summary>
    public static readonly DateTimeOffset StartsNow = default;
}

/// <summary>Why an operator's flash-sale command was refused (nothing written).</summary>
public enum FlashSaleError
{
    /// <summary>A value outside its bounds or alphabet (<see cref="FlashSaleLimits"/>, <see cref="Ids"/>).</summary>
    InvalidInput = 1,

    /// <summary>No sale with this id was created.</summary>
    UnknownSale = 2,

    /// <summary>The sale exists with other settings (creating it again with the same ones is a harmless repeat).</summary>
    SaleExists = 3,

    /// <summary>The SKU has no stock record (<c>stock set</c> creates it).</summary>
    UnknownSku = 4,

    /// <summary>The SKU has fewer units available than the sale's stock.</summary>
    InsufficientStock = 5,
}

/// <summary>The answer to <c>create</c> or <c>rate</c>: accepted with the sale's settings, or refused with a reason.</summary>
[GenerateSerializer, Immutable, Alias("flash.FlashSaleCommandResult.v1")]
public sealed record FlashSaleCommandResult(
    [property: Id(0)] bool Accepted,
    [property: Id(1)] FlashSaleError? Error,
    [property: Id(2)] string? Message,
    [property: Id(3)] FlashSaleSpec? Spec);

/// <summary>The answer to a buy request. Every request gets exactly one of these; none is an exception.</summary>
public enum AdmissionOutcome
{
    /// <summary>Durably buffered with a unit held for it: the ticket tells when its order is created.</summary>
    Queued = 1,

    /// <summary>The same user sent this request id before and it was queued: the earlier ticket.</summary>
    Duplicate = 2,

    /// <summary>No unit left (answered without back-end work once the sale is exhausted).</summary>
    SoldOut = 3,

    /// <summary>The sale has not started yet.</summary>
    NotStarted = 4,

    /// <summary>The user already holds the sale's per-user limit of units.</summary>
    LimitReached = 5,

    /// <summary>The backlog is at its bound (or storage did not take the request): retry after <see cref="AdmissionResult.RetryAfterMs"/>.</summary>
    Busy = 6,

    /// <summary>No sale with this id.</summary>
    UnknownSale = 7,

    /// <summary>A bad user id or request id (<see cref="Ids"/>): nothing written.</summary>
    InvalidInput = 8,
}

/// <summary>How an admission answer is named to people and to other languages: <c>sold_out</c>, <c>limit_reached</c> ….</summary>
public static class AdmissionOutcomeNames
{
    public static string Name(this AdmissionOutcome outcome) => outcome switch
    {
        AdmissionOutcome.Queued => "queued",
        AdmissionOutcome.Duplicate => "duplicate",
        AdmissionOutcome.SoldOut => "sold_out",
        AdmissionOutcome.NotStarted => "not_started",
        AdmissionOutcome.LimitReached => "limit_reached",
        AdmissionOutcome.Busy => "busy",
        AdmissionOutcome.UnknownSale => "unknown_sale",
        AdmissionOutcome.InvalidInput => "invalid_input",
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "an admission outcome without a name"),
    };
}

/// <summary>One buyer's request, as <see cref="IFlashSaleGrain.BuyManyAsync"/> takes many at once.</summary>
[GenerateSerializer, Immutable, Alias("flash.BuyRequest.v1")]
public sealed record BuyRequest(
    [property: Id(0)] string UserId,
    [property: Id(1)] string RequestId);

[GenerateSerializer, Immutable, Alias("flash.AdmissionResult.v1")]
public sealed record AdmissionResult(
    [property: Id(0)] AdmissionOutcome Outcome,
    [property: Id(1)] string? Ticket = null,
    [property: Id(2)] int? RetryAfterMs = null,
    [property: Id(3)] string? Message = null);

/// <summary>Where a ticket stands.</summary>
public enum TicketState
{
    /// <summary>Queued; its order is not created yet.</summary>
    Pending = 1,

    /// <summary>Its order was created (<see cref="TicketStatus.OrderId"/>), through the normal pipeline.</summary>
    Won = 2,

    /// <summary>No order: the SKU ran out before its turn.</summary>
    SoldOut = 3,

    /// <summary>No such ticket (or no such sale, or a bad ticket id).</summary>
    Unknown = 4,
}

[GenerateSerializer, Immutable, Alias("flash.TicketStatus.v1")]
public sealed record TicketStatus(
    [property: Id(0)] TicketState State,
    [property: Id(1)] string? OrderId = null,
    [property: Id(2)] string? UserId = null,
    [property: Id(3)] string? Message = null);

/// <summary>
/// A sale's live counters. <see cref="Accepted"/>, <see cref="Processed"/>, <see cref="Won"/> and <see cref="Backlog"/>
/// come from the shards' stored state; <see cref="Refused"/> counts refusals since the answering activations started
/// (in memory: a refusal writes nothing). <see cref="Windows"/> holds orders created per second (unix second → count)
/// over the drainer's recent past; <see cref="CurrentRate"/> is the last complete second's.
/// </summary>
[GenerateSerializer, Immutable, Alias("flash.FlashSaleStatus.v1")]
public sealed record FlashSaleStatus(
    [property: Id(0)] string SaleId,
    [property: Id(1)] bool Exists,
    [property: Id(2)] FlashSaleSpec? Spec,
    [property: Id(3)] long Accepted,
    [property: Id(4)] IReadOnlyDictionary<AdmissionOutcome, long> Refused,
    [property: Id(5)] long Processed,
    [property: Id(6)] long Won,
    [property: Id(7)] long Backlog,
    [property: Id(8)] long CurrentRate,
    [property: Id(9)] long UnitsLeft,
    [property: Id(10)] bool SoldOut,
    [property: Id(11)] IReadOnlyDictionary<long, long> Windows);

/// <summary>
/// A flash sale (key = sale id), for buyers and operators; the only flash-sale interface a client reaches. Answered by
/// a stateless worker on the silo the client is connected to, which refuses locally (not started, sold out, bad
/// input) from a cache of the sale refreshed every half second, and passes the rest to the buyer's admission shard.
/// </summary>
[Alias("flash.IFlashSaleGrain")]
[ClientCallable]
public interface IFlashSaleGrain : IGrainWithStringKey
{
    /// <summary>Creates the sale; the same settings again is a repeat, others are refused <see cref="FlashSaleError.SaleExists"/>.</summary>
    [Alias("Create")] Task<FlashSaleCommandResult> CreateAsync(FlashSaleSpec spec);

    /// <summary>Changes the drain rate (orders per second), effective within one drain tick.</summary>
    [Alias("SetRate")] Task<FlashSaleCommandResult> SetRateAsync(int rate);

    /// <summary>Admission: answered at once, durably buffered before <see cref="AdmissionOutcome.Queued"/>.</summary>
    [Alias("Buy")] Task<AdmissionResult> BuyAsync(string userId, string requestId);

    /// <summary>
    /// Many buyers' requests in one call (at most <see cref="FlashSaleLimits.MaxBuyBatch"/>): answer i is request i's,
    /// each exactly what <see cref="BuyAsync"/> would have answered it (a request that repeats an earlier one of the same
    /// call is its duplicate). A batch over the bound is refused whole, each request <see cref="AdmissionOutcome.InvalidInput"/>,
    /// nothing written. When a shard a request needs does not answer, the call fails as a single buy would, and every
    /// request of it may be sent again with the same ids. <c>FlashSaleBuyer</c> (the client library) fills these calls from
    /// concurrent single buys.
    /// </summary>
    [Alias("BuyMany")] Task<IReadOnlyList<AdmissionResult>> BuyManyAsync(IReadOnlyList<BuyRequest> requests);

    [Alias("Ticket")] Task<TicketStatus> GetTicketAsync(string ticket);

    [Alias("Status")] Task<FlashSaleStatus> GetStatusAsync();
}
