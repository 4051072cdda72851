using OrderFlow.Contracts;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace OrderFlow.Grains.Benchmarks;

/// <summary>The trivial grain call: no state, no I/O. Its calls per second are the gateway's ceiling for order commands.</summary>
[GrainType("bench-echo")]
public sealed class BenchEchoGrain : Grain, IBenchEchoGrain
{
    public Task<int> PingAsync(int value) => Task.FromResult(value);
}

/// <summary>
/// Publishes to one bench stream, like an order grain publishes its outbox but with no state and no write: the
/// producer side of the stream baseline.
/// </summary>
[GrainType("bench-producer")]
public sealed class BenchProducerGrain : Grain, IBenchProducerGrain
{
    private IAsyncStream<BenchEvent>? _stream;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _stream = this.GetStreamProvider(OrderStreams.ProviderName).GetStream<BenchEvent>(BenchStreams.For(this.GetPrimaryKeyString()));
        return Task.CompletedTask;
    }

    public Task PublishAsync(long sequence)
    {
        if (sequence == BenchEvent.LastSequence)
        {
            // The stream's last event: leave memory as a finished order's grains do, so that the phases after the
            // baseline do not run beside thousands of idle baseline activations (docs/BENCHMARKS.md, tail latency).
            DeactivateOnIdle();
        }

        return _stream!.OnNextAsync(new BenchEvent(this.GetPrimaryKeyString(), sequence));
    }
}

/// <summary>Not an order subscriber on purpose (it does not implement <see cref="IOrderSubscriberGrain"/>): the catalog, <c>order show</c> and the demo never list it.</summary>
[Alias("bench.IBenchSubscriberGrain")]
public interface IBenchSubscriberGrain : IGrainWithStringKey;

/// <summary>
/// The trivial implicit subscriber of the bench namespace: it counts the delivery and returns. Its deliveries per
/// second are the stream provider's ceiling for the order subscribers, which do the same plus dedupe, a state write
/// and a handler.
/// </summary>
[GrainType("bench-subscriber"), ImplicitStreamSubscription(BenchStreams.Namespace)]
public sealed class BenchSubscriberGrain(BenchDeliveryCounter counter) : Grain, IBenchSubscriberGrain,
    IStreamSubscriptionObserver, IAsyncObserver<BenchEvent>
{
    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        handleFactory.Create<BenchEvent>().ResumeAsync(this);

    public Task OnNextAsync(BenchEvent item, StreamSequenceToken? token = null)
    {
        counter.Delivered();
        if (item.Sequence == BenchEvent.LastSequence)
        {
            DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
