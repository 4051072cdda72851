using Orleans.Runtime;

namespace OrderFlow.Contracts;

/// <summary>
/// The one place that names the order stream: provider, namespace and stream id.
/// </summary>
public static class OrderStreams
{
    /// <summary>Name of the stream provider that carries order events.</summary>
    public const string ProviderName = "orders";

    /// <summary>Stream namespace of order events; the stream key is the order id.</summary>
    public const string Namespace = "orders";

    /// <summary>The stream of one order's events.</summary>
    public static StreamId ForOrder(string orderId) => StreamId.Create(Namespace, orderId);
}
