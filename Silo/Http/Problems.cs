using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using OrderFlow.Client;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>
/// RFC 9457 problem details with a stable <c>code</c> extension from <see cref="ErrorCodes"/> — the vocabulary the CLI
/// prints — so a caller branches on <c>code</c>, never on the wording of <c>detail</c>.
/// </summary>
public static class Problems
{
    public const string CodeExtension = "code";

    public static ProblemHttpResult Of(KnownError error, string detail, IDictionary<string, object?>? extensions = null)
    {
        var all = new Dictionary<string, object?>(extensions ?? new Dictionary<string, object?>()) { [CodeExtension] = error.Code };
        return TypedResults.Problem(detail: Ids.Printable(detail, 1000), statusCode: error.HttpStatus ?? 500, title: error.Title, extensions: all);
    }

    /// <summary>400 <see cref="ErrorCodes.InvalidRequest"/>.</summary>
    public static ProblemHttpResult Invalid(string detail) => Of(ErrorCodes.InvalidRequest, detail);

    /// <summary>The first problem among <paramref name="checks"/> (each null when fine) as a 400, or null when there is none.</summary>
    public static ProblemHttpResult? FirstInvalid(params string?[] checks) => checks.FirstOrDefault(c => c is not null) is { } problem ? Invalid(problem) : null;

    /// <summary>The code of a problem the framework writes itself (unknown route, wrong method, 401, 429), by status.</summary>
    public static KnownError ForStatus(int status) => status switch
    {
        400 => ErrorCodes.InvalidRequest,
        401 => ErrorCodes.Unauthorized,
        404 => ErrorCodes.NotFound,
        405 => ErrorCodes.MethodNotAllowed,
        413 => ErrorCodes.PayloadTooLarge,
        415 => ErrorCodes.UnsupportedMediaType,
        429 => ErrorCodes.RateLimited,
        503 => ErrorCodes.ClusterUnavailable,
        _ => ErrorCodes.InternalError,
    };

    /// <summary>Gives every problem the framework writes (status-code pages, the exception handler) a <c>code</c>, unless it has one.</summary>
    public static void AddCode(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if (!problem.Extensions.ContainsKey(CodeExtension))
        {
            var error = ForStatus(problem.Status ?? context.HttpContext.Response.StatusCode);
            problem.Extensions[CodeExtension] = error.Code;
            problem.Title ??= error.Title;
            problem.Detail ??= error.Title;
        }
    }
}

/// <summary>
/// Turns what an endpoint throws into a problem: a request the framework could not bind (bad JSON, a missing body, a
/// body over the limit, a wrong content type) is the caller's — nothing was called, so nothing was written; the cluster
/// not answering is <see cref="ErrorCodes.ClusterUnavailable"/> (retry with the same Idempotency-Key); anything else is
/// a 500 whose details stay in the silo log.
/// </summary>
internal sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (error, detail) = exception switch
        {
            BadHttpRequestException bad => (Problems.ForStatus(bad.StatusCode), OneLine(bad)),
            _ when TransientFailures.IsTransient(exception) || exception is OrleansException =>
                (ErrorCodes.ClusterUnavailable, $"the cluster did not answer: {exception.GetType().Name}: {exception.Message.Split('\n')[0]}"),
            // A grain refusing an argument it was handed (an id, a batch too large): the request's fault, nothing written.
            ArgumentException argument => (ErrorCodes.InvalidRequest, argument.Message),
            _ => (ErrorCodes.InternalError, "an unexpected error; the silo log has its details"),
        };
        if (error == ErrorCodes.InternalError || error == ErrorCodes.ClusterUnavailable)
        {
            LogRequestFailed(exception, httpContext.Request.Method, httpContext.Request.Path.Value ?? "", error.Code);
        }

        httpContext.Response.StatusCode = error.HttpStatus ?? 500;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = error.HttpStatus,
                Title = error.Title,
                Detail = Ids.Printable(detail, 1000),
                Extensions = { [Problems.CodeExtension] = error.Code },
            },
        });
    }

    /// <summary>The framework's message, with the JSON reader's reason (which names the position) when there is one.</summary>
    private static string OneLine(BadHttpRequestException bad) =>
        bad.InnerException is { Message: var inner } ? $"{bad.Message} {inner}" : bad.Message;

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "HTTP {Method} {Path} failed: {Code}")]
    private partial void LogRequestFailed(Exception exception, string method, string path, string code);
}
