using OrderFlow.Contracts;
using Orleans.Streams;

namespace OrderFlow.Grains.Messaging;

/// <summary>
/// Puts an order's event on its stream. A seam for tests and drills that want to model a misbehaving transport
/// (duplicates, reordering, drops); production uses <see cref="StreamOrderEventPublisher"/>.
/// </summary>
public interface IOrderEventPublisher
{
    /// <summary>Completes once the transport has accepted the event; throws if it did not.</summary>
    Task PublishAsync(IAsyncStream<OrderEvent> stream, OrderEvent evt);
}

/// <summary>Publishes straight to the Orleans stream.</summary>
public sealed class StreamOrderEventPublisher : IOrderEventPublisher
{
    public async Task PublishAsync(IAsyncStream<OrderEvent> stream, OrderEvent evt)
    {
        // Persistent stream providers carry the caller's RequestContext inside each queue message; a caller controls
        // it, so it could make a message too big to ever enqueue. Events travel without it. (The change stays inside
        // this async method: the command's own context is untouched.)
        RequestContext.Clear();
        await stream.OnNextAsync(evt);
    }
}
