using Microsoft.AspNetCore.Http.HttpResults;
using OrderFlow.Client;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>What <c>GET /deadletters</c> answers: parked orders per subscriber, and the parked orders (of one subscriber when asked).</summary>
public sealed record DeadLetterList(IReadOnlyDictionary<string, int> Counts, IReadOnlyList<DeadLetter> Letters);

/// <summary>Body of <c>POST /deadletters/{subscriber}/{orderId}/skip</c>: the parked event's sequence (the list shows it).</summary>
public sealed record SkipRequest(long Sequence);

/// <summary>Body of <c>POST /deadletters/{subscriber}/retry-all</c> (optional): only orders whose first failure is at or after <c>Since</c>.</summary>
public sealed record RetryAllRequest(DateTimeOffset? Since = null);

/// <summary>What <c>GET /subscribers</c> answers: the subscribers, and per subscriber the orders with undelivered work (the CLI's subscribers status).</summary>
public sealed record SubscribersStatus(IReadOnlyList<string> Subscribers, IReadOnlyList<SubscriberLag> Lag);

/// <summary>Body of <c>POST /subscribers/{name}/backfill</c> (optional).</summary>
public sealed record BackfillRequest(DateTimeOffset? Since = null, bool IncludeFinished = false);

/// <summary>Body of <c>POST /audit</c>: either <c>OrderIds</c> (at most 1,000) or <c>All</c>; <c>Verbose</c> also returns the notes.</summary>
public sealed record AuditRequest(IReadOnlyList<string>? OrderIds = null, bool All = false, bool Verbose = false);

/// <summary>What an audit found over every order it checked: every discrepancy, and the notes when asked (<c>Verbose</c>).</summary>
public sealed record AuditResult(long Checked, long DiscrepancyCount, long NoteCount, IReadOnlyList<AuditFinding> Discrepancies, IReadOnlyList<AuditFinding>? Notes);

/// <summary><c>/deadletters</c>, <c>/subscribers</c> and <c>/audit</c>: the CLI's operator commands, through <see cref="IOperationsGrain"/> and <see cref="IAuditGrain"/>.</summary>
public static class OperatorEndpoints
{
    public static IEndpointRouteBuilder MapOperators(this IEndpointRouteBuilder app)
    {
        // Every endpoint here checks its path ids and body first: a bad one is a 400 InvalidRequest.
        var letters = app.MapGroup("/deadletters").WithTags("Dead letters").ProducesProblem(StatusCodes.Status400BadRequest);
        letters.MapGet("", ListAsync)
            .WithName("ListDeadLetters").WithSummary("Parked orders, with a count per subscriber (?subscriber=points for one subscriber's)")
            .ProducesProblem(StatusCodes.Status404NotFound);
        letters.MapPost("/{subscriber}/{orderId}/retry", RetryAsync)
            .WithName("RetryDeadLetter").WithSummary("Resumes a parked order from its parked event")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        letters.MapPost("/{subscriber}/{orderId}/skip", SkipAsync)
            .WithName("SkipDeadLetter").WithSummary("Skips a parked order's parked event (the sequence must be the parked one) and goes on with the next")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        letters.MapPost("/{subscriber}/retry-all", RetryAllAsync)
            .WithName("RetryAllDeadLetters").WithSummary("Resumes every parked order of the subscriber (first failure at or after since, when given)")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        var subscribers = app.MapGroup("/subscribers").WithTags("Subscribers").ProducesProblem(StatusCodes.Status400BadRequest);
        subscribers.MapGet("", StatusAsync)
            .WithName("GetSubscribers").WithSummary("The subscribers, and per subscriber the orders with undelivered work, the oldest one's start, and the orders parked for an operator");
        subscribers.MapPost("/{subscriber}/backfill", StartBackfillAsync)
            .WithName("StartBackfill").WithSummary("Starts (or joins) the subscriber's backfill over existing orders; the job runs in the cluster")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        subscribers.MapGet("/{subscriber}/backfill", GetBackfillAsync)
            .WithName("GetBackfill").WithSummary("The progress of the subscriber's backfill (running or last)")
            .ProducesProblem(StatusCodes.Status404NotFound);

        app.MapPost("/audit", AuditAsync).WithTags("Audit")
            .WithName("Audit").WithSummary("Reconciles orders with every effect from stored state only (repairs nothing): the named orders, or all")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    private static IOperationsGrain Operations(IGrainFactory grains) => grains.GetGrain<IOperationsGrain>(0);

    private static async Task<Results<Ok<DeadLetterList>, ProblemHttpResult>> ListAsync(string? subscriber, IGrainFactory grains)
    {
        if (subscriber is not null && await UnknownAsync(grains, subscriber) is { } problem)
        {
            return problem;
        }

        // The list first: it drops stale index entries, so the counts read afterwards agree with its rows.
        var list = await Operations(grains).ListDeadLettersAsync(subscriber);
        var counts = await Operations(grains).CountDeadLettersAsync();
        return TypedResults.Ok(new DeadLetterList(counts, list));
    }

    private static async Task<Results<Ok<DeadLetterActionResult>, ProblemHttpResult>> RetryAsync(string subscriber, string orderId, IGrainFactory grains) =>
        Problems.FirstInvalid(Ids.Problem(subscriber, "subscriber"), Ids.Problem(orderId, "order id")) is { } invalid
            ? invalid
            : Answer(await Operations(grains).RetryAsync(subscriber, orderId));

    private static async Task<Results<Ok<DeadLetterActionResult>, ProblemHttpResult>> SkipAsync(string subscriber, string orderId, SkipRequest body, IGrainFactory grains) =>
        Problems.FirstInvalid(Ids.Problem(subscriber, "subscriber"), Ids.Problem(orderId, "order id"),
                body.Sequence < 1 ? $"sequence must be a positive whole number, was {body.Sequence}" : null) is { } invalid
            ? invalid
            : Answer(await Operations(grains).SkipAsync(subscriber, orderId, body.Sequence));

    private static async Task<Results<Ok<BulkRetryResult>, ProblemHttpResult>> RetryAllAsync(string subscriber, RetryAllRequest? body, IGrainFactory grains)
    {
        if (await UnknownAsync(grains, subscriber) is { } problem)
        {
            return problem;
        }

        var result = await Operations(grains).RetryAllAsync(subscriber, body?.Since);
        return result.Failed == 0
            ? TypedResults.Ok(result)
            : Problems.Of(ErrorCodes.RetryFailed, $"{subscriber}: resumed {result.Resumed}, failed {result.Failed}, no longer parked {result.NotParked}",
                new Dictionary<string, object?> { ["result"] = result });
    }

    private static async Task<Ok<SubscribersStatus>> StatusAsync(IGrainFactory grains) =>
        TypedResults.Ok(new SubscribersStatus(await Operations(grains).GetSubscribersAsync(), await Operations(grains).GetLagAsync()));

    private static async Task<Results<Accepted<BackfillProgress>, ProblemHttpResult>> StartBackfillAsync(string subscriber, BackfillRequest? body, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(subscriber, "subscriber")) is { } invalid)
        {
            return invalid;
        }

        var reply = await Operations(grains).StartBackfillAsync(subscriber, body?.Since, body?.IncludeFinished ?? false);
        return ErrorCodes.For(reply.Outcome) is { } error
            ? Problems.Of(error, reply.Message)
            : TypedResults.Accepted($"/subscribers/{reply.Progress!.Subscriber}/backfill", reply.Progress);
    }

    private static async Task<Results<Ok<BackfillProgress>, ProblemHttpResult>> GetBackfillAsync(string subscriber, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(subscriber, "subscriber")) is { } invalid)
        {
            return invalid;
        }

        var reply = await Operations(grains).GetBackfillAsync(subscriber);
        return ErrorCodes.For(reply.Outcome) is { } error ? Problems.Of(error, reply.Message) : TypedResults.Ok(reply.Progress!);
    }

    private static async Task<Results<Ok<AuditResult>, ProblemHttpResult>> AuditAsync(AuditRequest body, IGrainFactory grains)
    {
        var orderIds = body.OrderIds ?? [];
        var problem = (orderIds.Count > 0, body.All) switch
        {
            (true, true) => "give either orderIds or all, not both",
            (false, false) => "give orderIds (at most 1000) or all: true",
            _ when orderIds.Count > AuditRuns.MaxOrders => $"orderIds takes at most {AuditRuns.MaxOrders} orders, was {orderIds.Count} (use all: true for every order)",
            _ => orderIds.Select(id => Ids.Problem(id, "order id")).FirstOrDefault(p => p is not null),
        };
        if (problem is not null)
        {
            return Problems.Invalid(problem);
        }

        var (discrepancies, notes) = (new List<AuditFinding>(), new List<AuditFinding>());
        void Collect(AuditReport report)
        {
            discrepancies.AddRange(report.Discrepancies);
            if (body.Verbose)
            {
                notes.AddRange(report.Notes);
            }
        }

        var total = body.All
            ? (await AuditRuns.RunAllAsync(grains, Collect)).Total
            : await AuditRuns.RunOrdersAsync(grains.GetGrain<IAuditGrain>(0), orderIds.Distinct(StringComparer.Ordinal).ToArray(), Collect);
        return TypedResults.Ok(new AuditResult(total.Checked, total.Discrepancies, total.Notes, discrepancies, body.Verbose ? notes : null));
    }

    private static Results<Ok<DeadLetterActionResult>, ProblemHttpResult> Answer(DeadLetterActionResult result) =>
        ErrorCodes.For(result.Outcome) is { } error ? Problems.Of(error, result.Message) : TypedResults.Ok(result);

    /// <summary>A 400 for a name outside the id alphabet, a 404 <see cref="ErrorCodes.UnknownSubscriber"/> for one no subscriber has; null when known.</summary>
    private static async Task<ProblemHttpResult?> UnknownAsync(IGrainFactory grains, string subscriber)
    {
        if (Problems.FirstInvalid(Ids.Problem(subscriber, "subscriber")) is { } invalid)
        {
            return invalid;
        }

        var known = await Operations(grains).GetSubscribersAsync();
        return known.Contains(subscriber, StringComparer.OrdinalIgnoreCase)
            ? null
            : Problems.Of(ErrorCodes.UnknownSubscriber, $"no subscriber named '{subscriber}'; known: {string.Join(", ", known)}");
    }
}
