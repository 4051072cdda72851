using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Orders;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace OrderFlow.Grains.Messaging;

/// <summary>The order's dispatcher (grain type <c>order-dispatch</c>): fed by the stream only, it has no calls of its own.</summary>
[Alias("messaging.IOrderDispatcherGrain")]
public interface IOrderDispatcherGrain : IGrainWithStringKey;

/// <summary>
/// The order's fan-out with <c>OrderMessaging:FanOut=Dispatcher</c> (the default): the only implicit subscriber of the
/// order's stream in <see cref="OrderStreams.DispatchNamespace"/>, one activation per order, keyed by the order id. It
/// takes each event from the stream once and hands it to every subscriber grain of the order
/// (<see cref="SubscriberCatalog"/>: the six built-in ones and any a silo adds) in parallel, and acknowledges the
/// delivery only after every one of them has taken it: stored its outcome, or applied it with its progress to be
/// written later (an event with nothing to do, or a subscriber with keyed effects: <see cref="KeyedEffectsAttribute"/>).
/// If one fails (its inbox write failed), the delivery fails and the stream delivers it again; subscribers that already hold it drop it as a duplicate, and this
/// activation does not even ask them again. So it adds no state and no guarantee of its own: ordering, dedupe and
/// retries stay in each subscriber grain; what it saves is five of every six stream deliveries (docs/BENCHMARKS.md).
/// When every subscriber answers that it applied the event with its effects durable, it tells the order's relay shard,
/// which then forgets the order without a settle check of its own (no read of the order's inboxes); otherwise the relay
/// checks as always.
/// A subscriber's handler failing is not a delivery failure (the subscriber records and retries it itself), so one
/// failing subscriber does not hold up the others; per-order isolation is unchanged, the dispatcher being per order.
/// </summary>
[GrainType("order-dispatch"), ImplicitStreamSubscription(OrderStreams.DispatchNamespace)]
public sealed partial class OrderDispatcherGrain(SubscriberCatalog catalog, RelayBatcher relay, ILogger<OrderDispatcherGrain> logger)
    : Grain, IOrderDispatcherGrain, IStreamSubscriptionObserver, IAsyncObserver<OrderEvent>
{
    private static readonly Task<bool> NotAsked = Task.FromResult(false);

    // Left out as having nothing to do for the event (and having taken everything before it): counts as taken.
    private static readonly Task<bool> NothingToAsk = Task.FromResult(true);

    private IOrderSubscriberGrain[]? _subscribers;
    private string?[]? _kinds;

    // How far each subscriber is known, by this activation, to have taken the order's events: its answers, and the events
    // it was left out of with nothing to do. 0 for a new activation, which then leaves a subscriber out only of events it
    // can step over from the order's first (its placement); later ones it hands over as before.
    private long[] _taken = [];

    // The event whose delivery failed last and which subscribers stored it anyway, so its redelivery asks only the
    // others. Cleared by a delivery that succeeds: any later copy goes to every subscriber, which drops and counts it as
    // a duplicate exactly as with a stream subscription of its own.
    private long _sequence;
    private bool[] _stored = [];

    private IOrderSubscriberGrain[] Subscribers => _subscribers ??= catalog.Names
        .Select(name => catalog.GrainOf(GrainFactory, name, this.GetPrimaryKeyString()))
        .ToArray();

    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        handleFactory.Create<OrderEvent>().ResumeAsync(this);

    // What each subscriber handles (HandlesOnlyAttribute), in the order of Subscribers.
    private string?[] Kinds => _kinds ??= catalog.Names.Select(catalog.KindsOf).ToArray();

    public async Task OnNextAsync(OrderEvent item, StreamSequenceToken? token = null)
    {
        var (subscribers, kinds) = (Subscribers, Kinds);
        if (item.Sequence != _sequence || _stored.Length != subscribers.Length)
        {
            _sequence = item.Sequence;
            _stored = new bool[subscribers.Length];
        }

        if (_taken.Length != subscribers.Length)
        {
            _taken = new long[subscribers.Length];
        }

        var calls = new Task<bool>[subscribers.Length];
        for (var i = 0; i < subscribers.Length; i++)
        {
            if (_stored[i])
            {
                calls[i] = NotAsked;
            }
            else if (HandlesOnlyAttribute.MustDeliver(kinds[i], item)
                     || HandlesOnlyAttribute.SkippableThrough(kinds[i], _taken[i], item) < item.Sequence - 1)
            {
                // Its kind, or one this activation cannot vouch the subscriber has everything before (an event the stream
                // gave up on for it, or a new activation that never saw it take the order's earlier events): asked, it steps
                // over the event or holds it behind what it lacks, as it would without HandlesOnly.
                calls[i] = subscribers[i].DeliverAsync(item);
            }
            else
            {
                // Nothing to do for this kind of event (and it is not the order's last), and it took everything before it
                // that it handles: not asked. It steps over the event when a later one arrives, by the kinds that event
                // carries (HandlesOnlyAttribute). (The order counted it done for its lag when it published it.)
                calls[i] = NothingToAsk;
                _stored[i] = true;
            }
        }

        try
        {
            await Task.WhenAll(calls);
        }
        catch (Exception ex)
        {
            for (var i = 0; i < calls.Length; i++)
            {
                _stored[i] |= calls[i].IsCompletedSuccessfully;
                if (calls[i].IsCompletedSuccessfully && calls[i].Result && !ReferenceEquals(calls[i], NotAsked))
                {
                    _taken[i] = Math.Max(_taken[i], item.Sequence);
                }
            }

            LogDeliveryFailed(ex, this.GetPrimaryKeyString(), item.Sequence, calls.Count(c => !c.IsCompletedSuccessfully));
            throw; // the stream delivers the event again
        }

        for (var i = 0; i < calls.Length; i++)
        {
            if (calls[i].Result && !ReferenceEquals(calls[i], NotAsked))
            {
                _taken[i] = Math.Max(_taken[i], item.Sequence);
            }
        }

        if (calls.All(c => c.Result))
        {
            // Every subscriber applied the event with its effects durable (all of them asked in this delivery): the relay,
            // which holds the order since it marked this event, can forget it without a check (it keeps it if a later
            // event is marked). So an open order leaves the relay as soon as its latest event is delivered, not after
            // SettleAfter and a settle of its own.
            // Best effort, with other orders' deliveries and marks to the shard (RelayBatcher).
            relay.Delivered(this.GetPrimaryKeyString(), item.Sequence);
        }

        _sequence = 0;
        if (item.IsFinal)
        {
            // Every subscriber stored the order's last event: nothing more is coming (a late duplicate reactivates).
            DeactivateOnIdle();
        }
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: event #{Sequence} was not stored by {Failed} subscriber(s); the stream delivers it again")]
    private partial void LogDeliveryFailed(Exception exception, string orderId, long sequence, int failed);
}
