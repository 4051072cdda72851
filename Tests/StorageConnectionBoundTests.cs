using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using Orleans.Clustering.AzureStorage;
using Orleans.Configuration;
using Orleans.Reminders.AzureStorage;
using Orleans.Serialization;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Tests;

/// <summary>
/// The durable profile's storage clients open at most <see cref="AzureOrderStorageOptions.MaxConnectionsPerEndpoint"/>
/// connections to each storage endpoint: more requests at once wait for a connection. Against a server on 127.0.0.1
/// that answers every request slowly (as a storage account under load does) and counts the connections open at once.
/// </summary>
public sealed class StorageConnectionBoundTests
{
    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public async Task Concurrent_table_and_queue_requests_open_at_most_the_bound_per_endpoint(int bound)
    {
        // The server answers nothing until `bound` connections are open (or 5 s passed), so that the requests queue.
        await using var tableEndpoint = new SlowHttpServer(answerOnceOpen: bound);
        await using var queueEndpoint = new SlowHttpServer(answerOnceOpen: bound);
        var clients = OrderMessagingSiloBuilderExtensions.CreateStorageClients(Storage(bound, tableEndpoint, queueEndpoint), new StorageOperationCounter());

        const int requests = 4 * 5;
        var calls = Enumerable.Range(0, requests).Select(i => Answered(() => clients.Tables.GetTableClient("OrderFlowOrders").GetEntityAsync<TableEntity>("svc", $"order_o-{i}")))
            .Concat(Enumerable.Range(0, requests).Select(_ => Answered(() => clients.Queues.GetQueueClient("orderflow-svc-0").PeekMessageAsync())));
        var statuses = await Task.WhenAll(calls);

        // Every request reached its server and was answered (404: the slow server has no rows or queues)...
        Assert.All(statuses, status => Assert.Equal(404, status));
        Assert.Equal(requests, tableEndpoint.Requests);
        Assert.Equal(requests, queueEndpoint.Requests);
        // ...through no more connections to each endpoint than the bound (without it: one per request, 20).
        Assert.Equal(bound, tableEndpoint.PeakConnections);
        Assert.Equal(bound, queueEndpoint.PeakConnections);
        Assert.True(tableEndpoint.AnsweredWithoutWaiting && queueEndpoint.AnsweredWithoutWaiting, "the bound was not reached: the requests did not queue");
    }

    [Fact]
    public async Task Membership_and_reminders_do_not_wait_behind_grain_state_for_a_connection()
    {
        const int bound = 2;
        // Nothing is answered until the grain-state pool is full and the cluster client has a connection of its own.
        await using var tableEndpoint = new SlowHttpServer(answerOnceOpen: bound + 1);
        await using var queueEndpoint = new SlowHttpServer(answerOnceOpen: 1);
        var clients = OrderMessagingSiloBuilderExtensions.CreateStorageClients(Storage(bound, tableEndpoint, queueEndpoint), new StorageOperationCounter());

        var state = Enumerable.Range(0, 6).Select(i => Answered(() => clients.Tables.GetTableClient("OrderFlowOrders").GetEntityAsync<TableEntity>("svc", $"order_o-{i}")));
        var membership = Answered(() => clients.Cluster.GetTableClient("OrleansSiloInstances").GetEntityAsync<TableEntity>("c", "s"));
        var statuses = await Task.WhenAll(state.Append(membership));

        Assert.All(statuses, status => Assert.Equal(404, status));
        // The grain-state pool held its bound; the membership read had a connection beside it, not behind it.
        Assert.Equal(bound + 1, tableEndpoint.PeakConnections);
        Assert.True(tableEndpoint.AnsweredWithoutWaiting, "the server's answers waited for connections that never opened");
    }

    [Fact]
    public void A_silo_on_the_azure_profile_gives_membership_and_reminders_the_cluster_client_and_grain_state_the_other()
    {
        var services = TransientRetryOptionsTests.Services([], silo => silo.UseAzureOrderStorage(new AzureOrderStorageOptions()));
        services.AddSerializer(); // the grain storage's options make its serializer
        using var provider = services.BuildServiceProvider();

        var membership = provider.GetRequiredService<IOptions<AzureStorageClusteringOptions>>().Value.TableServiceClient;
        var reminders = provider.GetRequiredService<IOptions<AzureTableReminderStorageOptions>>().Value.TableServiceClient;
        var grainState = provider.GetRequiredService<IOptionsMonitor<AzureTableStorageOptions>>().Get(StorageNames.Orders).TableServiceClient;
        Assert.NotNull(membership);
        Assert.Same(membership, reminders);
        Assert.NotNull(grainState);
        Assert.NotSame(membership, grainState);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4097)]
    public void A_bound_out_of_range_is_refused_before_the_silo_starts(int bound)
    {
        var problems = new AzureOrderStorageOptions { MaxConnectionsPerEndpoint = bound }.Problems();
        Assert.Contains(problems, p => p.Contains(nameof(AzureOrderStorageOptions.MaxConnectionsPerEndpoint), StringComparison.Ordinal));
    }

    private static AzureOrderStorageOptions Storage(int bound, SlowHttpServer tables, SlowHttpServer queues)
    {
        var storage = new AzureOrderStorageOptions
        {
            MaxConnectionsPerEndpoint = bound,
            ConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
                               "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
                               $"TableEndpoint=http://127.0.0.1:{tables.Port}/devstoreaccount1;" +
                               $"QueueEndpoint=http://127.0.0.1:{queues.Port}/devstoreaccount1;",
        };
        Assert.Empty(storage.Problems());
        return storage;
    }

    private static async Task<int> Answered(Func<Task> request)
    {
        try
        {
            await request();
            return 200;
        }
        catch (RequestFailedException ex)
        {
            return ex.Status;
        }
        catch (Exception)
        {
            return -1; // no answer at all (a timeout): the assertions on statuses say so
        }
    }

    /// <summary>
    /// HTTP/1.1 on 127.0.0.1, keep-alive, answering each request with 404 once <c>answerOnceOpen</c> connections are
    /// open (or 5 s after its first request, which <see cref="AnsweredWithoutWaiting"/> then reports).
    /// </summary>
    private sealed class SlowHttpServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _connections = [];
        private readonly int _answerOnceOpen;
        private readonly Task _accepting;
        private int _open;
        private int _peak;
        private int _requests;
        private int _gaveUpWaiting;
        private DateTime? _giveUp;
        private readonly TaskCompletionSource _enoughOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SlowHttpServer(int answerOnceOpen)
        {
            _answerOnceOpen = answerOnceOpen;
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int PeakConnections => Volatile.Read(ref _peak);

        public int Requests => Volatile.Read(ref _requests);

        /// <summary>No answer went out before <c>answerOnceOpen</c> connections had been open at once.</summary>
        public bool AnsweredWithoutWaiting => Volatile.Read(ref _gaveUpWaiting) == 0;

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                var open = Interlocked.Increment(ref _open);
                int peak;
                while (open > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, open, peak) != peak)
                {
                }

                if (open >= _answerOnceOpen)
                {
                    _enoughOpen.TrySetResult();
                }

                lock (_connections)
                {
                    _connections.Add(ServeAsync(client));
                }
            }
        }

        private async Task ServeAsync(TcpClient client)
        {
            using var _ = client;
            try
            {
                var stream = client.GetStream();
                var buffer = new byte[64 * 1024];
                var pending = new StringBuilder();
                while (!_stop.IsCancellationRequested)
                {
                    var read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    // The SDK's requests here have no body: each ends at its blank line.
                    pending.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    int end;
                    while ((end = pending.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal)) >= 0)
                    {
                        pending.Remove(0, end + 4);
                        Interlocked.Increment(ref _requests);
                        await UntilOpenAsync();
                        var answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nx-ms-error-code: ResourceNotFound\r\n\r\n"u8.ToArray();
                        await stream.WriteAsync(answer, _stop.Token);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException)
            {
            }
            finally
            {
                Interlocked.Decrement(ref _open);
            }
        }

        // The slow storage account: nothing is answered until the client has opened as many connections as it will, or
        // until 5 s after the first request (one deadline for the server, so a failing case fails in seconds).
        private async Task UntilOpenAsync()
        {
            var giveUp = _giveUp ??= DateTime.UtcNow + TimeSpan.FromSeconds(5);
            try
            {
                await _enoughOpen.Task.WaitAsync(giveUp - DateTime.UtcNow > TimeSpan.Zero ? giveUp - DateTime.UtcNow : TimeSpan.Zero, _stop.Token);
            }
            catch (TimeoutException)
            {
                Interlocked.Exchange(ref _gaveUpWaiting, 1);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            Task[] connections;
            lock (_connections)
            {
                connections = [.. _connections];
            }

            await Task.WhenAll(connections);
            _stop.Dispose();
        }
    }
}
