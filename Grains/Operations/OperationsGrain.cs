using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Operations;

/// <summary>
/// Operator and client queries across subscribers. Stateless: it fans out to the order grain, the subscriber
/// grains and the dead-letter indexes, so any silo can serve it.
/// </summary>
[StatelessWorker]
[GrainType("operations")]
public sealed class OperationsGrain(SubscriberCatalog catalog) : Grain, IOperationsGrain
{
    public Task<IReadOnlyList<string>> GetSubscribersAsync() => Task.FromResult(catalog.Names);

    public async Task<OrderReport> InspectAsync(string orderId)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        var order = GrainFactory.GetGrain<IOrderGrain>(orderId).GetAsync();
        var statuses = Task.WhenAll(catalog.Names.Select(name => Subscriber(name, orderId).GetStatusAsync()));
        var relay = GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(orderId)).FindAsync(orderId);
        return new OrderReport(await order, await statuses, await relay);
    }

    public async Task<IReadOnlyList<OrderReport>> InspectManyAsync(IReadOnlyList<string> orderIds)
    {
        ArgumentNullException.ThrowIfNull(orderIds);
        if (orderIds.Count > IOperationsGrain.MaxInspectBatch)
        {
            throw new ArgumentException($"at most {IOperationsGrain.MaxInspectBatch} orders per call, got {orderIds.Count}: page the rest", nameof(orderIds));
        }

        return await Task.WhenAll(orderIds.Select(InspectAsync));
    }

    /// <summary>
    /// The index's entries whose inbox is still parked. An entry whose inbox is not (a resolve that never reached the
    /// index) is removed from the index, unless the order was parked again meanwhile.
    /// </summary>
    public async Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? subscriber)
    {
        var names = subscriber is null ? catalog.Names : [subscriber];
        var lists = await Task.WhenAll(names.Where(n => catalog.TryGet(n, out _))
            .Select(name => GrainFactory.GetGrain<IDeadLetterIndexGrain>(name).ListAsync()));
        var letters = lists.SelectMany(list => list).ToArray();
        var parked = await Task.WhenAll(letters.Select(async letter =>
        {
            try
            {
                return (await Subscriber(letter.Subscriber, letter.OrderId).GetStatusAsync()).Parked;
            }
            catch (Exception)
            {
                // Unknown (its inbox could not be read just now): keep listing it rather than hide the whole list.
                return true;
            }
        }));
        foreach (var stale in letters.Where((_, i) => !parked[i]))
        {
            await GrainFactory.GetGrain<IDeadLetterIndexGrain>(stale.Subscriber).ResolveStaleAsync(stale);
        }

        return letters.Where((_, i) => parked[i]).ToArray();
    }

    public async Task<IReadOnlyList<SubscriberLag>> GetLagAsync()
    {
        var shards = await Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(n => GrainFactory.GetGrain<IOrderRelayGrain>(n).GetStatusAsync()));
        return catalog.Names.Concat(["outbox", "*"])
            .Select(name => new SubscriberLag(name,
                shards.Sum(s => s.BehindBySubscriber.GetValueOrDefault(name)),
                shards.Select(s => s.OldestBySubscriber.TryGetValue(name, out var since) ? since : (DateTimeOffset?)null).Min()))
            .ToArray();
    }

    public async Task<IReadOnlyDictionary<string, int>> CountDeadLettersAsync()
    {
        var names = catalog.Names;
        var counts = await Task.WhenAll(names.Select(name => GrainFactory.GetGrain<IDeadLetterIndexGrain>(name).CountAsync()));
        return names.Zip(counts).ToDictionary(pair => pair.First, pair => pair.Second);
    }

    public Task<DeadLetterActionResult> RetryAsync(string subscriber, string orderId) =>
        catalog.TryGet(subscriber, out _)
            ? Subscriber(subscriber, orderId).RetryParkedAsync()
            : Task.FromResult(Unknown(subscriber));

    public Task<DeadLetterActionResult> SkipAsync(string subscriber, string orderId, long sequence) =>
        catalog.TryGet(subscriber, out _)
            ? Subscriber(subscriber, orderId).SkipParkedAsync(sequence)
            : Task.FromResult(Unknown(subscriber));

    private IOrderSubscriberGrain Subscriber(string name, string orderId)
    {
        catalog.TryGet(name, out var grainType);
        return GrainFactory.GetGrain<IOrderSubscriberGrain>(GrainId.Create(grainType, orderId));
    }

    private DeadLetterActionResult Unknown(string subscriber) => new(DeadLetterActionOutcome.UnknownSubscriber,
        $"no subscriber named '{subscriber}'; known: {string.Join(", ", catalog.Names)}", null);
}
