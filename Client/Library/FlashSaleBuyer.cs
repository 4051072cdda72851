using System.Threading.Channels;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>How <see cref="FlashSaleBuyer"/> groups requests. The defaults suit a burst of many buyers from one service.</summary>
public sealed record FlashSaleBuyerOptions
{
    /// <summary>Most requests in one call (at most <see cref="FlashSaleLimits.MaxBuyBatch"/>, the default).</summary>
    public int MaxBatch { get; init; } = FlashSaleLimits.MaxBuyBatch;

    /// <summary>Calls in flight at once; requests that come meanwhile wait and go together in the next call. Default 8.</summary>
    public int MaxInFlight { get; init; } = 8;

    /// <summary>Most requests waiting for a call; a buy beyond that waits for room (back-pressure on the caller). Default 10,000.</summary>
    public int MaxWaiting { get; init; } = 10_000;
}

/// <summary>
/// Buys in one sale for many buyers at once: each <see cref="BuyAsync"/> is answered exactly as
/// <see cref="IFlashSaleGrain.BuyAsync"/> would answer it, but concurrent buys share one
/// <see cref="IFlashSaleGrain.BuyManyAsync"/> call. No timer: when a call slot is free, whatever is waiting goes at
/// once (a lone buyer pays no delay); while <see cref="FlashSaleBuyerOptions.MaxInFlight"/> calls are out, the requests
/// that arrive gather into the next one, so a burst costs one gateway call per batch instead of one per buyer (the
/// producer batching of Kafka and RocketMQ, without a linger). When a call fails (a timeout, the silo gone), every buy
/// in it fails with that error, as a single buy would; sending it again with the same request id is safe (the sale
/// answers a request it queued <see cref="AdmissionOutcome.Duplicate"/>, with its ticket). Thread-safe; one per sale.
/// </summary>
public sealed class FlashSaleBuyer : IAsyncDisposable
{
    private readonly IFlashSaleGrain _sale;
    private readonly Channel<Waiting> _waiting;
    private readonly SemaphoreSlim _slots;
    private readonly int _maxBatch;
    private readonly int _maxInFlight;
    private readonly Task _pump;
    private Task? _disposing;
    private long _calls;
    private long _sent;

    public FlashSaleBuyer(IGrainFactory grains, string saleId, FlashSaleBuyerOptions? options = null)
        : this((grains ?? throw new ArgumentNullException(nameof(grains))).GetGrain<IFlashSaleGrain>(saleId), options)
    {
    }

    /// <summary>Buys through <paramref name="sale"/> (a grain reference, or anything that answers as one).</summary>
    public FlashSaleBuyer(IFlashSaleGrain sale, FlashSaleBuyerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sale);
        options ??= new FlashSaleBuyerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatch, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxBatch, FlashSaleLimits.MaxBuyBatch, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInFlight, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxWaiting, 1, nameof(options));
        _sale = sale;
        _maxBatch = options.MaxBatch;
        _maxInFlight = options.MaxInFlight;
        _slots = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        _waiting = Channel.CreateBounded<Waiting>(new BoundedChannelOptions(options.MaxWaiting)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Calls made so far.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Requests sent so far (over <see cref="Calls"/>: the mean batch).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>
    /// Buys one unit for <paramref name="userId"/> under <paramref name="requestId"/> (its idempotency key). The
    /// answer is the sale's own; <paramref name="cancellationToken"/> only stops waiting for room to send it.
    /// </summary>
    public async Task<AdmissionResult> BuyAsync(string userId, string requestId, CancellationToken cancellationToken = default)
    {
        var waiting = new Waiting(new BuyRequest(userId, requestId));
        try
        {
            await _waiting.Writer.WriteAsync(waiting, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(FlashSaleBuyer));
        }

        return await waiting.Answer.Task.ConfigureAwait(false);
    }

    private async Task PumpAsync()
    {
        var reader = _waiting.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Waiting for a free slot is what gathers a batch: the requests that come meanwhile go together.
            await _slots.WaitAsync().ConfigureAwait(false);
            var batch = new List<Waiting>(Math.Min(_maxBatch, Math.Max(1, reader.Count)));
            while (batch.Count < _maxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            if (batch.Count == 0)
            {
                _slots.Release();
                continue;
            }

            _ = SendAsync(batch);
        }
    }

    private async Task SendAsync(List<Waiting> batch)
    {
        try
        {
            Interlocked.Increment(ref _calls);
            Interlocked.Add(ref _sent, batch.Count);
            var answers = await _sale.BuyManyAsync(batch.ConvertAll(w => w.Request)).ConfigureAwait(false);
            if (answers?.Count != batch.Count)
            {
                throw new InvalidOperationException($"the flash sale answered {answers?.Count ?? 0} of {batch.Count} requests");
            }

            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Answer.TrySetResult(answers![i]);
            }
        }
        catch (Exception ex)
        {
            foreach (var waiting in batch)
            {
                waiting.Answer.TrySetException(ex);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Takes no more buys; returns once every buy taken has its answer or its error (every call, the first or not).</summary>
    public ValueTask DisposeAsync()
    {
        lock (_waiting)
        {
            _disposing ??= DisposeCoreAsync();
        }

        return new ValueTask(_disposing);
    }

    private async Task DisposeCoreAsync()
    {
        _waiting.Writer.TryComplete();
        await _pump.ConfigureAwait(false);
        for (var i = 0; i < _maxInFlight; i++)
        {
            await _slots.WaitAsync().ConfigureAwait(false);
        }

        _slots.Dispose();
    }

    private sealed class Waiting(BuyRequest request)
    {
        public BuyRequest Request { get; } = request;

        public TaskCompletionSource<AdmissionResult> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
