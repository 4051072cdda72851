namespace OrderFlow.Grains.Benchmarks;

/// <summary>
/// Section <c>Benchmarks</c>. Off by default: the bench control grain can slow subscribers and force full garbage
/// collections, which no production silo should allow a client to do. <c>./bench.sh</c> turns it on for its own silo.
/// </summary>
public sealed class BenchmarkOptions
{
    public const string SectionName = "Benchmarks";

    /// <summary>Whether <see cref="BenchControlGrain"/> answers. Default false.</summary>
    public bool Enabled { get; set; }
}
