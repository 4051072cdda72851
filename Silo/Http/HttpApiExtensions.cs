using System.Globalization;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using OrderFlow.Contracts;
using OrderFlow.Grains.Telemetry;
using Scalar.AspNetCore;

namespace OrderFlow.Silo.Http;

/// <summary>
/// The HTTP API in the silo's own host: <see cref="AddOrderFlowHttp"/> registers its services, <see cref="UseOrderFlowHttp"/>
/// its middleware and endpoints. Endpoints call grains through the silo's <see cref="IGrainFactory"/> — no gateway hop.
/// </summary>
public static class HttpApiExtensions
{
    public static WebApplicationBuilder AddOrderFlowHttp(this WebApplicationBuilder builder, HttpApiOptions http)
    {
        var services = builder.Services;
        services.AddOptions<HttpApiOptions>().BindConfiguration(HttpApiOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.WebHost.UseUrls([.. http.ParsedUrls().Select(url => url.ToString())]);
        // Kestrel refuses a larger body (413) while it is read, before any JSON is bound or any grain called.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = http.MaxRequestBodyBytes);

        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
            // As strict as the CLI, which refuses unknown options: a misspelt field ("coupon" for "couponId") is a 400,
            // not a command sent without it.
            json.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            // A missing field is a 400, not its default: `PUT /stock/{sku} {}` had set the stock to 0. Fields with a
            // default (a cancel's reason, a placement's coupon) stay optional.
            json.SerializerOptions.RespectRequiredConstructorParameters = true;
            json.SerializerOptions.RespectNullableAnnotations = true;
            // A number is a JSON number ("5" is refused), and a field given twice is refused rather than the last one winning.
            json.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            // A number with more digits than a decimal keeps is refused, not rounded into a different amount.
            json.SerializerOptions.Converters.Add(new ExactDecimalConverter());
            json.SerializerOptions.AllowDuplicateProperties = false;
        });
        // Binding failures (bad JSON, a missing body, too large, not JSON) are thrown to ProblemExceptionHandler, which
        // answers them as problems with the framework's reason, instead of a bare 400.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddProblemDetails(o => o.CustomizeProblemDetails = Problems.AddCode);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "OrderFlow";
                document.Info.Description = "Orders, dead letters, subscribers, stock and coupons, flash sales, audit. Errors are RFC 9457 problems whose `code` " +
                                            "is one of: " + string.Join(", ", ErrorCodes.All.Where(e => e.HttpStatus is not null).Select(e => $"{e.Code} ({e.HttpStatus})"));
                return Task.CompletedTask;
            });
            // ExactDecimalConverter hides the number type from the schema generator: decimals are JSON numbers.
            o.AddSchemaTransformer((schema, context, _) =>
            {
                var type = context.JsonTypeInfo.Type;
                if (type == typeof(decimal) || type == typeof(decimal?))
                {
                    schema.Type = type == typeof(decimal) ? Microsoft.OpenApi.JsonSchemaType.Number : Microsoft.OpenApi.JsonSchemaType.Number | Microsoft.OpenApi.JsonSchemaType.Null;
                }

                return Task.CompletedTask;
            });
            // Any endpoint but the probes can answer 401 (Http:ApiKey set, the key missing) and 429 (Http:RateLimit on).
            o.AddOperationTransformer((operation, context, _) =>
            {
                if (context.Description.RelativePath?.StartsWith("health", StringComparison.Ordinal) != true)
                {
                    operation.Responses ??= [];
                    operation.Responses.TryAdd("401", new Microsoft.OpenApi.OpenApiResponse { Description = "Http:ApiKey is set and the request does not carry it (problem, code Unauthorized)" });
                    operation.Responses.TryAdd("429", new Microsoft.OpenApi.OpenApiResponse { Description = "More requests than Http:RateLimit:PermitsPerSecond (problem, code RateLimited, Retry-After)" });
                }

                return Task.CompletedTask;
            });
        });
        services.AddHealthChecks()
            .AddCheck<SiloJoinedHealthCheck>("silo", tags: ["ready"])
            .AddCheck<GrainStorageHealthCheck>("storage", tags: ["ready"]);
        if (http.RateLimit.PermitsPerSecond > 0)
        {
            services.AddRateLimiter(limiter => Limit(limiter, http.RateLimit.PermitsPerSecond, new ApiKeyCheck(http.ApiKey)));
        }

        return builder;
    }

    /// <summary>
    /// Middleware, then every group of endpoints. A new group (flash sales, the dashboard, <c>/metrics</c>, a page at <c>/</c>)
    /// is one more line at the end: the API key, rate limit and problem details already cover it.
    /// </summary>
    public static WebApplication UseOrderFlowHttp(this WebApplication app, HttpApiOptions http)
    {
        // HEAD is answered as GET without the body (RFC 9110 9.3.2), before routing: load balancers and uptime checks
        // send it, and minimal APIs' GET endpoints answered 405. The API key and the rate limit see it as the GET it is.
        app.Use(AnswerHeadAsGet);
        app.UseRouting();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        if (http.RateLimit.PermitsPerSecond > 0)
        {
            app.UseRateLimiter();
        }

        app.UseMiddleware<ApiKeyMiddleware>();

        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = HealthReportWriter.WriteAsync });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = HealthReportWriter.WriteAsync });
        app.MapOpenApi();
        app.MapScalarApiReference(o => o.WithTitle("OrderFlow API"));

        app.MapOrders();
        app.MapOperators();
        app.MapInventory();
        app.MapFlashSales();
        // Prometheus scrape endpoint (behind the API key like the rest; 404 with Telemetry:Enabled=false).
        app.MapOrderFlowMetrics();
        app.MapOrderFlowDashboard();
        app.MapLivePage();
        return app;
    }

    private static Task AnswerHeadAsGet(HttpContext context, RequestDelegate next)
    {
        // Not the dashboard: its log stream answers a GET for up to an hour, and a HEAD's headers would wait for its end.
        if (!HttpMethods.IsHead(context.Request.Method) || context.Request.Path.StartsWithSegments("/dashboard", StringComparison.OrdinalIgnoreCase))
        {
            return next(context);
        }

        context.Request.Method = HttpMethods.Get;
        // Whatever the GET would write is dropped; its status and headers are answered.
        context.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
        return next(context);
    }

    private static void Limit(RateLimiterOptions limiter, int permitsPerSecond, ApiKeyCheck key)
    {
        // One bucket for the whole API: the silo's capacity is what is protected, whoever calls. Probes are never limited,
        // or an orchestrator would restart a silo for being busy. Where a key is set, requests without it (refused 401, or
        // the live page's shell) have a bucket of their own: a flood of them must not use up the permits of callers
        // that have the key (red-team finding: an unauthenticated flood answered keyed callers 429).
        limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context => context.Request.Path.StartsWithSegments("/health")
            ? RateLimitPartition.GetNoLimiter("health")
            : RateLimitPartition.GetTokenBucketLimiter(key.Required && !key.Carried(context.Request) ? "without-key" : "api", _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = permitsPerSecond,
                TokensPerPeriod = permitsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        limiter.OnRejected = async (rejected, _) =>
        {
            var context = rejected.HttpContext;
            context.Response.Headers.RetryAfter = (rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1)
                .ToString(CultureInfo.InvariantCulture);
            await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails = new ProblemDetails
                {
                    Status = StatusCodes.Status429TooManyRequests,
                    Title = ErrorCodes.RateLimited.Title,
                    Detail = $"more than {permitsPerSecond} requests per second (Http:RateLimit:PermitsPerSecond); retry after the Retry-After seconds",
                    Extensions = { [Problems.CodeExtension] = ErrorCodes.RateLimited.Code },
                },
            });
        };
    }
}
