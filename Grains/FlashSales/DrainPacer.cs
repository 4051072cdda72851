namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The drain's token bucket: <see cref="Rate"/> tokens per second, at most <see cref="Burst"/> held, one token per order
/// created. Over any span of <c>t</c> seconds the drain takes at most <c>Rate × t + Burst</c> tokens, and the burst is
/// <c>Rate × burst window + 1</c> (the one carries a fraction of a token across a tick, which a cap of exactly
/// <c>Rate × window</c> would throw away at low rates), so a one-second window sees at most
/// <c>Rate × (1 + burst window) + 1</c>: with the 40 ms window, within the cap + 5 % from 100 orders/s up. The drainer
/// ticks more often than that (10 ms), so a tick up to 30 ms late loses no tokens and the drain keeps up with the cap.
/// <para>
/// Not <c>System.Threading.RateLimiting.TokenBucketRateLimiter</c>: it adds whole tokens per replenishment period, so
/// 505 orders/s at a 10 ms tick (5.05 per period) cannot be expressed without drifting by up to 1 %/period, and a rate
/// change means a new limiter. The drainer asks one question per tick — how many may I take now — which this answers
/// exactly, with fractional tokens, on the drainer's own clock (so tests can drive it).
/// </para>
/// </summary>
public sealed class DrainPacer(double rate, TimeSpan burstWindow, long nowTicks)
{
    private double _tokens;
    private long _last = nowTicks;

    public double Rate { get; private set; } = rate;

    public double Burst => Rate * burstWindow.TotalSeconds + 1;

    /// <summary>Whole tokens available at <paramref name="nowTicks"/> (<see cref="TimeSpan.Ticks"/> of a monotonic clock).</summary>
    public int Available(long nowTicks)
    {
        Refill(nowTicks);
        return (int)Math.Floor(_tokens);
    }

    /// <summary>Spends <paramref name="count"/> tokens (at most what <see cref="Available"/> said).</summary>
    public void Take(int count) => _tokens = Math.Max(0, _tokens - count);

    /// <summary>A new rate from now on; tokens already earned are kept, within the new burst.</summary>
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
}
