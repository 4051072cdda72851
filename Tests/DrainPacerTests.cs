using OrderFlow.Grains.FlashSales;

namespace OrderFlow.Tests;

/// <summary>The drain's token bucket, on a clock the test drives: counts per window, never wall-clock time.</summary>
public sealed class DrainPacerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan BurstWindow = TimeSpan.FromMilliseconds(40);

    /// <summary>Drives the pacer for <paramref name="seconds"/> with ticks late by up to <paramref name="jitterMs"/>; returns each take's time.</summary>
    private static List<long> Run(DrainPacer pacer, double seconds, int jitterMs, int seed, Func<long, double?>? rateAt = null)
    {
        var random = new Random(seed);
        var takes = new List<long>();
        var now = 0L;
        while (now < TimeSpan.FromSeconds(seconds).Ticks)
        {
            now += Tick.Ticks + TimeSpan.FromMilliseconds(random.Next(0, jitterMs + 1)).Ticks;
            if (rateAt?.Invoke(now) is { } rate && rate != pacer.Rate)
            {
                pacer.SetRate(rate, now);
            }

            var n = pacer.Available(now);
            pacer.Take(n);
            takes.AddRange(Enumerable.Repeat(now, n));
        }

        return takes;
    }

    private static int MaxInOneSecond(List<long> takes)
    {
        var best = 0;
        var start = 0;
        for (var end = 0; end < takes.Count; end++)
        {
            while (takes[end] - takes[start] >= TimeSpan.TicksPerSecond)
            {
                start++;
            }

            best = Math.Max(best, end - start + 1);
        }

        return best;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(500)]
    [InlineData(505)]
    [InlineData(5_000)]
    public void No_one_second_window_holds_more_than_the_rate_and_its_burst(int rate)
    {
        var takes = Run(new DrainPacer(rate, BurstWindow, 0), seconds: 20, jitterMs: 30, seed: rate);

        // rate × (1 + 40 ms) + 1: within the cap + 5 % from 100/s up.
        Assert.True(MaxInOneSecond(takes) <= rate * 1.04 + 1, $"{MaxInOneSecond(takes)} in one second at {rate}/s");
        // And it keeps up: over 20 s within 10 % of the rate, however late the ticks come.
        Assert.InRange(takes.Count, rate * 20 * 0.9, rate * 20 * 1.05 + 1);
    }

    [Fact]
    public void A_rate_change_applies_from_the_change_on()
    {
        var change = TimeSpan.FromSeconds(10).Ticks;
        var takes = Run(new DrainPacer(100, BurstWindow, 0), seconds: 20, jitterMs: 10, seed: 1, rateAt: now => now >= change ? 1_000 : null);

        var before = takes.Where(t => t < change).ToList();
        var after = takes.Where(t => t >= change).ToList();
        Assert.True(MaxInOneSecond(before) <= 105, $"{MaxInOneSecond(before)} in one second at 100/s");
        Assert.True(MaxInOneSecond(after) <= 1_041, $"{MaxInOneSecond(after)} in one second at 1,000/s");
        Assert.InRange(after.Count, 9_000, 10_051);
    }

    [Fact]
    public void A_stalled_drain_does_not_make_up_for_lost_time_in_a_burst()
    {
        var pacer = new DrainPacer(1_000, BurstWindow, 0);

        var afterStall = pacer.Available(TimeSpan.FromSeconds(30).Ticks);

        Assert.Equal(41, afterStall); // 40 ms worth and the carry, not 30,000
    }
}
