using System.ComponentModel.DataAnnotations;
using System.Net;

namespace OrderFlow.Silo.Http;

/// <summary>The HTTP API co-hosted in the silo: section <c>Http</c> of appsettings.json, or <c>Http__*</c> environment variables.</summary>
public sealed class HttpApiOptions : IValidatableObject
{
    public const string SectionName = "Http";

    /// <summary>The header that carries the API key.</summary>
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>Shortest API key taken: a guessable key is no key.</summary>
    public const int MinApiKeyLength = 16;

    /// <summary>
    /// Where the API listens, one or more <c>http://IP:PORT</c> separated by <c>;</c>. Default <c>http://127.0.0.1:8080</c>:
    /// loopback only. Port 0 takes a free port (tests). Any other address needs <see cref="ApiKey"/>.
    /// </summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// When set, every request except <c>/health/*</c> and the live page's static files must carry it in the <c>X-Api-Key</c>
    /// header (401 otherwise).
    /// Required when <see cref="Urls"/> names a non-loopback address. Default: none.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>Largest request body, in bytes; a larger one is answered 413 before any grain is called. Default 64 KiB (an order of 100 lines is ~10 KiB).</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>ASP.NET Core's rate limiter over the whole API (health probes excepted); off by default.</summary>
    public HttpRateLimitOptions RateLimit { get; set; } = new();

    /// <summary>The URLs of <see cref="Urls"/>, parsed.</summary>
    public IReadOnlyList<Uri> ParsedUrls() =>
        Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(url => Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri : null)
            .OfType<Uri>()
            .ToArray();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var urls = Urls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        if (urls.Length == 0)
        {
            yield return new ValidationResult("Urls must name at least one http://IP:PORT", [nameof(Urls)]);
        }

        var exposed = new List<string>();
        foreach (var url in urls)
        {
            // Only plain addresses: Kestrel's "*" and "+" wildcards, and host names, would hide which interfaces listen.
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || uri.AbsolutePath != "/"
                || !(uri.IsLoopback || IPAddress.TryParse(uri.Host.Trim('[', ']'), out _)))
            {
                yield return new ValidationResult(
                    $"Urls: '{url}' must be http://IP:PORT (an IP address or localhost, no path; https is not served)", [nameof(Urls)]);
            }
            else if (!uri.IsLoopback)
            {
                exposed.Add(url);
            }
        }

        if (ApiKey is { Length: > 0 } key && (key.Length < MinApiKeyLength || key.Any(c => c is < '!' or > '~')))
        {
            yield return new ValidationResult(
                $"ApiKey must be at least {MinApiKeyLength} printable ASCII characters without spaces (it travels in the {ApiKeyHeader} header)", [nameof(ApiKey)]);
        }

        if (exposed.Count > 0 && string.IsNullOrEmpty(ApiKey))
        {
            yield return new ValidationResult(
                $"Urls: {string.Join(", ", exposed)} is not a loopback address: set Http:ApiKey (Http__ApiKey) before exposing the API beyond this machine",
                [nameof(ApiKey)]);
        }

        if (RateLimit.PermitsPerSecond is < 0 or > 1_000_000)
        {
            yield return new ValidationResult($"RateLimit:PermitsPerSecond must be between 0 (off) and 1000000, was {RateLimit.PermitsPerSecond}", [nameof(RateLimit)]);
        }
    }
}

/// <summary>Section <c>Http:RateLimit</c>.</summary>
public sealed class HttpRateLimitOptions
{
    /// <summary>
    /// Requests per second the whole API takes (a token bucket refilled every second, holding one second's worth, no
    /// queue); beyond it a request is answered 429 with <c>Retry-After</c>. 0 (default): no limit.
    /// </summary>
    public int PermitsPerSecond { get; set; }
}
