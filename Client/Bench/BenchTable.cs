namespace OrderFlow.Client.Bench;

/// <summary>The human-readable summary of a bench run.</summary>
public static class BenchTable
{
    public static void Write(BenchReport r, TextWriter o)
    {
        o.WriteLine();
        o.WriteLine($"{"phase",-34} {"work",-30} {"rate",-26} {"silo CPU",-9} {"CPU/deliv",-10} {"alloc/deliv",-11} {"writes/deliv",-12}");
        o.WriteLine(new string('-', 138));
        o.WriteLine($"{"baseline: trivial grain calls",-34} {"closed loop",-30} {r.BaselineCallsPerSecond,10:N0} calls/s");
        Row(o, "baseline: trivial stream", r.StreamBaseline, $"{r.StreamBaseline.Orders:N0} streams x 4 events");
        Row(o, "pipeline (all subscribers applied)", r.Pipeline, $"{r.Pipeline.Orders:N0} orders x 4 x {r.Subscribers.Count}");
        o.WriteLine($"{"",-34} {"",-30} {r.Pipeline.OrdersPerSecond,10:N0} orders/s");
        foreach (var t in new[] { r.ScaleReference, r.Scale })
        {
            if (t is not null)
            {
                Row(o, $"scale: {t.Orders:N0} orders", t, t.Events == 2L * t.Orders
                    ? $"{t.Orders:N0} x 2 (place, cancel) x {r.Subscribers.Count}"
                    : $"{t.Orders:N0} x {(double)t.Events / t.Orders:0.#} x {r.Subscribers.Count}");
                o.WriteLine($"{"",-34} {"",-30} {t.OrdersPerSecond,10:N0} orders/s");
            }
        }

        o.WriteLine();
        o.WriteLine($"{"latency (from intended send time)",-40} {"offered",-22} {"p50",8} {"p99",8} {"p99.9",8} {"max",8} {"refused",8}");
        o.WriteLine(new string('-', 108));
        Latency(o, "normal subscribers", r.Latency);
        Latency(o, "sms/coupon +100 ms, points +200 ms", r.LatencyWithSlowSubscribers);
        o.WriteLine($"{"  (for diagnosis: from actual send)",-40} {"",-22} {r.Latency.FromSend.P50,8:0.00} {r.Latency.FromSend.P99,8:0.00} {r.Latency.FromSend.P999,8:0.00} {r.Latency.FromSend.Max,8:0.00}");
        o.WriteLine($"  async p99 ratio {r.AsyncP99Ratio:0.00}; lost events {r.LostEvents}");

        if (r.Memory is { } m)
        {
            o.WriteLine();
            var lifecycle = r.Scale is { } scaled && scaled.Events != 2L * scaled.Orders ? "full (4-event)" : "placed-and-cancelled";
            o.WriteLine($"silo memory for {m.Orders:N0} {lifecycle} orders (managed heap after a full GC, plus the store's native records): held {m.HeldBytesPerOrder:N0} B/order " +
                        $"({m.ActivationsHeld:N0} activations), after idle deactivation {m.DeactivatedBytesPerOrder:N0} B/order " +
                        $"({m.ActivationsAfterDeactivation:N0} activations); working set {m.WorkingSetHeldBytes / 1048576.0:N0} MB -> {m.WorkingSetAfterBytes / 1048576.0:N0} MB");
            if (m.Stored.Count > 0)
            {
                o.WriteLine($"  of which the embedded store, per order: {m.Stored.Sum(s => s.Records):0.00} records, {m.Stored.Sum(s => s.StateBytes):N0} B of state, {m.Stored.Sum(s => s.KeyBytes):N0} B of keys");
                foreach (var s in m.Stored)
                {
                    o.WriteLine($"    {s.Kind,-56} {s.Records,6:0.00} records {s.StateBytes,7:N0} B state {s.KeyBytes,5:N0} B keys");
                }
            }
        }

        o.WriteLine();
        o.WriteLine($"{"goal",-44} {"measured",-14} {"target",-10} met");
        o.WriteLine(new string('-', 76));
        foreach (var g in r.Goals)
        {
            o.WriteLine($"{g.Goal,-44} {g.Measured,-14} {g.Target,-10} {(g.Met ? "yes" : "NO")}");
        }

        o.WriteLine($"  total {r.TotalSeconds:0} s");
    }

    private static void Row(TextWriter o, string name, ThroughputResult t, string work) =>
        o.WriteLine($"{name,-34} {work,-30} {t.DeliveriesPerSecond,10:N0} deliveries/s    {t.Silo.CpuPercent,6:0} %  {t.CpuMicrosPerDelivery,7:0} us  {t.AllocatedBytesPerDelivery,8:N0} B  {t.WritesPerDelivery,9:0.00}");

    private static void Latency(TextWriter o, string name, PacedResult p) =>
        o.WriteLine($"{name,-40} {$"{p.OfferedOrdersPerSecond:0} orders/s ({p.OfferedCommandsPerSecond:0} cmd/s)",-22} {p.FromIntended.P50,8:0.00} {p.FromIntended.P99,8:0.00} {p.FromIntended.P999,8:0.00} {p.FromIntended.Max,8:0.00} {p.Refused,8}");
}
