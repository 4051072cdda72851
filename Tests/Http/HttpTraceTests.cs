using System.Diagnostics;
using OrderFlow.Contracts;
using OrderFlow.Grains.Telemetry;
using OrderFlow.Silo.Http;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Http;

/// <summary>
/// Issue 13's trace: a caller's HTTP request, the silo's server span for it, Orleans' grain-call spans, the command in
/// the order grain, and the handler of every subscriber it reaches, in one trace — the caller's, carried by its <c>traceparent</c>.
/// </summary>
[Collection(HttpApiCollection.Name)]
public sealed class HttpTraceTests(HttpApiFixture fixture)
{
    private const string AspNetCoreSource = "Microsoft.AspNetCore";

    private static readonly string[] AllSubscribers = ["activity-gmv", "coupon", "inventory", "order-sync", "points", "sms"];

    [Fact]
    public async Task Each_command_over_http_is_one_trace_from_the_request_to_the_handler_of_every_subscriber_it_reaches()
    {
        // The caller's HttpClient span too, so that the chain from the silo's server span up to the caller is complete.
        using var traces = new TestTraces(AspNetCoreSource, "System.Net.Http");
        var (id, sku) = (OrderDriver.NewId("http-trace-"), OrderDriver.NewId("http-trace-sku-"));
        await (await fixture.Client.PutAsync($"/stock/{sku}", new { available = 1 })).AssertOkAsync<StockLevel>();

        // Each command its own trace (the caller's), reaching the handlers of the subscribers that act on its event
        // (HandlesOnly): the placement only order-sync's, the payment all six, so every subscriber is followed once.
        var reached = new HashSet<string>();
        foreach (var (path, body, spanName, kind) in new (string, object?, string, char)[]
                 {
                     ("place", new { userId = "u-trace", items = new[] { new { sku, quantity = 1, unitPrice = 4.00m } } }, "PlaceOrder", 'P'),
                     ("pay", new { paymentId = $"p-{id}", amount = 4.00m }, "PayOrder", 'A'),
                     ("ship", null, "ShipOrder", 'S'),
                     ("receive", null, "ConfirmReceipt", 'R'),
                 })
        {
            var subscribers = AllSubscribers.Where(name => Handed.Runs(name, kind.ToString()) == 1).ToArray();
            await AssertOneTraceAsync(traces, id, () => fixture.Client.PostAsync($"/orders/{id}/{path}", body), spanName, subscribers);
            reached.UnionWith(subscribers);
        }

        Assert.Equal(AllSubscribers, reached.Order(StringComparer.Ordinal));
    }

    private static async Task AssertOneTraceAsync(TestTraces traces, string id, Func<Task<HttpResponseMessage>> send, string spanName, string[] subscribers)
    {
        ActivityTraceId traceId;
        ActivitySpanId caller;
        using (var root = TestTraces.StartRoot())
        {
            // HttpClient sends the current activity as the traceparent header, as any instrumented caller does.
            (traceId, caller) = (root.TraceId, root.SpanId);
            await (await send()).AssertOkAsync<CommandAccepted>();
        }

        var spans = await Eventually.Until(
            () => Task.FromResult(traces.InTrace(traceId)),
            // The server span ends once the response is sent: waited for too, not assumed.
            all => all.Any(s => s.Source.Name == AspNetCoreSource && s.Kind == ActivityKind.Server)
                   && subscribers.All(name => all.Any(s => s.Kind == ActivityKind.Consumer && Equals(s.GetTagItem(OrderFlowTelemetry.SubscriberTag), name))),
            TimeSpan.FromSeconds(30),
            all => $"order {id}, {spanName}: trace {traceId} has {string.Join(", ", all.Select(s => $"{s.Source.Name}:{s.DisplayName}"))}");

        var server = Assert.Single(spans, s => s.Source.Name == AspNetCoreSource && s.Kind == ActivityKind.Server);
        Assert.True(Ancestors(server, spans).Contains(caller),
            $"{spanName}: server span {server.SpanId} (parent {server.ParentSpanId}) does not descend from the caller's {caller}: " +
            string.Join(", ", spans.Select(s => $"{s.Source.Name}:{s.DisplayName} {s.SpanId}<-{s.ParentSpanId}")));
        var command = Assert.Single(spans, s => s.Source.Name == OrderFlowTelemetry.Name && s.DisplayName == spanName);
        Assert.Contains(server.SpanId, Ancestors(command, spans));
        // Every handler span in the trace is a child of this command's span, and of the product's subscribers only those
        // the event is for ran (the fixture's audit-trail subscriber takes every event too).
        var handlers = spans.Where(s => s.Kind == ActivityKind.Consumer).ToArray();
        Assert.All(handlers, handler => Assert.Equal(command.SpanId, handler.ParentSpanId));
        Assert.Equal(subscribers, handlers.Select(h => (string)h.GetTagItem(OrderFlowTelemetry.SubscriberTag)!)
            .Where(AllSubscribers.Contains).Distinct().Order(StringComparer.Ordinal));
    }

    /// <summary>The span ids from <paramref name="span"/>'s parent up to the trace's first recorded span.</summary>
    private static IEnumerable<ActivitySpanId> Ancestors(Activity span, IReadOnlyList<Activity> trace)
    {
        for (var parent = span.ParentSpanId; trace.FirstOrDefault(s => s.SpanId == parent) is { } found; parent = found.ParentSpanId)
        {
            yield return found.SpanId;
        }
    }
}
