using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using Orleans.Configuration;

namespace OrderFlow.Client;

/// <summary>The silo gateway could not be reached in time.</summary>
public sealed class GatewayUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Which cluster a command talks to: the global options <c>--gateway</c> and <c>--cluster-id</c>.</summary>
public sealed record ClusterTarget(IReadOnlyList<IPEndPoint> Gateways, string ClusterId);

/// <summary>
/// Connects to <paramref name="target"/>, runs <paramref name="work"/> with the client and disconnects; returns the
/// work's exit code. The CLI's is <see cref="ClusterConnection.RunAsync"/>; tests pass one that hands over a test
/// cluster's client, or one that fails the test if a bad command line got as far as connecting.
/// </summary>
public delegate Task<int> ClusterRunner(ClusterTarget target, Func<IClusterClient, Task<int>> work);

/// <summary>Connects an Orleans client to one or more silo gateways.</summary>
public static class ClusterConnection
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a call waits for its answer before it fails with a (retriable) timeout.</summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Orleans' default cluster id, which the embedded silo uses; an Azure-profile silo has its own (Silo:ClusterId).</summary>
    public const string DefaultClusterId = "default";

    public static IReadOnlyList<IPEndPoint> ParseGateways(IReadOnlyList<string> values)
    {
        var texts = values.Count > 0 ? values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) : ["127.0.0.1:30000"];
        return texts.Select(text =>
        {
            if (!IPEndPoint.TryParse(text, out var endpoint) || endpoint.Port == 0)
            {
                if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) && int.TryParse(text[10..], out var port) && port is > 0 and < 65536)
                {
                    return new IPEndPoint(IPAddress.Loopback, port);
                }

                throw new UsageException($"--gateway must be host:port with an IP address (e.g. 127.0.0.1:30000), was '{Ids.Printable(text)}'");
            }

            return endpoint;
        }).ToArray();
    }

    /// <summary>
    /// Connects through a static list of gateways. The client deliberately does not read the membership table: it
    /// needs no storage credentials and no Azure packages, only the gateways' addresses; when one gateway dies the
    /// client goes on through the others. A gateway only accepts clients of its own cluster id.
    /// </summary>
    public static async Task<IHost> ConnectAsync(IReadOnlyList<IPEndPoint> gateways, string clusterId = DefaultClusterId)
    {
        var builder = Host.CreateApplicationBuilder();
        // The CLI reports problems itself, in one line; the client's own logs would only repeat them at length.
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            client.UseStaticClustering(gateways.ToArray());
            client.Configure<ClusterOptions>(o => o.ClusterId = clusterId);
            // A call in flight to a silo that dies gets no answer; it ends at this timeout and the resilient caller
            // sends it again. Orleans' default (30 s) would stall a caller that long per failover.
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = ResponseTimeout);
        });
        var host = builder.Build();
        using var timeout = new CancellationTokenSource(ConnectTimeout);
        try
        {
            await host.StartAsync(timeout.Token);
            return host;
        }
        catch (Exception ex)
        {
            host.Dispose();
            throw new GatewayUnreachableException(
                $"cannot reach the silo gateway at {string.Join(", ", gateways)} (cluster id '{clusterId}') within {ConnectTimeout.TotalSeconds:0} s (is the silo running? start it with ./run.sh)", ex);
        }
    }

    /// <summary>The CLI's <see cref="ClusterRunner"/>: a client of its own for the one command, stopped after it.</summary>
    public static async Task<int> RunAsync(ClusterTarget target, Func<IClusterClient, Task<int>> work)
    {
        using var host = await ConnectAsync(target.Gateways, target.ClusterId);
        var exitCode = await work(host.Client());
        await host.StopAsync();
        return exitCode;
    }

    public static IClusterClient Client(this IHost host) => host.Services.GetRequiredService<IClusterClient>();
}
