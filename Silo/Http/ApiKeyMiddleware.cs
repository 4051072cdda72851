using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>
/// With <see cref="HttpApiOptions.ApiKey"/> set, every request except <c>/health/*</c> must carry it in
/// <c>X-Api-Key</c>; otherwise 401 <see cref="ErrorCodes.Unauthorized"/>. A middleware in front of everything rather
/// than per-endpoint authorization: whatever is mapped later on this host (dashboard, metrics, a page at <c>/</c>) is
/// behind the key without opting in. One exception besides the probes: the live page's shell (<see cref="LivePage.IsShell"/>:
/// its HTML, script and stylesheet, which hold no data), so that a browser, which cannot add a header to a navigation, can
/// load the page that asks for the key and then sends it with every data request.
/// </summary>
internal sealed class ApiKeyMiddleware(RequestDelegate next, IOptions<HttpApiOptions> options, IProblemDetailsService problems)
{
    private readonly ApiKeyCheck _key = new(options.Value.ApiKey);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!_key.Required || context.Request.Path.StartsWithSegments("/health") || LivePage.IsShell(context.Request) || _key.Carried(context.Request))
        {
            await next(context);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = $"ApiKey header=\"{HttpApiOptions.ApiKeyHeader}\"";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = ErrorCodes.Unauthorized.Title,
                Detail = context.Request.Headers.ContainsKey(HttpApiOptions.ApiKeyHeader)
                    ? $"the {HttpApiOptions.ApiKeyHeader} header does not match Http:ApiKey"
                    : $"this API needs the {HttpApiOptions.ApiKeyHeader} header (Http:ApiKey is set)",
                Extensions = { [Problems.CodeExtension] = ErrorCodes.Unauthorized.Code },
            },
        });
    }

}

/// <summary>Whether a request carries <c>Http:ApiKey</c> (the middleware's check, and the rate limiter's partition).</summary>
internal sealed class ApiKeyCheck(string? key)
{
    private readonly byte[]? _hash = key is { Length: > 0 } ? SHA256.HashData(Encoding.UTF8.GetBytes(key)) : null;

    /// <summary>A key is set: requests without it are refused (but for health and the live page's shell).</summary>
    public bool Required => _hash is not null;

    private static readonly object CarriedItem = new();

    /// <summary>Whether the request carries the key; hashed once per request (the rate limiter asks first, then the middleware).</summary>
    public bool Carried(HttpRequest request)
    {
        var items = request.HttpContext.Items;
        if (items.TryGetValue(CarriedItem, out var known) && known is bool carried)
        {
            return carried;
        }

        carried = Matches(request.Headers[HttpApiOptions.ApiKeyHeader]);
        items[CarriedItem] = carried;
        return carried;
    }

    // Hashes compared in constant time: response times tell neither the key's bytes nor its length.
    private bool Matches(string? given) =>
        given is not null && _hash is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), _hash);
}
