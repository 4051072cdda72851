using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>The order's part in the outbox relay (<see cref="OrderRelayGrain"/>, <see cref="RelayDriverGrain"/>).</summary>
public sealed partial class OrderGrain : IOrderSettleGrain
{
    private IOrderRelayGrain Relay => GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(OrderId));

    /// <summary>
    /// Publishes what is left in the outbox and says how far the order is. A short turn on purpose: the subscribers are
    /// asked by the relay driver, never from inside this grain, because a subscriber may be reading this order's log
    /// at that moment (catch-up, gap repair) and two grains waiting on each other would stall both.
    /// </summary>
    public async Task<(long LastSequence, long PublishedSequence)> FlushOutboxAsync()
    {
        if (State.PublishedSequence < State.LastSequence)
        {
            await PublishOutboxAsync();
        }

        return (State.LastSequence, State.PublishedSequence);
    }
}
