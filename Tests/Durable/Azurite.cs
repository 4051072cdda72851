using System.Diagnostics;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// The Azurite that <c>./test.sh</c> starts for the durable tests. These tests run against the real emulator, never a
/// mock: without it they fail (not skip) and say how to get one.
/// </summary>
public static class Azurite
{
    public const string ConnectionVariable = "ORDERFLOW_AZURITE";
    public const string ScriptVariable = "ORDERFLOW_AZURITE_SCRIPT";

    public static string ConnectionString => Environment.GetEnvironmentVariable(ConnectionVariable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException(
            $"{ConnectionVariable} is not set: the durable tests need a running Azurite. Run ./test.sh, which installs Azurite " +
            "(npm), starts it on loopback for the tests and stops it afterwards.");

    /// <summary>Stops one Azurite service (blob, queue or table) through the script that started it.</summary>
    public static Task StopServiceAsync(string service) => RunScriptAsync("stop-service", service);

    /// <summary>Starts that service again, on the same port and data folder.</summary>
    public static Task StartServiceAsync(string service) => RunScriptAsync("start-service", service);

    private static async Task RunScriptAsync(string command, string service)
    {
        var script = Environment.GetEnvironmentVariable(ScriptVariable) is { Length: > 0 } path
            ? path
            : throw new InvalidOperationException($"{ScriptVariable} is not set: run ./test.sh, which points it at scripts/azurite.sh");
        using var process = Process.Start(new ProcessStartInfo("bash", [script, command, service])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"azurite.sh {command} {service} exited with {process.ExitCode}: {await output} {await error}");
        }
    }
}
