using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Telemetry;
using OrderFlow.Tests.Infrastructure;
using Orleans.Serialization;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>
/// Metrics after a known workload, read per silo and summed as a Prometheus query would; and traces from a client's
/// call through the order grain to every subscriber's handler — also when the event left through an outbox retry or
/// the relay, long after the command's own call had returned.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TelemetryTests(TelemetryFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Published_and_applied_per_subscriber_match_the_workload_and_lag_returns_to_zero_summed_over_two_silos()
    {
        const int orders = 20;
        var before = SiloMeterReader.Sum(fixture.SiloMetrics);
        // Half the orders from each silo's own client, so both silos' order grains publish (placement prefers the caller's
        // silo) while each silo's pulling agents deliver its share of the stream's queues.
        var drivers = fixture.SiloGrainFactories.Select(grains => new OrderDriver(grains)).ToArray();
        var ids = Enumerable.Range(0, orders).Select(_ => OrderDriver.NewId("tm-")).ToArray();
        await Task.WhenAll(ids.Select((id, i) => drivers[i % drivers.Length].FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)))));
        await drivers[0].WaitCaughtUpAsync(ids);

        var events = orders * 4L;
        var after = await Eventually.Until(
            () => Task.FromResult(SiloMeterReader.Sum(fixture.SiloMetrics)),
            now => fixture.Subscribers.All(s => Delta(before, now, "orderflow.subscriber.lag", Sub(s)) == 0),
            Timeout,
            now => "lag per subscriber (delta, summed over silos): " + string.Join(", ", fixture.Subscribers.Select(s => $"{s}={Delta(before, now, "orderflow.subscriber.lag", Sub(s))}")));

        Assert.Equal(events, Delta(before, after, "orderflow.events.published", ""));
        // Each event marked once with the relay, in at most as many calls as marks and deliveries.
        Assert.Equal(events, Delta(before, after, "orderflow.relay.marks", ""));
        var (calls, reported) = (Delta(before, after, "orderflow.relay.calls", ""), Delta(before, after, "orderflow.relay.deliveries", ""));
        Assert.True(calls >= 1 && calls <= events + reported && reported <= events, $"relay calls {calls}, deliveries reported {reported}");
        Assert.Equal(0, Delta(before, after, "orderflow.outbox.backlog", ""));
        foreach (var subscriber in fixture.Subscribers)
        {
            // Applied: the events its handler runs for (HandlesOnly); the others are done for it as published (lag 0 above).
            var handled = orders * Handed.Runs(subscriber, Handed.FullLifecycle);
            Assert.Equal((subscriber, handled), (subscriber, Delta(before, after, "orderflow.subscriber.applied", Sub(subscriber))));
            Assert.True(Delta(before, after, "orderflow.subscriber.deliveries", Sub(subscriber)) >= handled, $"{subscriber} deliveries");
            Assert.Equal((subscriber, 0L), (subscriber, Delta(before, after, "orderflow.subscriber.parked", Sub(subscriber))));
        }

        // Which silo did what is up to placement and the queue balancer (right after start-up one silo may hold every
        // queue), so no silo's share is asserted: the sums above are what a query over both scrapes reads.
        Assert.Equal(2, fixture.SiloMetrics.Count);
    }

    [Fact]
    public async Task A_poisoned_event_shows_as_retries_then_parked_and_as_lag_of_that_subscriber_only_until_it_is_skipped()
    {
        var before = SiloMeterReader.Sum(fixture.SiloMetrics);
        var driver = new OrderDriver(fixture.Grains);
        var id = OrderDriver.NewId("tpoison-");
        var total = await driver.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 5m)));
        await driver.PayAsync(id, total);
        await driver.WaitCaughtUpAsync(id, allowParked: true);

        string Describe(IReadOnlyDictionary<(string, string), long> now) =>
            $"points retries={Delta(before, now, "orderflow.subscriber.retries", "kind=handler,subscriber=points")} parked={Delta(before, now, "orderflow.subscriber.parked", Sub("points"))} " +
            "lag " + string.Join(", ", fixture.Subscribers.Select(s => $"{s}={Delta(before, now, "orderflow.subscriber.lag", Sub(s))}"));
        var parked = await Eventually.Until(
            () => Task.FromResult(SiloMeterReader.Sum(fixture.SiloMetrics)),
            now => Delta(before, now, "orderflow.subscriber.parked", Sub("points")) == 1
                   && fixture.Subscribers.All(s => Delta(before, now, "orderflow.subscriber.lag", Sub(s)) == (s == "points" ? 1 : 0)),
            Timeout, Describe);
        // MaxAttempts attempts: all but the last were retried.
        Assert.Equal(TelemetryFixture.MaxAttempts - 1, Delta(before, parked, "orderflow.subscriber.retries", "kind=handler,subscriber=points"));
        Assert.Equal(0, Delta(before, parked, "orderflow.subscriber.retries", "kind=handler,subscriber=coupon"));

        var skipped = await fixture.Grains.GetGrain<IOperationsGrain>(0).SkipAsync("points", id, 2);
        Assert.Equal(DeadLetterActionOutcome.Skipped, skipped.Outcome);
        await Eventually.Until(
            () => Task.FromResult(SiloMeterReader.Sum(fixture.SiloMetrics)),
            now => Delta(before, now, "orderflow.subscriber.lag", Sub("points")) == 0,
            Timeout, Describe);
    }

    [Fact]
    public async Task One_trace_runs_from_the_client_call_through_the_order_grain_to_every_subscribers_handler()
    {
        var id = OrderDriver.NewId("trace-");
        var order = await PrepareAsync(id);
        ActivityTraceId traceId;
        using (var root = TestTraces.StartRoot())
        {
            traceId = root.TraceId;
            (await order.PlaceAsync(Place(id))).EnsureAccepted();
            (await order.PayAsync(new PayOrder($"{id}-pay", $"pay-{id}", 3m))).EnsureAccepted();
            (await order.ShipAsync(new ShipOrder($"{id}-ship"))).EnsureAccepted();
            (await order.ConfirmReceiptAsync(new ConfirmReceipt($"{id}-receive"))).EnsureAccepted();
        }

        await new OrderDriver(fixture.Grains).WaitCaughtUpAsync(id);
        var spans = await HandlerSpansAsync(traceId, id, Handed.FullLifecycle);

        var commands = spans.Where(s => s.Source.Name == OrderFlowTelemetry.Name && s.Kind == ActivityKind.Internal).ToArray();
        Assert.Equal(["ConfirmReceipt", "PayOrder", "PlaceOrder", "ShipOrder"], commands.Select(c => c.DisplayName).Order(StringComparer.Ordinal));
        // Orleans' propagation carried the client's context: each command span has a parent in the same trace.
        Assert.All(commands, c => Assert.Contains(spans, s => s.SpanId == c.ParentSpanId));
        foreach (var command in commands)
        {
            var sequence = (long)command.GetTagItem(OrderFlowTelemetry.SequenceTag)!;
            var children = spans.Where(s => Equals(s.GetTagItem(OrderFlowTelemetry.SequenceTag), sequence) && s.ParentSpanId == command.SpanId).ToArray();
            Assert.Contains(children, s => s.DisplayName == "publish orders");
            // Each subscriber that handles the event's kind (HandlesOnly), and every subscriber for the last one.
            var kind = Handed.FullLifecycle[(int)sequence - 1].ToString();
            Assert.Equal(fixture.Subscribers.Where(s => Handed.Runs(s, kind) == 1), children.Where(s => s.Kind == ActivityKind.Consumer)
                .Select(s => (string)s.GetTagItem(OrderFlowTelemetry.SubscriberTag)!).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task An_event_published_later_by_the_outbox_retry_keeps_the_trace_of_its_command()
    {
        var id = OrderDriver.NewId("refuse-");
        var order = await PrepareAsync(id);
        ActivityTraceId traceId;
        using (var root = TestTraces.StartRoot())
        {
            traceId = root.TraceId;
            (await order.PlaceAsync(Place(id))).EnsureAccepted();
        }

        // The command returned with its event in the outbox (the transport refused it); the retry timer, which runs
        // outside any trace, published it.
        await new OrderDriver(fixture.Grains).WaitCaughtUpAsync(id);
        var spans = await HandlerSpansAsync(traceId, id, "P");
        var command = Assert.Single(spans, s => s.DisplayName == "PlaceOrder");
        var publishes = spans.Where(s => s.DisplayName == "publish orders").ToArray();
        Assert.Equal([ActivityStatusCode.Error, ActivityStatusCode.Unset], publishes.OrderBy(p => p.StartTimeUtc).Select(p => p.Status));
        Assert.All(spans.Where(s => s.Kind == ActivityKind.Consumer), s => Assert.Equal(command.SpanId, s.ParentSpanId));
    }

    [Fact]
    public async Task An_event_the_transport_lost_reaches_the_subscribers_through_the_relay_in_the_trace_of_its_command()
    {
        var id = OrderDriver.NewId("lose-");
        var order = await PrepareAsync(id);
        ActivityTraceId traceId;
        using (var root = TestTraces.StartRoot())
        {
            traceId = root.TraceId;
            (await order.PlaceAsync(Place(id))).EnsureAccepted();
            (await order.PayAsync(new PayOrder($"{id}-pay", $"pay-{id}", 3m))).EnsureAccepted();
        }

        // Event 2 never reached the stream: the relay asks each subscriber to reach the order's last event, from its log.
        var spans = await HandlerSpansAsync(traceId, id, "PA");
        var pay = Assert.Single(spans, s => s.DisplayName == "PayOrder");
        var handlers = spans.Where(s => s.Kind == ActivityKind.Consumer && Equals(s.GetTagItem(OrderFlowTelemetry.SequenceTag), 2L)).ToArray();
        Assert.Equal(fixture.Subscribers, handlers.Select(s => (string)s.GetTagItem(OrderFlowTelemetry.SubscriberTag)!).Order(StringComparer.Ordinal));
        Assert.All(handlers, s => Assert.Equal(pay.SpanId, s.ParentSpanId));
    }

    [Fact]
    public void An_event_stored_before_the_trace_context_was_carried_still_reads_and_one_with_it_keeps_it()
    {
        var serializer = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost.Services.GetRequiredService<Serializer>();
        // OrderPaid as the version before this field serialized it (captured from that build): no field 4 in the base.
        var legacy = Convert.FromBase64String(
            "MAGdWshCJ29yZGVycy5PcmRlclBhaWQudjHoQCERERERIiIzM0REVVVVVVVVQR1sZWdhY3ktdHJhY2UtMQEJIYAAkPUybUzfCIEAAAAAAAAAAODo6EQNdXNlci0xQQtwYXktMUEhAAACAAAAAADGBwAAAAAAADEBN76PcWdSZWFkT25seUxpc3RJbnRlcmZhY2VDb2RlY2AxW1tvcmRlcnMuT3JkZXJMaW5lLnYxXV0AAyHoQAtza3UtMQEFQSEAAAIAAAAAAMYHAAAAAAAA4ODBAUELYWN0LTHg");
        var paid = Assert.IsType<OrderPaid>(serializer.Deserialize<OrderEvent>(legacy));
        Assert.Equal(("legacy-trace-1", 2L, "pay-1", 19.90m, "act-1", (string?)null), (paid.OrderId, paid.Sequence, paid.PaymentId, paid.Amount, paid.ActivityId, paid.TraceParent));
        Assert.Equal(default, OrderFlowTelemetry.ParentOf(paid));

        const string traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var traced = serializer.Deserialize<OrderEvent>(serializer.SerializeToArray<OrderEvent>(paid with { TraceParent = traceParent }))!;
        Assert.Equal((traceParent, paid.PaymentId), (traced.TraceParent, ((OrderPaid)traced).PaymentId));
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", OrderFlowTelemetry.ParentOf(traced).TraceId.ToHexString());
    }

    /// <summary>
    /// The trace's spans once the handler span of each subscriber for each event of <paramref name="kinds"/> (the order's
    /// events by kind letter) that it handles has ended.
    /// </summary>
    private async Task<IReadOnlyList<Activity>> HandlerSpansAsync(ActivityTraceId traceId, string orderId, string kinds)
    {
        var expected = fixture.Subscribers.Sum(s => Handed.Runs(s, kinds));
        return await Eventually.Until(
            () => Task.FromResult(fixture.Traces.InTrace(traceId)),
            spans => spans.Count(s => s.Kind == ActivityKind.Consumer && s.Status != ActivityStatusCode.Error) >= expected,
            Timeout,
            spans => $"order {orderId}: expected {expected} handler spans in trace {traceId}, saw {spans.Count(s => s.Kind == ActivityKind.Consumer)}; spans: " +
                     string.Join(", ", spans.Select(s => $"{s.DisplayName}#{s.GetTagItem(OrderFlowTelemetry.SequenceTag)}")));
    }

    /// <summary>Stock for the order's one SKU (set up outside the trace); the order grain as the external client calls it.</summary>
    private async Task<IOrderGrain> PrepareAsync(string id)
    {
        await Inventory.EnsureAsync(fixture.Grains, OrderDriver.Items(($"sku-{id}", 1, 3m)), null);
        return fixture.Cluster.Client.GetGrain<IOrderGrain>(id);
    }

    private static PlaceOrder Place(string id) => new($"{id}-place", $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 3m)), null, null);

    private static string Sub(string subscriber) => $"subscriber={subscriber}";

    private static long Delta(IReadOnlyDictionary<(string, string), long> before, IReadOnlyDictionary<(string, string), long> after, string instrument, string tags) =>
        after.GetValueOrDefault((instrument, tags)) - before.GetValueOrDefault((instrument, tags));
}
