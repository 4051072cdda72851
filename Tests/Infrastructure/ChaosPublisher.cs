using System.Collections.Concurrent;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using Orleans.Streams;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// A test-only transport that misbehaves on purpose, chosen by the order id's prefix:
/// <c>dup-</c> delivers every event twice; <c>swap-</c> delivers each pair (1,2), (3,4)... as (2,1), (4,3);
/// <c>perm-</c> holds an order's first four events and delivers them in a random order with random duplicates;
/// <c>drop-</c> loses event 2 (accepted, never delivered). Any other order is delivered as is.
/// </summary>
public sealed class ChaosPublisher : IOrderEventPublisher
{
    private readonly ConcurrentDictionary<string, List<OrderEvent>> _held = new(StringComparer.Ordinal);

    public async Task PublishAsync(IAsyncStream<OrderEvent> stream, OrderEvent evt)
    {
        var id = evt.OrderId;
        if (id.StartsWith("dup-", StringComparison.Ordinal))
        {
            await stream.OnNextAsync(evt);
            await stream.OnNextAsync(evt);
        }
        else if (id.StartsWith("swap-", StringComparison.Ordinal))
        {
            var held = _held.GetOrAdd(id, _ => []);
            if (evt.Sequence % 2 == 1)
            {
                held.Add(evt);
                return;
            }

            await stream.OnNextAsync(evt);
            foreach (var earlier in held)
            {
                await stream.OnNextAsync(earlier);
            }

            held.Clear();
        }
        else if (id.StartsWith("perm-", StringComparison.Ordinal))
        {
            var held = _held.GetOrAdd(id, _ => []);
            held.Add(evt);
            if (held.Count < 4)
            {
                return;
            }

            var random = new Random(id.GetHashCode(StringComparison.Ordinal));
            var deliveries = held.Concat(held.Where(_ => random.Next(3) == 0)).OrderBy(_ => random.Next()).ToArray();
            held.Clear();
            foreach (var delivery in deliveries)
            {
                await stream.OnNextAsync(delivery);
            }
        }
        else if (id.StartsWith("drop-", StringComparison.Ordinal) && evt.Sequence == 2)
        {
            // Lost by the transport after it said yes.
        }
        else
        {
            await stream.OnNextAsync(evt);
        }
    }
}
