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

    // The subscribers whose handler a placement reaches (HandlesOnly): the others have nothing to do for it.
    private static readonly string[] Subscribers = new[] { "activity-gmv", "coupon", "inventory", "order-sync", "points", "sms" }
        .Where(name => Handed.Runs(name, "P") == 1).ToArray();

    [Fact]
    public async Task An_order_placed_over_http_is_one_trace_from_the_request_to_the_handler_of_every_subscriber_it_reaches()
    {
        // The caller's HttpClient span too, so that the chain from the silo's server span up to the caller is complete.
        using var traces = new TestTraces(AspNetCoreSource, "System.Net.Http");
        var (id, sku) = (OrderDriver.NewId("http-trace-"), OrderDriver.NewId("http-trace-sku-"));
        await (await fixture.Client.PutAsync($"/stock/{sku}", new { available = 1 })).AssertOkAsync<StockLevel>();

        ActivityTraceId traceId;
        ActivitySpanId caller;
        using (var root = TestTraces.StartRoot())
        {
            // HttpClient sends the current activity as the traceparent header, as any instrumented caller does.
            (traceId, caller) = (root.TraceId, root.SpanId);
            await (await fixture.Client.PostAsync($"/orders/{id}/place",
                new { userId = "u-trace", items = new[] { new { sku, quantity = 1, unitPrice = 4.00m } } })).AssertOkAsync<CommandAccepted>();
        }

        var spans = await Eventually.Until(
            () => Task.FromResult(traces.InTrace(traceId)),
            // The server span ends once the response is sent: waited for too, not assumed.
            all => all.Any(s => s.Source.Name == AspNetCoreSource && s.Kind == ActivityKind.Server)
                   && Subscribers.All(name => all.Any(s => s.Kind == ActivityKind.Consumer && Equals(s.GetTagItem(OrderFlowTelemetry.SubscriberTag), name))),
            TimeSpan.FromSeconds(30),
            all => $"order {id}: trace {traceId} has {string.Join(", ", all.Select(s => $"{s.Source.Name}:{s.DisplayName}"))}");

        var server = Assert.Single(spans, s => s.Source.Name == AspNetCoreSource && s.Kind == ActivityKind.Server);
        Assert.True(Ancestors(server, spans).Contains(caller),
            $"server span {server.SpanId} (parent {server.ParentSpanId}) does not descend from the caller's {caller}: " +
            string.Join(", ", spans.Select(s => $"{s.Source.Name}:{s.DisplayName} {s.SpanId}<-{s.ParentSpanId}")));
        var command = Assert.Single(spans, s => s.Source.Name == OrderFlowTelemetry.Name && s.DisplayName == "PlaceOrder");
        Assert.Contains(server.SpanId, Ancestors(command, spans));
        Assert.All(spans.Where(s => s.Kind == ActivityKind.Consumer), handler => Assert.Equal(command.SpanId, handler.ParentSpanId));
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
