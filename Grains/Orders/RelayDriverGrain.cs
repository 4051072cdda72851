using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// Settles one order for the relay: the order flushes its outbox (a short turn of its own), then every subscriber that
/// storage does not already show at the end is handed the order's log and asked to reach its last event
/// (<see cref="IOrderSubscriberGrain.ReachAsync"/>); the outcome goes back one-way to the order's shard. A stateless,
/// reentrant worker: it holds no grain's turn while it waits, so nothing can wait on it in a cycle. How many settles run
/// at once is bounded by the shards (<c>BatchSize</c> per shard per period).
/// </summary>
[StatelessWorker, Reentrant]
[GrainType("relay-driver")]
public sealed partial class RelayDriverGrain(SubscriberCatalog catalog, ILogger<RelayDriverGrain> logger) : Grain, IRelayDriverGrain
{
    public async Task SettleAsync(string orderId)
    {
        var shard = GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(orderId));
        try
        {
            await shard.ReportAsync(await SettleCoreAsync(orderId));
        }
        catch (Exception ex)
        {
            // The shard asks again at its next check of this order.
            LogSettleFailed(ex, orderId);
        }
    }

    private async Task<SettleReport> SettleCoreAsync(string orderId)
    {
        var order = GrainFactory.GetGrain<IOrderSettleGrain>(orderId);
        var (last, published) = await order.FlushOutboxAsync();
        if (last == 0 || published < last)
        {
            return new SettleReport(orderId, last, last == 0 ? [] : ["outbox"], []);
        }

        // What storage already proves needs no activation: an inbox stored Finished, or stored at the last event. Only
        // the others are asked (their progress over events with nothing to do, or with keyed effects, may be in memory only).
        var stored = (await GrainFactory.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([orderId]))[0]
            .Subscribers.ToDictionary(s => s.Subscriber, StringComparer.Ordinal);
        var open = catalog.Names.Where(name => !(stored.TryGetValue(name, out var inbox) && (inbox.Finished || inbox.AppliedSequence >= last))).ToArray();
        if (open.Length == 0)
        {
            return new SettleReport(orderId, last, [], []);
        }

        var log = await GrainFactory.GetGrain<IOrderGrain>(orderId).GetEventsAsync(0);
        var outcomes = await Task.WhenAll(open.Select(async name =>
        {
            try
            {
                return (Name: name, Outcome: await catalog.GrainOf(GrainFactory, name, orderId).ReachAsync(log));
            }
            catch (Exception ex)
            {
                LogReachFailed(ex, orderId, name);
                return (Name: name, Outcome: ReachOutcome.Behind);
            }
        }));
        return new SettleReport(orderId, log.Count == 0 ? last : Math.Max(last, log[^1].Sequence),
            outcomes.Where(o => o.Outcome == ReachOutcome.Behind).Select(o => o.Name).ToArray(),
            outcomes.Where(o => o.Outcome == ReachOutcome.Parked).Select(o => o.Name).ToArray());
    }

    // Debug: under load or an outage every held order fails its settle every few seconds; the shard's entry (checks,
    // who is behind) and `subscribers status` are the operator's view.
    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay could not settle order {OrderId}; its shard asks again")]
    private partial void LogSettleFailed(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Order {OrderId}: subscriber {Subscriber} could not be brought to the last event; the relay asks again")]
    private partial void LogReachFailed(Exception exception, string orderId, string subscriber);
}
