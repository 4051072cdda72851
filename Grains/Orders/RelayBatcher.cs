using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// A silo's traffic to the outbox relay's shards (<see cref="IOrderRelayGrain"/>), batched across orders: per shard at
/// most one call at a time, carrying every mark and delivery that arrived while the previous one was out (at most
/// <see cref="RelayBatch.MaxItems"/> of each). The shard stores a call's marks with one write (group commit).
/// <list type="bullet">
/// <item>A mark (<see cref="MarkAsync"/>) completes when the call that carried it has stored it, so "no event is stored
/// unmarked" holds exactly as with a call of its own; a refused mark (the shard full) throws for its order only.</item>
/// <item>A delivery (<see cref="Delivered"/>) rides with the next mark to its shard, or goes after
/// <see cref="OrderRelayOptions.DeliveredDelay"/> with whatever else gathered. It was one-way before and stays best effort:
/// one lost (a failed call, a silo gone) only leaves the shard to check the order itself, as it always could.</item>
/// </list>
/// Batches form only under load: a mark to an idle lane goes at once, from the caller's turn, through the single call
/// (<see cref="IOrderRelayGrain.MarkAsync"/>, which a shard on a silo not yet upgraded also knows), as a lone mark that
/// gathered does later. A batch that fails is sent again one mark at a time (a mark is
/// idempotent), so a failure is each order's own and an old shard still takes them. A mark waits for the calls ahead of
/// it in its lane (at most <see cref="RelayBatch.MaxItems"/> marks each; the lane holds at most one mark per order
/// activation, which awaits it). Batches run outside any grain's turn, so a batch never waits for an order's
/// activation, and carry no caller's request context (a batched mark is not a span of its command; a direct one is).
/// </summary>
public sealed partial class RelayBatcher
{
    /// <summary>Most deliveries one shard's lane holds while its calls are out; more are dropped (best effort: the shard checks those orders itself).</summary>
    public const int MaxWaitingDeliveries = 4 * RelayBatch.MaxItems;

    private readonly Lane[] _lanes = Enumerable.Range(0, IOrderRelayGrain.Shards).Select(_ => new Lane()).ToArray();
    private readonly IGrainFactory grains;
    private readonly IOptions<OrderRelayOptions> options;
    private readonly ILogger<RelayBatcher> logger;

    /// <summary>
    /// Registers the batcher's counts on the silo's <c>OrderFlow</c> meter (<paramref name="metrics"/>): calls, marks and
    /// deliveries sent (marks per call is the batch size an operator watches at a sale's midnight), deliveries dropped.
    /// </summary>
    public RelayBatcher(IGrainFactory grains, IOptions<OrderRelayOptions> options, ILogger<RelayBatcher> logger, SubscriberMetrics metrics)
    {
        (this.grains, this.options, this.logger) = (grains, options, logger);
        metrics.Meter.CreateObservableCounter("orderflow.relay.calls", () => Total(static lane => lane.Calls), "{call}",
            "Calls this silo made to the outbox relay's shards with marks and deliveries (with OrderRelay:Batch)");
        metrics.Meter.CreateObservableCounter("orderflow.relay.marks", () => Total(static lane => lane.MarksSent), "{mark}",
            "Relay marks this silo sent (one per order event, before its write)");
        metrics.Meter.CreateObservableCounter("orderflow.relay.deliveries", () => Total(static lane => lane.DeliveredSent), "{event}",
            "Deliveries this silo's dispatchers reported to the relay");
        metrics.Meter.CreateObservableCounter("orderflow.relay.deliveries_dropped", () => Total(static lane => lane.DeliveredDropped), "{event}",
            "Deliveries not reported because their shard's lane was full (the shard checks those orders itself)");
    }

    private OrderRelayOptions Options => options.Value;

    private long Total(Func<Lane, long> count)
    {
        var total = 0L;
        foreach (var lane in _lanes)
        {
            lock (lane)
            {
                total += count(lane);
            }
        }

        return total;
    }

    /// <summary>What this silo has sent to one shard through batches so far: calls, marks and deliveries (for tests and operators).</summary>
    public (long Calls, long Marks, long Delivered) SentTo(int shard)
    {
        var lane = _lanes[shard];
        lock (lane)
        {
            return (lane.Calls, lane.MarksSent, lane.DeliveredSent);
        }
    }

    /// <summary>Marks the order's event <paramref name="sequence"/> with its shard; completes once stored.</summary>
    public Task MarkAsync(string orderId, long sequence)
    {
        var shard = IOrderRelayGrain.ShardOf(orderId);
        if (!Options.Batch)
        {
            return grains.GetGrain<IOrderRelayGrain>(shard).MarkAsync(orderId, sequence);
        }

        var lane = _lanes[shard];
        List<RelayPosition> delivered;
        lock (lane)
        {
            if (lane.Sending)
            {
                // A call is out: this mark goes with the others that gather behind it.
                var stored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lane.Marks.Add((new RelayPosition(orderId, sequence), stored));
                return stored.Task;
            }

            lane.Sending = true;
            lane.Calls++;
            lane.MarksSent++;
            delivered = TakeDelivered(lane);
        }

        // An idle lane: the mark goes at once, from the caller's turn — no hand-off, so a quiet silo's command waits no
        // longer than before batching — with the deliveries waiting for a ride, or alone as the single call (which every
        // silo version knows). The lane stays busy until it is answered, and what gathered meanwhile goes next.
        var mark = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task sent;
        try
        {
            sent = SendCallAsync(grains.GetGrain<IOrderRelayGrain>(shard), shard, [(new RelayPosition(orderId, sequence), mark)], delivered);
        }
        catch
        {
            Release(shard, lane);
            throw;
        }

        sent.ContinueWith(static (_, state) =>
            {
                var (batcher, shard, lane) = ((RelayBatcher, int, Lane))state!;
                batcher.Release(shard, lane);
            }, (this, shard, lane), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return mark.Task;
    }

    // Under the lane's lock: the deliveries the next call carries (at most a call's worth).
    private static List<RelayPosition> TakeDelivered(Lane lane)
    {
        if (lane.Delivered.Count == 0)
        {
            return [];
        }

        var delivered = new List<RelayPosition>(Math.Min(lane.Delivered.Count, RelayBatch.MaxItems));
        foreach (var (orderId, sequence) in lane.Delivered)
        {
            if (delivered.Count == RelayBatch.MaxItems)
            {
                break;
            }

            delivered.Add(new RelayPosition(orderId, sequence));
        }

        foreach (var position in delivered)
        {
            lane.Delivered.Remove(position.OrderId);
        }

        lane.DeliveredSent += delivered.Count;
        return delivered;
    }

    // A direct mark was answered: the lane sends what gathered meanwhile, or goes idle.
    private void Release(int shard, Lane lane)
    {
        lock (lane)
        {
            if (lane.Marks.Count > 0 || lane.Delivered.Count >= RelayBatch.MaxItems)
            {
                Start(shard, lane, flush: false);
            }
            else
            {
                lane.Sending = false;
                FlushLater(shard, lane);
            }
        }
    }

    /// <summary>Tells the order's shard, best effort and soon, that every subscriber stored event <paramref name="sequence"/>.</summary>
    public void Delivered(string orderId, long sequence)
    {
        var shard = IOrderRelayGrain.ShardOf(orderId);
        if (!Options.Batch)
        {
            grains.GetGrain<IOrderRelayGrain>(shard).DeliveredAsync(orderId, sequence).Ignore();
            return;
        }

        var lane = _lanes[shard];
        lock (lane)
        {
            if (lane.Delivered.Count >= MaxWaitingDeliveries && !lane.Delivered.ContainsKey(orderId))
            {
                // The shard cannot keep up: this one is dropped, and the shard checks the order itself (SettleAfter).
                lane.DeliveredDropped++;
                return;
            }

            lane.Delivered[orderId] = Math.Max(sequence, lane.Delivered.GetValueOrDefault(orderId));
            if (!lane.Sending)
            {
                FlushLater(shard, lane); // while a call is out, the loop takes them with it or schedules this when it ends
            }
        }
    }

    // Under the lane's lock, with no call out (or the one out just answered): the loop, off any grain's turn and request
    // context (it must not run on a grain's scheduler, nor carry one command's trace into a call for many).
    private void Start(int shard, Lane lane, bool flush)
    {
        lane.Sending = true;
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Batcher.SendAsync(state.Shard, state.Lane, state.Flush),
            (Batcher: this, Shard: shard, Lane: lane, Flush: flush), preferLocal: false);
    }

    // Under the lane's lock: deliveries wait for a mark to ride with, up to DeliveredDelay.
    private void FlushLater(int shard, Lane lane)
    {
        if (lane.Delivered.Count == 0 || lane.FlushDue)
        {
            return;
        }

        lane.FlushDue = true;
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Batcher.FlushAsync(state.Shard, state.Lane),
            (Batcher: this, Shard: shard, Lane: lane), preferLocal: false);
    }

    private async Task FlushAsync(int shard, Lane lane)
    {
        await Task.Delay(Options.DeliveredDelay).ConfigureAwait(false);
        lock (lane)
        {
            lane.FlushDue = false;
            if (!lane.Sending && lane.Delivered.Count > 0)
            {
                Start(shard, lane, flush: true);
            }
            // A call is out: its loop carries them, or schedules the next flush as it ends.
        }
    }

    private async Task SendAsync(int shard, Lane lane, bool flush)
    {
        var relay = grains.GetGrain<IOrderRelayGrain>(shard);
        while (true)
        {
            List<(RelayPosition Mark, TaskCompletionSource Stored)> marks;
            List<RelayPosition> delivered;
            lock (lane)
            {
                // Deliveries alone go when flushed, or at once when a full call's worth gathered.
                if (lane.Marks.Count == 0 && !(flush && lane.Delivered.Count > 0) && lane.Delivered.Count < RelayBatch.MaxItems)
                {
                    lane.Sending = false;
                    FlushLater(shard, lane);
                    return;
                }

                flush = false;
                if (lane.Marks.Count <= RelayBatch.MaxItems)
                {
                    (marks, lane.Marks) = (lane.Marks, []);
                }
                else
                {
                    marks = lane.Marks.GetRange(0, RelayBatch.MaxItems);
                    lane.Marks.RemoveRange(0, RelayBatch.MaxItems);
                }

                delivered = TakeDelivered(lane);
                lane.Calls++;
                lane.MarksSent += marks.Count;
            }

            await SendCallAsync(relay, shard, marks, delivered).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One call to the shard, completing every mark it carries (never throws). One mark or one delivery alone takes the
    /// single call, which every silo version knows (a rolling upgrade); more go as one batch. A batch that fails is sent
    /// again one mark at a time with the single call (a mark is idempotent): a write that landed though it answered with
    /// a failure then completes them, a shard on a silo not yet upgraded (which does not know ApplyAsync) takes them, and
    /// a failure is each order's own. Deliveries of a failed call are let go (the shard checks those orders itself).
    /// </summary>
    private async Task SendCallAsync(IOrderRelayGrain relay, int shard, List<(RelayPosition Mark, TaskCompletionSource Stored)> marks, List<RelayPosition> delivered)
    {
        if (marks.Count == 1 && delivered.Count == 0)
        {
            await MarkAloneAsync(relay, marks[0].Mark, marks[0].Stored).ConfigureAwait(false);
            return;
        }

        try
        {
            if (marks.Count == 0 && delivered.Count == 1)
            {
                await relay.DeliveredAsync(delivered[0].OrderId, delivered[0].Sequence).ConfigureAwait(false);
                return;
            }

            var refusals = await relay.ApplyAsync(new RelayBatch(marks.ConvertAll(mark => mark.Mark), delivered)).ConfigureAwait(false);
            if (refusals.Count != marks.Count)
            {
                throw new InvalidOperationException($"relay shard {shard} answered {refusals.Count} outcomes for {marks.Count} marks");
            }

            for (var i = 0; i < marks.Count; i++)
            {
                if (refusals[i] is { } refused)
                {
                    marks[i].Stored.TrySetException(new InvalidOperationException(refused));
                }
                else
                {
                    marks[i].Stored.TrySetResult();
                }
            }
        }
        catch (Exception ex)
        {
            if (delivered.Count > 0)
            {
                LogDeliveriesLost(ex, shard, delivered.Count);
            }

            if (marks.Count > 0)
            {
                LogBatchFailed(ex, shard, marks.Count);
                await Task.WhenAll(marks.Select(mark => MarkAloneAsync(relay, mark.Mark, mark.Stored))).ConfigureAwait(false);
            }
        }
    }

    private static async Task MarkAloneAsync(IOrderRelayGrain relay, RelayPosition mark, TaskCompletionSource stored)
    {
        try
        {
            await relay.MarkAsync(mark.OrderId, mark.Sequence).ConfigureAwait(false);
            stored.TrySetResult();
        }
        catch (Exception ex)
        {
            stored.TrySetException(ex);
        }
    }

    private sealed class Lane
    {
        public List<(RelayPosition Mark, TaskCompletionSource Stored)> Marks = [];
        public readonly Dictionary<string, long> Delivered = new(StringComparer.Ordinal);
        public bool Sending;
        public bool FlushDue;
        public long Calls;
        public long MarksSent;
        public long DeliveredSent;
        public long DeliveredDropped;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A batch of {Count} marks to relay shard {Shard} failed; each is sent again on its own")]
    private partial void LogBatchFailed(Exception exception, int shard, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay shard {Shard} was not told of {Count} deliveries (the call failed); it checks those orders itself")]
    private partial void LogDeliveriesLost(Exception exception, int shard, int count);
}
