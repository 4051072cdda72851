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

    /// <summary>
    /// Whether a bench silo counts the grain calls it takes (<see cref="BenchCallCounter"/>, the bench's grain calls per
    /// event). Default true. The counter is an incoming call filter, free beside the client filter but not without it:
    /// a silo started with <c>Security:RefuseClientCallsToInternalGrains=false</c> turns this off too to run with none.
    /// </summary>
    public bool CountGrainCalls { get; set; } = true;
}
