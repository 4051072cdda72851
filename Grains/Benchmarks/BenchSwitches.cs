namespace OrderFlow.Grains.Benchmarks;

/// <summary>
/// Bench-only switches of this silo, all off by default and off on every silo the bench did not change. Set only through
/// <see cref="BenchControlGrain"/> (<c>IBenchControlGrain.SetSkipReservationsAsync</c>), which exists only on a silo
/// started with <c>Benchmarks:Enabled=true</c>: on any other silo nothing can turn a switch on.
/// </summary>
public sealed class BenchSwitches
{
    private volatile bool _skipReservations;

    /// <summary>
    /// Bench only (<c>bench --workload consistency</c>, the "with vs without reservations" ratio): when on, a placement
    /// reserves no stock and no coupon use and goes straight to the order's write. Breaks the stock and coupon
    /// guarantees while on; the bench turns it off again in a <c>finally</c>.
    /// </summary>
    public bool SkipReservations
    {
        get => _skipReservations;
        set => _skipReservations = value;
    }
}
