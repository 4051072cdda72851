using System.Diagnostics;
using System.Net;
using OrderFlow.Contracts;
using OrderFlow.Silo;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Durable;

namespace OrderFlow.Tests.Http;

/// <summary>The API without a key, behind the rate limiter.</summary>
[Collection(RateLimitedHttpCollection.Name)]
public sealed class RateLimitedHttpTests(RateLimitedHttpFixture fixture)
{
    [Fact]
    public async Task Without_a_key_the_api_is_open_and_beyond_the_rate_it_answers_429_while_health_is_never_limited()
    {
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < RateLimitedHttpFixture.PermitsPerSecond * 4; i++)
        {
            answers.Add(await fixture.Client.GetAsync("/subscribers"));
        }

        Assert.Contains(answers, a => a.StatusCode == HttpStatusCode.OK);
        var limited = answers.FirstOrDefault(a => a.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.True(limited is not null, $"{answers.Count} requests at once, none refused: {string.Join(",", answers.Select(a => (int)a.StatusCode))}");
        await limited.AssertProblemAsync(HttpStatusCode.TooManyRequests, "RateLimited");
        Assert.True(limited.Headers.RetryAfter is not null, "a 429 without Retry-After");
        Assert.All(answers, a => Assert.True(a.StatusCode is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"unexpected {(int)a.StatusCode}"));

        for (var i = 0; i < RateLimitedHttpFixture.PermitsPerSecond * 4; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await fixture.Client.GetAsync("/health/live")).StatusCode);
        }
    }
}

/// <summary>The API with a key, behind the rate limiter: callers without the key cannot use up the permits of those with it.</summary>
[Collection(KeyedRateLimitedHttpCollection.Name)]
public sealed class KeyedRateLimitedHttpTests(KeyedRateLimitedHttpFixture fixture)
{
    [Fact]
    public async Task A_flood_without_the_key_is_limited_on_its_own_and_callers_with_the_key_keep_their_permits()
    {
        var flood = new List<HttpStatusCode>();
        for (var i = 0; i < KeyedRateLimitedHttpFixture.PermitsPerSecond * 5; i++)
        {
            flood.Add((await fixture.Anonymous.GetAsync(i % 2 == 0 ? "/subscribers" : "/")).StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, flood);
        Assert.All(flood, code => Assert.True(code is HttpStatusCode.Unauthorized or HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"unexpected {(int)code}"));
        // Within the same second, the keyed caller still has its permits.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Client.GetAsync("/subscribers")).StatusCode);
    }
}

/// <summary>What the silo refuses to start with, and the one error vocabulary behind the CLI and the API.</summary>
public sealed class HttpHostTests
{
    [Theory]
    [InlineData("http://0.0.0.0:0", null, "not a loopback address: set Http:ApiKey")]
    [InlineData("http://127.0.0.1:0;http://192.168.1.5:0", null, "not a loopback address: set Http:ApiKey")]
    [InlineData("http://*:8080", null, "must be http://IP:PORT")]
    [InlineData("http://example.com:8080", null, "must be http://IP:PORT")]
    [InlineData("https://127.0.0.1:8443", null, "must be http://IP:PORT")]
    [InlineData("http://127.0.0.1:0", "short", "ApiKey must be at least 16")]
    [InlineData("", null, "Urls must name at least one")]
    public void The_silo_is_not_built_with_an_exposed_or_malformed_http_setting(string urls, string? key, string expected)
    {
        string[] args = ["--Silo:SiloPort=1", "--Silo:GatewayPort=2", $"--Http:Urls={urls}", .. key is null ? [] : new[] { $"--Http:ApiKey={key}" }];

        var (app, problems) = SiloApp.Build(args);

        Assert.Null(app);
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal) && p.StartsWith("section 'Http'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Disk")]
    [InlineData("")]
    public void The_silo_is_not_built_with_an_unknown_embedded_storage(string storage)
    {
        var (app, problems) = SiloApp.Build(["--Silo:SiloPort=1", "--Silo:GatewayPort=2", $"--Silo:EmbeddedStorage={storage}"]);

        Assert.Null(app);
        Assert.Contains(problems, p => p.Contains("EmbeddedStorage must be Local or Grains", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Security:RefuseClientCallsToInternalGrains", "no")]
    [InlineData("Benchmarks:Enabled", "1")]
    [InlineData("Benchmarks:CountGrainCalls", "")]
    public void The_silo_is_not_built_with_a_switch_that_is_not_true_or_false(string key, string value)
    {
        var (app, problems) = SiloApp.Build(["--Silo:SiloPort=1", "--Silo:GatewayPort=2", $"--{key}={value}"]);

        Assert.Null(app);
        var (section, name) = (key[..key.IndexOf(':')], key[(key.IndexOf(':') + 1)..]);
        Assert.Contains($"section '{section}': {name} must be true or false, was '{value}'", problems);
    }

    [Fact]
    public void A_non_loopback_address_with_a_key_is_accepted()
    {
        var options = new HttpApiOptions { Urls = "http://0.0.0.0:8080", ApiKey = "0123456789abcdef0123" };

        Assert.Empty(options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)));
    }

    [Fact]
    public async Task The_silo_process_exits_2_with_a_clear_message_when_bound_beyond_loopback_without_a_key()
    {
        var info = new ProcessStartInfo("dotnet", [SiloProcess.SiloDll()]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.Environment["Http__Urls"] = "http://0.0.0.0:0";
        info.Environment["Http__ApiKey"] = "";
        // Ports nothing else uses: should the check ever let it through, it must not meet a running silo.
        info.Environment["Silo__SiloPort"] = HttpSiloFixture.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["Silo__GatewayPort"] = HttpSiloFixture.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the silo did not refuse to start within 60 s: {await output}");
        }

        Assert.True(process.ExitCode == SiloApp.BadSettings, $"exit code {process.ExitCode}: {await error} {await output}");
        Assert.Contains("error: invalid setting in section 'Http': Urls: http://0.0.0.0:0 is not a loopback address: set Http:ApiKey", await error, StringComparison.Ordinal);
        // An empty key is no key, not a short one: the one problem is the exposure.
        Assert.DoesNotContain("ApiKey must be", await error, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_order_refusal_dead_letter_and_backfill_outcome_has_one_code_with_an_exit_code_and_an_http_status()
    {
        foreach (var code in Enum.GetValues<OrderErrorCode>())
        {
            var error = ErrorCodes.For(code);
            Assert.Equal(code.ToString(), error.Code);
            Assert.Equal(ErrorCodes.ExitRefused, error.ExitCode);
            Assert.True(error.HttpStatus is >= 400 and < 600, $"{code}: {error.HttpStatus}");
        }

        var outcomes = Enum.GetValues<DeadLetterActionOutcome>().Select(ErrorCodes.For).OfType<KnownError>()
            .Concat(Enum.GetValues<BackfillOutcome>().Select(ErrorCodes.For).OfType<KnownError>()).ToArray();
        Assert.Equal(["BackfillRefused", "NoBackfill", "NotParked", "UnknownSubscriber", "WrongSequence"], outcomes.Select(e => e.Code).Distinct().Order());
        Assert.All(outcomes.Concat(Enum.GetValues<OrderErrorCode>().Select(ErrorCodes.For)), e => Assert.Contains(e, ErrorCodes.All));
        Assert.Equal(ErrorCodes.All.Count, ErrorCodes.All.Select(e => e.Code).Distinct().Count());
        Assert.All(ErrorCodes.All, e => Assert.True(e.ExitCode is not null || e.HttpStatus is not null, $"{e.Code} is met nowhere"));
    }

    [Fact]
    public void The_readme_error_table_lists_every_code_with_its_http_status_and_exit_code()
    {
        // Tests/bin/{configuration}/{framework}/ → the repository root.
        var root = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Parent!.Parent!.Parent!.FullName;
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));

        var missing = ErrorCodes.All
            .Select(e => $"| `{e.Code}` | {e.HttpStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "–"} | {e.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "–"} |")
            .Where(row => !readme.Contains(row, StringComparison.Ordinal))
            .ToArray();
        Assert.True(missing.Length == 0, "README.md's error table lacks or misstates: " + string.Join(" ", missing));
    }

    [Fact]
    public void A_problem_the_framework_writes_gets_the_code_of_its_status()
    {
        Assert.Equal(
            ["InvalidRequest", "Unauthorized", "NotFound", "MethodNotAllowed", "PayloadTooLarge", "UnsupportedMediaType", "RateLimited", "ClusterUnavailable", "InternalError"],
            new[] { 400, 401, 404, 405, 413, 415, 429, 503, 500 }.Select(status => Problems.ForStatus(status).Code));
    }
}
