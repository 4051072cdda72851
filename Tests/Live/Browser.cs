using Microsoft.Playwright;

namespace OrderFlow.Tests.Live;

/// <summary>
/// Headless Chromium for the browser tests: Debian's <c>chromium</c> package (<c>./test.sh</c> installs it with apt-get when
/// absent), driven by Playwright's driver, which ships inside its NuGet package. Playwright's own browser download is
/// never used. <c>ORDERFLOW_CHROMIUM</c> names another binary. No browser is a failure that says so, never a skip.
/// </summary>
public sealed class Browser : IAsyncDisposable
{
    private static readonly string[] Candidates = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private Browser(IPlaywright playwright, IBrowser browser) => (_playwright, _browser) = (playwright, browser);

    /// <summary><c>artifacts/</c> at the repository root (git-ignored), created when missing.</summary>
    public static string ArtifactsDirectory
    {
        get
        {
            var root = new DirectoryInfo(AppContext.BaseDirectory);
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "Orleans.sln")))
            {
                root = root.Parent;
            }

            var path = Path.Combine(root?.FullName ?? AppContext.BaseDirectory, "artifacts");
            Directory.CreateDirectory(path);
            return path;
        }
    }

    public static async Task<Browser> LaunchAsync()
    {
        var configured = Environment.GetEnvironmentVariable("ORDERFLOW_CHROMIUM");
        var executable = string.IsNullOrEmpty(configured) ? Candidates.FirstOrDefault(File.Exists) : configured;
        if (executable is null || !File.Exists(executable))
        {
            Assert.Fail($"Chromium is not installed (looked for {(string.IsNullOrEmpty(configured) ? string.Join(", ", Candidates) : configured)}): " +
                        "the live page's browser test needs it. ./test.sh installs it with 'apt-get install -y chromium' when absent; " +
                        "if that failed, install it by hand or set ORDERFLOW_CHROMIUM to a Chromium binary.");
        }

        var playwright = await Playwright.CreateAsync();
        try
        {
            // --no-sandbox: these machines run the tests as root, where Chromium's sandbox refuses to start.
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = executable,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                Timeout = 60_000,
            });
            return new Browser(playwright, browser);
        }
        catch (PlaywrightException ex)
        {
            playwright.Dispose();
            Assert.Fail($"Chromium at {executable} could not be started by Playwright: {ex.Message}");
            throw;
        }
    }

    public async Task<IPage> NewPageAsync()
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        return await context.NewPageAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.CloseAsync();
        _playwright.Dispose();
    }
}
