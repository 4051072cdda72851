using System.Diagnostics;
using HdrHistogram;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>Latency percentiles of one paced run, in milliseconds.</summary>
public sealed record LatencySummary(long Count, double P50, double P99, double P999, double Max, double Mean)
{
    public static LatencySummary From(HistogramBase h)
    {
        const double usPerMs = 1000.0;
        return h.TotalCount == 0
            ? new LatencySummary(0, 0, 0, 0, 0, 0)
            : new LatencySummary(h.TotalCount, h.GetValueAtPercentile(50) / usPerMs, h.GetValueAtPercentile(99) / usPerMs,
                h.GetValueAtPercentile(99.9) / usPerMs, h.GetMaxValue() / usPerMs, h.GetMean() / usPerMs);
    }
}

/// <summary>What a paced run measured: latency from the intended send time, and (for diagnosis only) from the actual send.</summary>
public sealed record PacedResult(double OfferedOrdersPerSecond, double OfferedCommandsPerSecond, double Seconds, int Orders,
    int Refused, LatencySummary FromIntended, LatencySummary FromSend, IReadOnlyList<LatencySummary> FromSendByStep)
{
    /// <summary>p50 / p99 from the actual send for each of an order's commands in turn (the first is the placement).</summary>
    public string DescribeSteps() => string.Join(", ", FromSendByStep.Select((s, k) =>
        $"{(k == 0 ? "place" : $"#{k + 1}")} {s.P50:0.0}/{s.P99:0.0}"));
}

/// <summary>
/// Open-model load at a fixed rate, free of coordinated omission: every command has an intended send time fixed in
/// advance (order i is placed at i / rate; its pay, ship and receive follow at fixed steps after that), and its latency
/// is measured from that intended time, not from when it was actually sent. A slow silo therefore cannot hide its
/// stalls by slowing the load generator down: a command that had to wait for its order's previous command, or for the
/// client, carries that wait in its latency — the client's own timer jitter (about a millisecond) included.
/// </summary>
public static class PacedLoad
{
    /// <summary>Gap between the commands of one order: a customer pays, and the warehouse ships, a little after.</summary>
    public static readonly TimeSpan StepLag = TimeSpan.FromMilliseconds(50);

    private const long HighestTrackableMicros = 120_000_000;

    public static async Task<PacedResult> RunAsync(IClusterClient client, IReadOnlyList<OrderPlan> plans, double ordersPerSecond)
    {
        var fromIntended = new LongHistogram(HighestTrackableMicros, 3);
        var fromSend = new LongHistogram(HighestTrackableMicros, 3);
        var byStep = new List<LongHistogram>();
        var gate = new object();
        var refused = 0;

        // Every command of every order, in intended-time order.
        var schedule = new List<(long At, int Order, int Step)>();
        var steps = new List<Func<Task<CommandResult>>>[plans.Count];
        var ticksPerOrder = Stopwatch.Frequency / ordersPerSecond;
        var lagTicks = (long)(StepLag.TotalSeconds * Stopwatch.Frequency);
        for (var i = 0; i < plans.Count; i++)
        {
            steps[i] = plans[i].Steps(client.GetGrain<IOrderGrain>(plans[i].OrderId)).ToList();
            for (var k = 0; k < steps[i].Count; k++)
            {
                schedule.Add(((long)(i * ticksPerOrder) + k * lagTicks, i, k));
            }
        }

        schedule.Sort((a, b) => a.At.CompareTo(b.At));
        var previous = new Task[plans.Count];
        Array.Fill(previous, Task.CompletedTask);
        var start = Stopwatch.GetTimestamp();
        foreach (var (at, order, step) in schedule)
        {
            var intended = start + at;
            // Never early: a command goes out at or after its intended time (the timer's lateness counts against us).
            var wait = intended - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(0.001, (double)wait / Stopwatch.Frequency)));
            }

            previous[order] = SendAsync(previous[order], steps[order][step], step, intended);
        }

        await Task.WhenAll(previous);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var commands = schedule.Count;
        return new PacedResult(ordersPerSecond, ordersPerSecond * commands / Math.Max(1, plans.Count), seconds, plans.Count, refused,
            LatencySummary.From(fromIntended), LatencySummary.From(fromSend), byStep.Select(LatencySummary.From).ToList());

        async Task SendAsync(Task before, Func<Task<CommandResult>> command, int step, long intendedAt)
        {
            // A command of an order follows the order's previous one; waiting for it counts in the latency.
            await before;
            var sentAt = Stopwatch.GetTimestamp();
            var result = await command();
            var done = Stopwatch.GetTimestamp();
            lock (gate)
            {
                fromIntended.RecordValue(Math.Max(0, Micros(done - intendedAt)));
                fromSend.RecordValue(Micros(done - sentAt));
                while (byStep.Count <= step)
                {
                    byStep.Add(new LongHistogram(HighestTrackableMicros, 3));
                }

                byStep[step].RecordValue(Micros(done - sentAt));
                if (!result.Accepted)
                {
                    refused++;
                }
            }
        }
    }

    private static long Micros(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;
}
