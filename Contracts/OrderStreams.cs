using Orleans.Runtime;

namespace OrderFlow.Contracts;

/// <summary>
/// The one place that names the order stream: provider, namespace and stream id.
/// </summary>
public static class OrderStreams
{
    /// <summary>Name of the stream provider that carries order events.</summary>
    public const string ProviderName = "orders";

    /// <summary>
    /// Stream namespace of order events delivered to each subscriber grain by its own implicit subscription
    /// (fan-out <c>PerSubscriber</c>); the stream key is the order id.
    /// </summary>
    public const string Namespace = "orders";

    /// <summary>
    /// Stream namespace of order events delivered once to the order's dispatcher grain, which hands each event to every
    /// subscriber grain of the order (fan-out <c>Dispatcher</c>, the default); the stream key is the order id.
    /// </summary>
    public const string DispatchNamespace = "orders.dispatch";

    /// <summary>The stream of one order's events, per-subscriber namespace.</summary>
    public static StreamId ForOrder(string orderId) => StreamId.Create(Namespace, orderId);

    /// <summary>The stream of one order's events in <paramref name="streamNamespace"/>.</summary>
    public static StreamId ForOrder(string orderId, string streamNamespace) => StreamId.Create(streamNamespace, orderId);
}
