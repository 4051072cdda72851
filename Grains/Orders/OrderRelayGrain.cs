using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

[GenerateSerializer, Alias("relay.RelayShardState.v1")]
public sealed class RelayShardState
{
    /// <summary>Orders with undelivered work: order id → what is known about it.</summary>
    [Id(0)] public Dictionary<string, RelayRecord> Pending { get; set; } = new(StringComparer.Ordinal);
}

[GenerateSerializer, Alias("relay.RelayRecord.v1")]
public sealed class RelayRecord
{
    /// <summary>The highest event sequence the order marked (about to write, or written).</summary>
    [Id(0)] public long Sequence { get; set; }

    [Id(1)] public DateTimeOffset Since { get; set; }

    /// <summary>Settle checks so far, and who was behind at the last one (written lazily, with the next write).</summary>
    [Id(2)] public int Checks { get; set; }
    [Id(3)] public List<string> Behind { get; set; } = [];
}

/// <summary>
/// One shard of the outbox relay (<see cref="IOrderRelayGrain"/>). Every order marks its shard — one durable write —
/// before it writes an event, so no event can be stored without the relay knowing; the shard forgets the order once
/// the order reports it settled at or beyond the marked sequence. While it holds work, a grain timer every
/// <see cref="OrderRelayOptions.Period"/> sends at most <see cref="OrderRelayOptions.BatchSize"/> one-way settle
/// requests to orders whose check is due (first <see cref="OrderRelayOptions.SettleAfter"/> after the mark, then with
/// doubling waits), and a reminder brings the shard back after a crash or a whole-cluster restart. The order does the
/// work (publish, then ask each subscriber to reach its last event) and answers one-way, so the shard never waits on
/// an order and a mark is never queued behind a relay round.
/// </summary>
[GrainType("order-relay")]
public sealed partial class OrderRelayGrain(
    [PersistentState("relay", StorageNames.Orders)] IPersistentState<RelayShardState> state,
    IOptions<OrderRelayOptions> options,
    TimeProvider clock,
    ILogger<OrderRelayGrain> logger) : Grain, IOrderRelayGrain, IRemindable
{
    private const string RelayReminder = "relay";

    private readonly GuardedState<RelayShardState> _state = new(state);
    private readonly Dictionary<string, DateTimeOffset> _nextCheck = new(StringComparer.Ordinal);

    // Settle requests sent and not answered yet: at most BatchSize, so a slow cluster is never sent more work than it
    // answers (an unanswered request counts until its order's next check is due).
    private readonly HashSet<string> _inFlight = new(StringComparer.Ordinal);
    private ShardUpkeep? _upkeep;
    private bool _dirty;

    private Dictionary<string, RelayRecord> Pending => _state.State.Pending;

    private ShardUpkeep Upkeep => _upkeep ??= new(this, RelayReminder, Options.Period, RoundAsync, ex => LogReminderFailed(ex, this.GetPrimaryKeyLong()));

    private OrderRelayOptions Options => options.Value;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // After a crash or a restart every held order is due at once: nothing says how long it has waited.
        var now = clock.GetUtcNow();
        foreach (var orderId in Pending.Keys)
        {
            _nextCheck[orderId] = now;
        }

        if (Pending.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_dirty && _state.IsTrusted && reason.ReasonCode != DeactivationReasonCode.ShuttingDown)
        {
            try
            {
                await _state.WriteStateAsync(cancellationToken);
            }
            catch (Exception ex)
            {
                // Only forgotten (settled) orders are at stake: they are checked again and forgotten again.
                LogWriteFailed(ex, this.GetPrimaryKeyLong());
            }
        }
    }

    public async Task MarkAsync(string orderId, long sequence)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        var now = clock.GetUtcNow();
        if (Pending.TryGetValue(orderId, out var record))
        {
            if (record.Sequence >= sequence)
            {
                return;
            }

            record.Sequence = sequence;
        }
        else
        {
            if (Pending.Count >= Options.MaxPendingPerShard)
            {
                LogShardFull(this.GetPrimaryKeyLong(), Pending.Count);
                throw new InvalidOperationException(
                    $"relay shard {this.GetPrimaryKeyLong()} holds {Pending.Count} orders with undelivered work, its limit; retry later");
            }

            Pending[orderId] = new RelayRecord { Sequence = sequence, Since = now };
        }

        // The normal path (publish, deliver) gets SettleAfter before the relay looks.
        _nextCheck[orderId] = now + Options.SettleAfter;
        await _state.WriteOrReloadAsync(this);
        _dirty = false;
        await EnsureRunningAsync();
    }

    public async Task UnmarkAsync(string orderId, long sequence)
    {
        if (!Pending.TryGetValue(orderId, out var record) || record.Sequence != sequence)
        {
            return;
        }

        if (sequence <= 1)
        {
            Pending.Remove(orderId);
            _nextCheck.Remove(orderId);
            _inFlight.Remove(orderId);
        }
        else
        {
            // The event before may still be undelivered: it stays held (a check forgets it if it was delivered).
            record.Sequence = sequence - 1;
        }

        await _state.WriteOrReloadAsync(this);
        _dirty = false;
    }

    public Task ReportAsync(SettleReport report)
    {
        _inFlight.Remove(report.OrderId);
        if (!Pending.TryGetValue(report.OrderId, out var record))
        {
            return Task.CompletedTask;
        }

        // Forget the order only if the check saw every event marked so far: a mark made after the check began is newer.
        if (report.Settled && record.Sequence <= report.LastSequence)
        {
            Pending.Remove(report.OrderId);
            _nextCheck.Remove(report.OrderId);
        }
        else
        {
            record.Behind = report.Behind.ToList();
        }

        // Written with the next round (or mark): a forgotten order lost in a crash is only checked once more.
        _dirty = true;
        return Task.CompletedTask;
    }

    public Task DeliveredAsync(string orderId, long sequence)
    {
        if (Pending.TryGetValue(orderId, out var record) && record.Sequence <= sequence)
        {
            Pending.Remove(orderId);
            _nextCheck.Remove(orderId);
            _inFlight.Remove(orderId);
            _dirty = true; // written with the next round (or mark): a forgotten order lost in a crash is only checked once more
        }

        return Task.CompletedTask;
    }

    public Task<RelayEntry?> FindAsync(string orderId) => Task.FromResult(Pending.TryGetValue(orderId, out var record)
        ? new RelayEntry(orderId, record.Sequence, record.Since, record.Checks, record.Behind.ToArray())
        : null);

    public Task<RelayShardStatus> GetStatusAsync()
    {
        var behind = new Dictionary<string, int>(StringComparer.Ordinal);
        var oldest = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var record in Pending.Values)
        {
            // Not checked yet: every subscriber may be behind; the "*" row says so.
            foreach (var name in record.Checks == 0 ? ["*"] : record.Behind)
            {
                behind[name] = behind.GetValueOrDefault(name) + 1;
                oldest[name] = oldest.TryGetValue(name, out var since) && since < record.Since ? since : record.Since;
            }
        }

        return Task.FromResult(new RelayShardStatus((int)this.GetPrimaryKeyLong(), Pending.Count,
            Pending.Count == 0 ? null : Pending.Values.Min(r => r.Since), behind, oldest));
    }

    public async Task WakeAsync()
    {
        if (Pending.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Nothing held at the reminder's tick: no reason to come back after a crash until the next mark registers it again.
    Task IRemindable.ReceiveReminder(string reminderName, TickStatus status) => Upkeep.OnReminderAsync(Pending.Count > 0);

    private Task EnsureRunningAsync() => Upkeep.EnsureRunningAsync();

    /// <summary>One relay round: persist what was forgotten, then send the due settle requests (one-way, bounded).</summary>
    private async Task RoundAsync()
    {
        if (_dirty)
        {
            try
            {
                await _state.WriteOrReloadAsync(this);
                _dirty = false;
            }
            catch (Exception ex)
            {
                LogWriteFailed(ex, this.GetPrimaryKeyLong());
            }
        }

        if (Pending.Count == 0)
        {
            // Idle: stop the timer and let the activation go; a mark starts it again.
            Upkeep.StopTimer();
            return;
        }

        var now = clock.GetUtcNow();
        var due = Pending
            .Select(pair => (OrderId: pair.Key, Record: pair.Value, At: _nextCheck.GetValueOrDefault(pair.Key, now)))
            .Where(entry => entry.At <= now)
            .OrderBy(entry => entry.At)
            .ToArray();
        // A request whose order is due again was lost (or its report was): it no longer counts as in flight.
        foreach (var (orderId, _, _) in due)
        {
            _inFlight.Remove(orderId);
        }

        due = due.Take(Math.Max(0, Options.BatchSize - _inFlight.Count)).ToArray();
        foreach (var (orderId, record, _) in due)
        {
            _inFlight.Add(orderId);
            record.Checks++;
            var wait = TimeSpan.FromTicks(Math.Min(Options.MaxRecheck.Ticks, Options.Period.Ticks * (1L << Math.Min(record.Checks, 20))));
            _nextCheck[orderId] = now + wait;
            try
            {
                await GrainFactory.GetGrain<IRelayDriverGrain>(0).SettleAsync(orderId);
            }
            catch (Exception ex)
            {
                LogSettleFailed(ex, orderId);
            }
        }

        if (due.Length > 0)
        {
            LogRound(this.GetPrimaryKeyLong(), due.Length, Pending.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay shard {Shard} asked {Count} orders to settle; {Pending} hold undelivered work")]
    private partial void LogRound(long shard, int count, int pending);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Relay shard {Shard} could not write its state")]
    private partial void LogWriteFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Relay shard {Shard} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay could not ask order {OrderId} to settle; it asks again later")]
    private partial void LogSettleFailed(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Relay shard {Shard} is full ({Count} orders with undelivered work): new commands of its orders are refused until it drains")]
    private partial void LogShardFull(long shard, int count);
}
