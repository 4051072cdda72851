using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// A real silo process (the built <c>OrderFlow.Silo.dll</c>, as <c>./run.sh</c> starts it) on the Azure profile against
/// the tests' Azurite, so a test can kill it the way an operating system does: <c>kill -9</c>, no shutdown code runs.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(Process process, int siloPort, int gatewayPort)
    {
        _process = process;
        SiloPort = siloPort;
        GatewayPort = gatewayPort;
    }

    public int SiloPort { get; }

    public int GatewayPort { get; }

    public IPEndPoint Gateway => new(IPAddress.Loopback, GatewayPort);

    public bool HasExited => _process.HasExited;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<SiloProcess> StartAsync(string clusterId, IReadOnlyDictionary<string, string>? settings = null)
    {
        var (siloPort, gatewayPort) = (FreePort(), FreePort());
        var info = new ProcessStartInfo("dotnet", [SiloDll()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["Silo__Profile"] = "Azure";
        info.Environment["Silo__AzureStorage"] = Azurite.ConnectionString;
        info.Environment["Silo__ClusterId"] = clusterId;
        info.Environment["Silo__ServiceId"] = clusterId;
        info.Environment["Silo__SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["Silo__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // The co-hosted HTTP API on a free port of its own: silos started side by side must not meet on 8080.
        info.Environment["Http__Urls"] = "http://127.0.0.1:0";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var silo = new SiloProcess(Process.Start(info)!, siloPort, gatewayPort);
        silo._process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        silo._process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        silo._process.BeginOutputReadLine();
        silo._process.BeginErrorReadLine();
        var exited = silo._process.WaitForExitAsync();
        Task first;
        try
        {
            first = await Task.WhenAny(silo._started.Task, exited).WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException)
        {
            first = exited;
        }

        if (first != silo._started.Task)
        {
            await silo.DisposeAsync();
            throw new InvalidOperationException($"silo on port {siloPort} did not start within 90 s (exited: {silo._process.HasExited}):\n{silo.Log}");
        }

        return silo;
    }

    /// <summary>SIGKILL: the process dies at once, with whatever it held in memory.</summary>
    public void KillHard() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }

        if (line.Contains("Application started", StringComparison.Ordinal))
        {
            _started.TrySetResult();
        }
    }

    /// <summary>The silo built next to this test assembly: …/Tests/bin/{configuration}/{framework}/ → …/Silo/bin/{same}.</summary>
    internal static string SiloDll()
    {
        var tests = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration, root) = (tests.Name, tests.Parent!.Name, tests.Parent.Parent!.Parent!.Parent!.FullName);
        var dll = Path.Combine(root, "Silo", "bin", configuration, framework, "OrderFlow.Silo.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"build the solution first: {dll} is missing", dll);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
