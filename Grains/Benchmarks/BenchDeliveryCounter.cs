namespace OrderFlow.Grains.Benchmarks;

/// <summary>Counts the trivial bench deliveries on this silo, so the bench knows when its stream baseline has drained.</summary>
public sealed class BenchDeliveryCounter
{
    private long _deliveries;

    public long Deliveries => Volatile.Read(ref _deliveries);

    public void Delivered() => Interlocked.Increment(ref _deliveries);
}
