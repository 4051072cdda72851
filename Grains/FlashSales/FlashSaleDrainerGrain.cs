using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The drain of one sale (<see cref="IFlashSaleDrainerGrain"/>): every <see cref="FlashSaleOptions.DrainTick"/> it takes
/// as many tickets as its token bucket allows (<see cref="DrainPacer"/>, the sale's rate) from the shards in turn, places
/// each one's order through <see cref="IOrderGrain"/> — the normal pipeline: stock reserved from the SKU, payment
/// timeout, subscribers — and stores each ticket's final answer in its shard, in ticket order. Placements are not
/// awaited by the tick (a slow order would otherwise eat the bucket's tokens): up to
/// <see cref="FlashSaleOptions.MaxInFlight"/> run at once, and the answers that have no gap before them are stored every
/// <see cref="AnswersEvery"/> (at once when nothing is in flight): each store rewrites a shard's head, so storing at every
/// 10 ms tick cost the drain a head write per shard per tick.
/// One activation per sale in the cluster, so the rate is a cluster-wide cap.
/// <para>
/// A ticket's order id and command id are fixed (<see cref="FlashSaleLimits.OrderIdOf"/>, its tag unguessable without
/// the sale's order key, so no caller can take the id first), so a ticket placed again —
/// after a failure, or by the next activation after a crash before its answer was stored — is answered from the order's
/// command ids: one order per ticket, never two. Once the SKU refuses an order (out of stock) the sale is marked
/// exhausted and every ticket still waiting is answered sold out in bulk, with no order attempted.
/// </para>
/// </summary>
[Reentrant]
[GrainType("flash-drainer")]
public sealed partial class FlashSaleDrainerGrain(
    IOptions<FlashSaleOptions> options,
    FlashSaleMetrics metrics,
    ILogger<FlashSaleDrainerGrain> logger) : Grain, IFlashSaleDrainerGrain, IRemindable
{
    /// <summary>The command id of every winner's placement (an order id is one ticket's, so this never collides).</summary>
    public const string PlaceCommandId = "flash-sale-place";

    private const string WakeReminder = "flash-drain";
    private const int WindowSeconds = 300;

    /// <summary>How often answers are stored while placements are in flight: a ticket's answer shows at most this late.</summary>
    public static readonly TimeSpan AnswersEvery = TimeSpan.FromMilliseconds(100);

    private readonly FlashSaleOptions _options = options.Value;
    private readonly Lane[] _lanes = Enumerable.Range(0, FlashSaleLimits.Shards).Select(_ => new Lane()).ToArray();
    private readonly SortedDictionary<long, long> _windows = [];
    private FlashSaleInfo? _info;
    private long _infoAt;
    private long _answersAt;
    private DrainPacer? _pacer;
    private IGrainTimer? _timer;
    private bool _ticking;
    private bool _reminderSet;
    private bool _outOfStock;
    private int _nextShard;
    private int _inFlight;
    private long _placed;
    private long _wakes;

    private string SaleId => this.GetPrimaryKeyString();

    /// <summary>The drainer's view of one shard (memory only: after a crash it starts again from the shard's stored answers).</summary>
    private sealed class Lane
    {
        /// <summary>The next ticket to take (the shard starts from its first unanswered one if that is later).</summary>
        public long Cursor;

        /// <summary>The shard's first ticket without a stored answer, as last heard; -1 before the first look.</summary>
        public long Resolved = -1;

        /// <summary>Tickets from <see cref="Cursor"/> on, as last heard; -1 unknown (look again).</summary>
        public long Remaining = -1;

        /// <summary>Final answers of placements that ended, waiting for the ones before them (answers are stored in ticket order).</summary>
        public SortedDictionary<long, bool> Done { get; } = [];

        /// <summary>Tickets whose placement failed or was asked to wait: placed again (same command id) before new ones.</summary>
        public Queue<QueuedTicket> Retry { get; } = new();

        public bool Idle => Remaining == 0 && Done.Count == 0 && Retry.Count == 0;
    }

    public Task WakeAsync()
    {
        _wakes++;
        foreach (var lane in _lanes)
        {
            lane.Remaining = -1; // unknown: look at every shard again
        }

        _infoAt = 0; // and at the sale (its rate may have changed)
        _timer ??= this.RegisterGrainTimer(TickAsync, new GrainTimerCreationOptions(TimeSpan.Zero, _options.DrainTick) { KeepAlive = true });
        return Task.CompletedTask;
    }

    public Task<DrainStats> GetStatsAsync() =>
        Task.FromResult(new DrainStats(_placed, new Dictionary<long, long>(_windows), (int)(_pacer?.Rate ?? _info?.Spec?.Rate ?? 0)));

    public Task ReceiveReminder(string reminderName, TickStatus status) => WakeAsync();

    private async Task TickAsync(CancellationToken cancellation)
    {
        if (_ticking)
        {
            return;
        }

        _ticking = true;
        try
        {
            await DrainOnceAsync();
        }
        catch (Exception ex)
        {
            LogTickFailed(ex, SaleId);
        }
        finally
        {
            _ticking = false;
        }
    }

    private async Task DrainOnceAsync()
    {
        var now = Stopwatch.GetElapsedTime(0).Ticks;
        if (_info is null || now - _infoAt > TimeSpan.TicksPerSecond)
        {
            _info = await GrainFactory.GetGrain<IFlashSaleRecordGrain>(SaleId).RefreshAsync(null);
            _infoAt = now;
            if (_info.Spec is null)
            {
                await StopAsync();
                return;
            }

            if (_pacer is null)
            {
                _pacer = new DrainPacer(_info.Spec.Rate, _options.BurstWindow, now);
            }
            else if (_pacer.Rate != _info.Spec.Rate)
            {
                _pacer.SetRate(_info.Spec.Rate, now);
                LogRate(SaleId, _info.Spec.Rate);
            }
        }

        if (_outOfStock && !_info.Exhausted)
        {
            await GrainFactory.GetGrain<IFlashSaleRecordGrain>(SaleId).MarkExhaustedAsync();
            _info = _info with { Exhausted = true };
        }

        if (_inFlight == 0 || now - _answersAt >= AnswersEvery.Ticks)
        {
            await StoreAnswersAsync();
            _answersAt = now;
        }

        if (_inFlight == 0 && _lanes.All(lane => lane.Idle))
        {
            await StopAsync();
            return;
        }

        await EnsureReminderAsync();
        var (spec, orderKey) = (_info.Spec!, _info.OrderKey);
        var budget = Math.Min(_pacer!.Available(Stopwatch.GetElapsedTime(0).Ticks), _options.MaxInFlight - _inFlight);
        var launched = 0;

        // Placements that must be tried again come first (they may have landed: the order answers from its command ids).
        for (var s = 0; s < FlashSaleLimits.Shards && launched < budget; s++)
        {
            while (launched < budget && _lanes[s].Retry.TryDequeue(out var ticket))
            {
                Launch(spec, orderKey, s, ticket);
                launched++;
            }
        }

        // Each group of launches is recorded when it goes out (not when this tick decided): the window is one of
        // launches, so no second of them holds more than the rate, however long the peeks below take.
        _pacer.Take(launched, Stopwatch.GetElapsedTime(0).Ticks);

        if (_info.Exhausted)
        {
            // No new order once the SKU is out: when every placement in flight has its answer stored, what is left
            // is answered sold out in bulk, with no per-request work.
            if (_inFlight == 0 && _lanes.All(lane => lane.Done.Count == 0 && lane.Retry.Count == 0))
            {
                var wakes = _wakes;
                await Task.WhenAll(Enumerable.Range(0, FlashSaleLimits.Shards).Where(s => _lanes[s].Remaining != 0)
                    .Select(s => Shard(s).ResolveRestSoldOutAsync()));
                if (wakes == _wakes)
                {
                    foreach (var lane in _lanes)
                    {
                        lane.Remaining = 0;
                    }
                }
            }

            return;
        }

        for (var i = 0; i < FlashSaleLimits.Shards && launched < budget; i++)
        {
            var s = (_nextShard + i) % FlashSaleLimits.Shards;
            var lane = _lanes[s];
            if (lane.Remaining == 0)
            {
                continue;
            }

            var wakes = _wakes;
            var peek = await Shard(s).PeekAsync(lane.Cursor, budget - launched);
            lane.Resolved = Math.Max(lane.Resolved, peek.Resolved);
            // A wake while the peek was out may mean tickets the peek did not see: keep the shard unknown.
            lane.Remaining = wakes == _wakes ? peek.Remaining - peek.Tickets.Count : -1;
            foreach (var ticket in peek.Tickets)
            {
                Launch(spec, orderKey, s, ticket);
                lane.Cursor = ticket.Seq + 1;
                launched++;
            }

            _pacer.Take(peek.Tickets.Count, Stopwatch.GetElapsedTime(0).Ticks);
        }

        _nextShard = (_nextShard + 1) % FlashSaleLimits.Shards;
    }

    /// <summary>Starts one ticket's placement; its answer is kept for <see cref="StoreAnswersAsync"/>.</summary>
    private void Launch(FlashSaleSpec spec, string? orderKey, int shard, QueuedTicket ticket)
    {
        _inFlight++;
        Count(1);
        _ = RunAsync();

        async Task RunAsync()
        {
            var outcome = await PlaceAsync(spec, orderKey, shard, ticket);
            metrics.Placed(outcome);
            _inFlight--;
            if (outcome == PlacementResult.Retry)
            {
                _lanes[shard].Retry.Enqueue(ticket);
                return;
            }

            _outOfStock |= outcome == PlacementResult.OutOfStock;
            _lanes[shard].Done[ticket.Seq] = outcome == PlacementResult.Won;
        }
    }

    /// <summary>Stores, per shard, the answers that follow the shard's last stored one without a gap.</summary>
    private Task StoreAnswersAsync() => Task.WhenAll(Enumerable.Range(0, FlashSaleLimits.Shards).Select(async s =>
    {
        var lane = _lanes[s];
        if (lane.Resolved < 0 || lane.Done.Count == 0)
        {
            return;
        }

        foreach (var stale in lane.Done.Keys.Where(seq => seq < lane.Resolved).ToList())
        {
            lane.Done.Remove(stale); // stored already (by an earlier activation, or the bulk sold-out answer)
        }

        var answers = new List<bool>();
        for (var seq = lane.Resolved; lane.Done.TryGetValue(seq, out var won); seq++)
        {
            answers.Add(won);
        }

        if (answers.Count == 0)
        {
            return;
        }

        var from = lane.Resolved;
        await Shard(s).ResolveAsync(from, answers);
        for (var i = 0; i < answers.Count; i++)
        {
            lane.Done.Remove(from + i);
        }

        lane.Resolved = Math.Max(lane.Resolved, from + answers.Count);
    }));

    private async Task<PlacementResult> PlaceAsync(FlashSaleSpec spec, string? orderKey, int shard, QueuedTicket ticket)
    {
        var orderId = FlashSaleLimits.OrderIdOf(SaleId, shard, ticket.Seq, orderKey);
        try
        {
            var result = await GrainFactory.GetGrain<IOrderGrain>(orderId)
                .PlaceAsync(new PlaceOrder(PlaceCommandId, ticket.UserId, [new OrderLine(spec.Sku, 1, spec.Price)]));
            if (result.Accepted)
            {
                return PlacementResult.Won;
            }

            switch (result.Error?.Code)
            {
                case OrderErrorCode.TryLater:
                    return PlacementResult.Retry;
                case OrderErrorCode.OutOfStock or OrderErrorCode.UnknownSku:
                    return PlacementResult.OutOfStock;
                default:
                    LogRefused(SaleId, orderId, result.Error?.Code, result.Error?.Message);
                    return PlacementResult.Refused;
            }
        }
        catch (Exception ex)
        {
            LogPlaceFailed(ex, SaleId, orderId);
            return PlacementResult.Retry;
        }
    }

    private void Count(int placed)
    {
        _placed += placed;
        var second = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _windows[second] = _windows.GetValueOrDefault(second) + placed;
        while (_windows.Count > WindowSeconds)
        {
            _windows.Remove(_windows.Keys.First());
        }
    }

    private IFlashSaleShardGrain Shard(int shard) => GrainFactory.GetGrain<IFlashSaleShardGrain>(FlashSaleShardGrain.KeyOf(SaleId, shard));

    private async Task EnsureReminderAsync()
    {
        if (!_reminderSet)
        {
            await this.RegisterOrUpdateReminder(WakeReminder, _options.WakePeriod, _options.WakePeriod);
            _reminderSet = true;
        }
    }

    private async Task StopAsync()
    {
        _timer?.Dispose();
        _timer = null;
        var reminder = await this.GetReminder(WakeReminder);
        if (reminder is not null)
        {
            await this.UnregisterReminder(reminder);
        }

        _reminderSet = false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId}: a drain tick failed; the next tick goes on from the stored answers")]
    private partial void LogTickFailed(Exception exception, string saleId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flash sale {SaleId}: drain rate now {Rate} orders/s")]
    private partial void LogRate(string saleId, int rate);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId}: order {OrderId} refused {Code}: {Message}; its ticket ends sold out")]
    private partial void LogRefused(string saleId, string orderId, OrderErrorCode? code, string? message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId}: placing order {OrderId} failed; it is placed again (same command id) next tick")]
    private partial void LogPlaceFailed(Exception exception, string saleId, string orderId);
}
