using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Azure.Core;
using Azure.Core.Pipeline;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Counts every request the durable profile sends to Azure Storage, by service, table or queue, and operation — at
/// the HTTP pipeline of every storage client of the durable profile (a table client for grain state and ledger entries,
/// one for membership and reminders, and the queue client; <c>CreateStorageClients</c>), so nothing goes around it. Each retry
/// attempt is a request of its own (the policy sits per retry). Published as an instrument of the <c>OrderFlow</c> meter
/// (<c>orderflow.storage.requests</c>, tags service / resource / operation) and read as totals by the bench
/// (storage operations per order event, issue 5). The embedded profile sends no request, so it counts nothing.
/// </summary>
public sealed class StorageOperationCounter : IDisposable
{

    /// <summary>The resource name every order-stream queue is counted under (one stream, several queues).</summary>
    public const string StreamQueues = "order-stream queues";

    private readonly ConcurrentDictionary<(string Service, string Resource, string Operation), Tally> _tallies = new();
    private readonly Meter _meter;
    private readonly Counter<long> _requests;

    public StorageOperationCounter()
    {
        _meter = new Meter(Telemetry.OrderFlowTelemetry.Name);
        _requests = _meter.CreateCounter<long>("orderflow.storage.requests", "{request}", "Requests sent to Azure Storage, retries included");
    }

    /// <summary>A policy for a client of <paramref name="service"/> ("table" or "queue"); add it per retry.</summary>
    public HttpPipelinePolicy PolicyFor(string service) => new CountingPolicy(this, service);

    /// <summary>Totals since the silo started, one row per (service, resource, operation).</summary>
    public IReadOnlyList<StorageOperationCount> Snapshot() =>
        _tallies.Select(pair => new StorageOperationCount(pair.Key.Service, pair.Key.Resource, pair.Key.Operation,
                Volatile.Read(ref pair.Value.Requests), Volatile.Read(ref pair.Value.Failed), Volatile.Read(ref pair.Value.Messages)))
            .OrderBy(c => c.Service, StringComparer.Ordinal).ThenBy(c => c.Resource, StringComparer.Ordinal).ThenBy(c => c.Operation, StringComparer.Ordinal)
            .ToArray();

    public void Dispose() => _meter.Dispose();

    private void Record(string service, string resource, string operation, bool failed, int messages)
    {
        var tally = _tallies.GetOrAdd((service, resource, operation), static _ => new Tally());
        Interlocked.Increment(ref tally.Requests);
        if (failed)
        {
            Interlocked.Increment(ref tally.Failed);
        }

        if (messages > 0)
        {
            Interlocked.Add(ref tally.Messages, messages);
        }

        _requests.Add(1, new("service", service), new("resource", resource), new("operation", operation));
    }

    /// <summary>
    /// Names a table request: the table from the last path segment (<c>Name(PartitionKey='..',RowKey='..')</c>,
    /// <c>Name()</c>, <c>Tables</c>, <c>$batch</c>) and the operation from the method and whether one row is addressed.
    /// </summary>
    public static (string Resource, string Operation) ClassifyTable(string method, string path)
    {
        var last = path.TrimEnd('/');
        last = last[(last.LastIndexOf('/') + 1)..];
        var paren = last.IndexOf('(');
        var table = paren >= 0 ? last[..paren] : last;
        var oneRow = paren >= 0 && last.Length > paren + 2;
        if (table == "Tables")
        {
            return ("(tables)", method == "POST" ? "create table" : method == "DELETE" ? "delete table" : "list tables");
        }

        if (table == "$batch")
        {
            return ("(batch)", "batch");
        }

        var operation = method switch
        {
            "GET" => oneRow ? "read row" : "query",
            "POST" => "insert",
            "PUT" => "replace",
            "MERGE" or "PATCH" => "merge",
            "DELETE" => "delete",
            _ => method.ToLowerInvariant(),
        };
        return (table, operation);
    }

    /// <summary>
    /// Names a queue request: <c>/queue</c> (create, properties, delete), <c>/queue/messages</c> (put, get, peek,
    /// clear) or <c>/queue/messages/id</c> (delete, update). A get that returned nothing is "get (empty)": an idle
    /// poll, paid per poll period rather than per event.
    /// </summary>
    public static string ClassifyQueue(string method, string path, string query, int messagesReturned)
    {
        var segments = path.Trim('/').Split('/');
        var messagesAt = Array.LastIndexOf(segments, "messages");
        if (messagesAt < 0)
        {
            return method switch
            {
                "PUT" => "create queue",
                "GET" or "HEAD" => query.Contains("comp=metadata", StringComparison.Ordinal) ? "properties" : "list queues",
                "DELETE" => "delete queue",
                _ => method.ToLowerInvariant(),
            };
        }

        var oneMessage = messagesAt < segments.Length - 1;
        return (method, oneMessage) switch
        {
            ("POST", false) => "put",
            ("GET", false) when query.Contains("peekonly=true", StringComparison.OrdinalIgnoreCase) => "peek",
            ("GET", false) => messagesReturned > 0 ? "get" : "get (empty)",
            ("DELETE", false) => "clear",
            ("DELETE", true) => "delete",
            ("PUT", true) => "update",
            _ => method.ToLowerInvariant(),
        };
    }

    /// <summary>Messages in a Get Messages response body (<c>&lt;QueueMessage&gt;</c> elements).</summary>
    public static int CountMessages(ReadOnlySpan<byte> body)
    {
        ReadOnlySpan<byte> element = "<QueueMessage>"u8;
        var count = 0;
        int at;
        while ((at = body.IndexOf(element)) >= 0)
        {
            count++;
            body = body[(at + element.Length)..];
        }

        return count;
    }

    private sealed class Tally
    {
        public long Requests;
        public long Failed;
        public long Messages;
    }

    private sealed class CountingPolicy(StorageOperationCounter counter, string service) : HttpPipelineSynchronousPolicy
    {
        public override void OnReceivedResponse(HttpMessage message)
        {
            var request = message.Request;
            var method = request.Method.Method;
            var path = request.Uri.Path;
            var failed = !message.HasResponse || message.Response.Status >= 400;
            if (service == "table")
            {
                var (resource, operation) = ClassifyTable(method, path);
                counter.Record(service, resource, operation, failed, 0);
                return;
            }

            var messages = 0;
            if (method == "GET" && !failed && path.EndsWith("/messages", StringComparison.Ordinal))
            {
                try
                {
                    messages = CountMessages(message.Response.Content.ToMemory().Span);
                }
                catch (InvalidOperationException)
                {
                    // An unbuffered body (never the case for Get Messages): counted as a get with unknown content.
                    messages = 1;
                }
            }

            counter.Record(service, StreamQueues, ClassifyQueue(method, path, request.Uri.Query, messages), failed, messages);
        }
    }
}
