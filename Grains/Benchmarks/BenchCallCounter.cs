using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Benchmarks;

/// <summary>
/// Counts the grain calls this silo takes, by target grain type: grains, Orleans' system targets (stream agents, the
/// reminder service) and the memory streams' queue grains alike, from clients and from grains. On a silo started with
/// <c>Benchmarks:Enabled=true</c> only (elsewhere it is not in the call path at all), read by the bench through
/// <see cref="IBenchControlGrain.GetGrainCallsAsync"/> before and after a phase: grain calls per order event, a figure
/// that does not move with the machine's speed (the embedded profile's analogue of storage requests per event).
/// </summary>
public sealed class BenchCallCounter : IIncomingGrainCallFilter
{
    private readonly ConcurrentDictionary<GrainType, StrongBox<long>> _calls = new();

    public Task Invoke(IIncomingGrainCallContext context)
    {
        Interlocked.Increment(ref _calls.GetOrAdd(context.TargetId.Type, static _ => new StrongBox<long>()).Value);
        return context.Invoke();
    }

    /// <summary>Calls taken since the silo started, one row per target grain type, most first.</summary>
    public IReadOnlyList<GrainCallCount> Snapshot() =>
        _calls.Select(pair => new GrainCallCount(pair.Key.ToString()!, Volatile.Read(ref pair.Value.Value)))
            .OrderByDescending(c => c.Calls).ThenBy(c => c.GrainType, StringComparer.Ordinal)
            .ToArray();
}
