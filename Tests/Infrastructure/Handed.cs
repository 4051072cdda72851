using System.Reflection;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// How many of an order's events each subscriber's handler runs for (<see cref="HandlesOnlyAttribute"/>): every event of a
/// kind it declares, and the order's final one. The order's events are given by their kind letters in sequence
/// (<c>"PASR"</c>: placed, paid, shipped, received).
/// </summary>
public static class Handed
{
    private static readonly IReadOnlyDictionary<string, string?> KindsByName = typeof(OrderSubscriberGrain).Assembly.GetTypes()
        .Concat(typeof(Handed).Assembly.GetTypes())
        .Where(t => !t.IsAbstract && typeof(OrderSubscriberGrain).IsAssignableFrom(t) && t.GetCustomAttribute<GrainTypeAttribute>() is not null)
        .ToDictionary(t => t.GetCustomAttribute<GrainTypeAttribute>()!.GetGrainType(null!, t).ToString()!, HandlesOnlyAttribute.KindsOf);

    public const string FullLifecycle = "PASR";

    public static long Runs(string subscriber, string orderKinds) =>
        orderKinds.Count(kind => KindsByName[subscriber] is not { } kinds || kinds.Contains(kind) || kind is 'R' or 'C');
}
