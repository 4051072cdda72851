using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Orders;

/// <summary>The order's part in the outbox relay (<see cref="OrderRelayGrain"/>).</summary>
public sealed partial class OrderGrain : IOrderSettleGrain
{
    private IOrderRelayGrain Relay => GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(OrderId));

    /// <summary>
    /// Publishes what is left in the outbox, then asks every subscriber to reach the last event, handing it the log
    /// (so the subscriber never calls back into this busy grain), and reports the outcome to the relay shard. A
    /// subscriber parked on this order holds its events for an operator: that is not the relay's to push.
    /// </summary>
    public async Task SettleAsync()
    {
        var last = State.LastSequence;
        var behind = new List<string>();
        var parked = new List<string>();
        if (last > 0)
        {
            await PublishOutboxAsync();
            if (State.PublishedSequence < last)
            {
                behind.Add("outbox");
            }
            else
            {
                var catalog = ServiceProvider.GetRequiredService<SubscriberCatalog>();
                var log = State.Events.ToArray();
                var outcomes = await Task.WhenAll(catalog.Names.Select(async name =>
                {
                    try
                    {
                        catalog.TryGet(name, out var grainType);
                        return (name, await GrainFactory.GetGrain<IOrderSubscriberGrain>(GrainId.Create(grainType, OrderId)).ReachAsync(log));
                    }
                    catch (Exception ex)
                    {
                        LogReachFailed(ex, OrderId, name);
                        return (name, ReachOutcome.Behind);
                    }
                }));
                behind.AddRange(outcomes.Where(o => o.Item2 == ReachOutcome.Behind).Select(o => o.name));
                parked.AddRange(outcomes.Where(o => o.Item2 == ReachOutcome.Parked).Select(o => o.name));
            }
        }

        await Relay.ReportAsync(new SettleReport(OrderId, last, behind, parked));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: subscriber {Subscriber} could not be brought to the last event; the relay asks again")]
    private partial void LogReachFailed(Exception exception, string orderId, string subscriber);
}
