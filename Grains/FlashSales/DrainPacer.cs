namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The drain's pace: at most <see cref="Rate"/> orders launched in <b>any</b> span of less than a second, without losing
/// pace to a tick that comes late. Two limits, both on the drainer's own clock (so tests can drive it):
/// <list type="bullet">
/// <item>a sliding window: the orders launched in the last second never exceed <c>floor(Rate)</c> (at least one) — the
///   cap itself, with no allowance above it;</item>
/// <item>a token bucket, <see cref="Rate"/> tokens per second, at most <see cref="Burst"/> held (<c>Rate × catch-up
///   window + 1</c>): how much a tick that came late, or a tick that itself took long (it awaits the shards), may take
///   at once to make up for the time it lost — a quarter of a second's worth by default (at most the rate + 1 however
///   it is set), so the back end does not see a whole second's orders in one instant.</item>
/// </list>
/// The first pacer here was the bucket alone with a 40 ms window: a window could hold rate × 1.04 + 1, and every tick
/// that came more than 40 ms after the last one lost tokens for good — under a burst of admissions the drainer's ticks
/// (each awaiting up to eight shards) came 50–200 ms apart and the drain ran at 150–370 orders/s under a cap of 500
/// (docs/BENCHMARKS.md, flash sale). Not <c>System.Threading.RateLimiting</c>'s limiters: the token bucket adds whole
/// tokens per period and the sliding window replenishes on its own timer, and neither takes the caller's clock.
/// </summary>
public sealed class DrainPacer
{
    private readonly TimeSpan _catchUpWindow;

    // What was launched in the last second, oldest first: one entry per group of launches (at most nine per tick).
    private readonly Queue<(long Ticks, int Count)> _taken = new();
    private int _inWindow;
    private double _tokens;
    private long _last;

    public DrainPacer(double rate, TimeSpan catchUpWindow, long nowTicks)
    {
        Rate = rate;
        _catchUpWindow = catchUpWindow;
        _last = nowTicks;
    }

    public double Rate { get; private set; }

    /// <summary>The most tokens held: what a late tick may take at once.</summary>
    public double Burst => Rate * _catchUpWindow.TotalSeconds + 1;

    /// <summary>Orders taken in the last second, as of the last call.</summary>
    public int InWindow => _inWindow;

    /// <summary>How many may be taken at <paramref name="nowTicks"/> (<see cref="TimeSpan.Ticks"/> of a monotonic clock).</summary>
    public int Available(long nowTicks)
    {
        Refill(nowTicks);
        Slide(nowTicks);
        var room = Math.Max(1, (int)Math.Floor(Rate)) - _inWindow;
        return Math.Max(0, Math.Min((int)Math.Floor(_tokens), room));
    }

    /// <summary>
    /// Records <paramref name="count"/> orders launched at <paramref name="nowTicks"/> (in all, at most what the last
    /// <see cref="Available"/> said). Recorded when they go out, not when they were allowed: then no span of launches
    /// shorter than a second holds more than the rate, since a launch that comes later than its decision only makes the
    /// room computed then smaller than needed, never larger.
    /// </summary>
    public void Take(int count, long nowTicks)
    {
        if (count <= 0)
        {
            return;
        }

        Refill(nowTicks);
        Slide(nowTicks);
        _tokens = Math.Max(0, _tokens - count);
        _taken.Enqueue((Math.Max(nowTicks, _last), count));
        _inWindow += count;
    }

    /// <summary>A new rate from now on; tokens already earned are kept, within the new burst, and the last second's orders count against it.</summary>
    public void SetRate(double rate, long nowTicks)
    {
        Refill(nowTicks);
        Rate = rate;
        _tokens = Math.Min(_tokens, Burst);
    }

    private void Refill(long nowTicks)
    {
        var elapsed = Math.Max(0, nowTicks - _last) / (double)TimeSpan.TicksPerSecond;
        _last = Math.Max(_last, nowTicks);
        _tokens = Math.Min(Burst, _tokens + elapsed * Rate);
    }

    /// <summary>Takes a second or more before <paramref name="nowTicks"/> leave the window (a span of one second holds what is less than a second apart).</summary>
    private void Slide(long nowTicks)
    {
        while (_taken.TryPeek(out var oldest) && nowTicks - oldest.Ticks >= TimeSpan.TicksPerSecond)
        {
            _taken.Dequeue();
            _inWindow -= oldest.Count;
        }
    }
}
