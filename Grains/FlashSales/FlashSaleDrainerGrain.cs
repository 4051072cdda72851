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
/// timeout, subscribers — and stores each ticket's final answer in its shard, in ticket order. One activation per sale
/// in the cluster, so the rate is a cluster-wide cap.
/// <para>
/// A ticket's order id and command id are fixed (<see cref="FlashSaleLimits.OrderIdOf"/>), so a ticket placed again —
/// after a failure, or by the next activation after a crash before its answer was stored — is answered from the order's
/// command ids: one order per ticket, never two. Once the SKU refuses an order (out of stock) the sale is marked
/// exhausted and every ticket still waiting is answered sold out in bulk, with no order attempted.
/// </para>
/// </summary>
[Reentrant]
[GrainType("flash-drainer")]
public sealed partial class FlashSaleDrainerGrain(
    IOptions<FlashSaleOptions> options,
    ILogger<FlashSaleDrainerGrain> logger) : Grain, IFlashSaleDrainerGrain, IRemindable
{
    /// <summary>The command id of every winner's placement (an order id is one ticket's, so this never collides).</summary>
    public const string PlaceCommandId = "flash-sale-place";

    private const string WakeReminder = "flash-drain";
    private const int WindowSeconds = 300;

    private readonly FlashSaleOptions _options = options.Value;
    private readonly long[] _backlog = Enumerable.Repeat(-1L, FlashSaleLimits.Shards).ToArray();
    private readonly SortedDictionary<long, long> _windows = [];
    private FlashSaleInfo? _info;
    private long _infoAt;
    private DrainPacer? _pacer;
    private IGrainTimer? _timer;
    private bool _ticking;
    private bool _reminderSet;
    private int _nextShard;
    private long _placed;
    private long _wakes;

    private string SaleId => this.GetPrimaryKeyString();

    public Task WakeAsync()
    {
        _wakes++;
        Array.Fill(_backlog, -1L); // unknown: look at every shard again
        _infoAt = 0;                // and at the sale (its rate may have changed)
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
                _pacer = new DrainPacer(_info.Spec.Rate, _options.DrainTick, now);
            }
            else if (_pacer.Rate != _info.Spec.Rate)
            {
                _pacer.SetRate(_info.Spec.Rate, now);
                LogRate(SaleId, _info.Spec.Rate);
            }
        }

        if (_backlog.All(b => b == 0))
        {
            await StopAsync();
            return;
        }

        await EnsureReminderAsync();
        var shards = GrainFactory.GetGrain<IFlashSaleRecordGrain>(SaleId);
        if (_info.Exhausted)
        {
            // No order can be placed any more: what is left is answered sold out in bulk, no per-request work.
            var wakes = _wakes;
            await Task.WhenAll(Enumerable.Range(0, FlashSaleLimits.Shards).Where(s => _backlog[s] != 0).Select(s => Shard(s).ResolveRestSoldOutAsync()));
            if (wakes == _wakes)
            {
                Array.Fill(_backlog, 0L);
            }

            return;
        }

        var budget = Math.Min(_pacer!.Available(Stopwatch.GetElapsedTime(0).Ticks), _options.MaxInFlight);
        if (budget == 0)
        {
            return;
        }

        var taken = new List<(int Shard, QueuedTicket Ticket)>();
        for (var i = 0; i < FlashSaleLimits.Shards && taken.Count < budget; i++)
        {
            var s = (_nextShard + i) % FlashSaleLimits.Shards;
            if (_backlog[s] == 0)
            {
                continue;
            }

            var wakes = _wakes;
            var peek = await Shard(s).PeekAsync(budget - taken.Count);
            // A wake while the peek was out may mean tickets the peek did not see: keep the shard unknown.
            _backlog[s] = wakes == _wakes ? peek.Backlog : -1;
            taken.AddRange(peek.Tickets.Select(t => (s, t)));
        }

        _nextShard = (_nextShard + 1) % FlashSaleLimits.Shards;
        if (taken.Count == 0)
        {
            return;
        }

        _pacer.Take(taken.Count);
        var spec = _info.Spec!;
        var outcomes = await Task.WhenAll(taken.Select(t => PlaceAsync(spec, t.Shard, t.Ticket)));
        Count(taken.Count);

        if (outcomes.Any(o => o == Placement.OutOfStock))
        {
            await shards.MarkExhaustedAsync();
            _info = _info with { Exhausted = true };
        }

        // Each shard's answers, in ticket order, up to the first one still open (placed again next tick).
        await Task.WhenAll(taken.Select((t, i) => (t.Shard, t.Ticket.Seq, Outcome: outcomes[i])).GroupBy(x => x.Shard).Select(async group =>
        {
            var answers = group.OrderBy(x => x.Seq).TakeWhile(x => x.Outcome != Placement.Retry).ToList();
            if (answers.Count > 0)
            {
                await Shard(group.Key).ResolveAsync(answers[0].Seq, answers.Select(x => x.Outcome == Placement.Won).ToList());
                if (_backlog[group.Key] > 0)
                {
                    _backlog[group.Key] = Math.Max(0, _backlog[group.Key] - answers.Count);
                }
            }
        }));
    }

    private enum Placement
    {
        Won,
        OutOfStock,
        Refused,
        Retry,
    }

    private async Task<Placement> PlaceAsync(FlashSaleSpec spec, int shard, QueuedTicket ticket)
    {
        var orderId = FlashSaleLimits.OrderIdOf(SaleId, shard, ticket.Seq);
        try
        {
            var result = await GrainFactory.GetGrain<IOrderGrain>(orderId)
                .PlaceAsync(new PlaceOrder(PlaceCommandId, ticket.UserId, [new OrderLine(spec.Sku, 1, spec.Price)]));
            if (result.Accepted)
            {
                return Placement.Won;
            }

            switch (result.Error?.Code)
            {
                case OrderErrorCode.TryLater:
                    return Placement.Retry;
                case OrderErrorCode.OutOfStock or OrderErrorCode.UnknownSku:
                    return Placement.OutOfStock;
                default:
                    LogRefused(SaleId, orderId, result.Error?.Code, result.Error?.Message);
                    return Placement.Refused;
            }
        }
        catch (Exception ex)
        {
            LogPlaceFailed(ex, SaleId, orderId);
            return Placement.Retry;
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
