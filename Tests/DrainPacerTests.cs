using OrderFlow.Grains.FlashSales;

namespace OrderFlow.Tests;

/// <summary>The drain's pace (sliding window and catch-up bucket), on a clock the test drives: counts per window, never wall-clock time.</summary>
public sealed class DrainPacerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan BurstWindow = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Drives the pacer for <paramref name="seconds"/> with ticks late by up to <paramref name="jitterMs"/>, each tick
    /// launching what it was allowed <paramref name="tickTakesMs"/> after it asked (it awaits the shards); returns each launch's time.
    /// </summary>
    private static List<long> Run(DrainPacer pacer, double seconds, int jitterMs, int seed, Func<long, double?>? rateAt = null,
        int tickTakesMs = 0, TimeSpan? tick = null)
    {
        var random = new Random(seed);
        var takes = new List<long>();
        var now = 0L;
        while (now < TimeSpan.FromSeconds(seconds).Ticks)
        {
            now += (tick ?? Tick).Ticks + TimeSpan.FromMilliseconds(random.Next(0, jitterMs + 1)).Ticks;
            if (rateAt?.Invoke(now) is { } rate && rate != pacer.Rate)
            {
                pacer.SetRate(rate, now);
            }

            var n = pacer.Available(now);
            now += TimeSpan.FromMilliseconds(tickTakesMs).Ticks;
            pacer.Take(n, now);
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
    [InlineData(1, 0)]
    [InlineData(7, 0)]
    [InlineData(500, 0)]
    [InlineData(505, 0)]
    [InlineData(5_000, 0)]
    [InlineData(500, 120)]
    [InlineData(5_000, 120)]
    public void No_one_second_window_holds_more_than_the_rate_and_the_drain_keeps_up(int rate, int tickTakesMs)
    {
        var takes = Run(new DrainPacer(rate, BurstWindow, 0), seconds: 20, jitterMs: 30, seed: rate, tickTakesMs: tickTakesMs);

        // Any one-second span of launches: the cap itself, nothing above it, also when launches come long after the decision.
        Assert.True(MaxInOneSecond(takes) <= rate, $"{MaxInOneSecond(takes)} in one second at {rate}/s");
        // And it keeps up: over 20 s within 10 % of the rate however late the ticks come. A launch 120 ms after its
        // decision stays in the window 120 ms longer than the decision saw, and that much of the pace goes (about 12 %).
        Assert.InRange(takes.Count, rate * 20 * (tickTakesMs == 0 ? 0.9 : 0.8), rate * 20 + 1);
    }

    [Fact]
    public void A_drain_whose_ticks_come_200_ms_apart_still_keeps_the_cap_pace()
    {
        // A drainer busy awaiting its shards under a burst of admissions: one tick every 200 ms. The first pacer (a 40 ms
        // bucket alone) took 21 per tick here, 105 orders/s under a cap of 500.
        var takes = Run(new DrainPacer(500, BurstWindow, 0), seconds: 20, jitterMs: 0, seed: 1, tick: TimeSpan.FromMilliseconds(200));

        Assert.InRange(takes.Count, 500 * 20 * 0.95, 500 * 20 + 1);
        Assert.True(MaxInOneSecond(takes) <= 500, $"{MaxInOneSecond(takes)} in one second");
    }

    [Fact]
    public void A_rate_change_applies_from_the_change_on()
    {
        var change = TimeSpan.FromSeconds(10).Ticks;
        var takes = Run(new DrainPacer(100, BurstWindow, 0), seconds: 20, jitterMs: 10, seed: 1, rateAt: now => now >= change ? 1_000 : null);

        var before = takes.Where(t => t < change).ToList();
        var after = takes.Where(t => t >= change).ToList();
        Assert.True(MaxInOneSecond(before) <= 100, $"{MaxInOneSecond(before)} in one second at 100/s");
        Assert.True(MaxInOneSecond(after) <= 1_000, $"{MaxInOneSecond(after)} in one second at 1,000/s");
        Assert.InRange(after.Count, 9_000, 10_001);

        // Lowered, the orders of the last second count against the new rate at once.
        var pacer = new DrainPacer(1_000, BurstWindow, 0);
        var now = 0L;
        for (var i = 0; i < 100; i++)
        {
            now += Tick.Ticks;
            pacer.Take(pacer.Available(now), now);
        }

        pacer.SetRate(100, now);
        Assert.True(pacer.InWindow > 100, $"{pacer.InWindow} taken in the last second");
        Assert.Equal(0, pacer.Available(now + Tick.Ticks));
    }

    [Fact]
    public void A_stalled_drain_catches_up_a_quarter_second_at_once_not_the_lost_time()
    {
        var pacer = new DrainPacer(1_000, BurstWindow, 0);

        var afterStall = pacer.Available(TimeSpan.FromSeconds(30).Ticks);

        Assert.Equal(251, afterStall); // 250 ms worth and the carry, not 30,000 (nor the whole second's 1,000)
    }
}
