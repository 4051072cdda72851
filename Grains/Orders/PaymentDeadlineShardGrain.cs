using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

/// <summary>One shard of the payment deadlines (<see cref="PaymentDeadlineShardGrain"/>), keyed like the relay: <see cref="IOrderRelayGrain.ShardOf"/>.</summary>
[Alias("orders.IPaymentDeadlineShardGrain")]
public interface IPaymentDeadlineShardGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Records durably that the order waits for its payment until <paramref name="deadline"/> (before the placement's
    /// write). False, with nothing recorded, when the shard holds its bound of orders awaiting payment.
    /// </summary>
    [Alias("Arm")] Task<bool> ArmAsync(string orderId, DateTimeOffset deadline);

    /// <summary>
    /// The order no longer waits for the payment due at <paramref name="deadline"/> (paid, cancelled, or never written):
    /// its entry goes if it is not a later one (a disarm overtaken by a newer arm of the same order removes nothing).
    /// Written with the shard's next write.
    /// </summary>
    [Alias("Disarm"), Orleans.Concurrency.OneWay] Task DisarmAsync(string orderId, DateTimeOffset deadline);

    /// <summary>The order's deadline as this activation knows it, or null.</summary>
    [Alias("Find")] Task<DateTimeOffset?> FindAsync(string orderId);

    /// <summary>Starts the shard's timer and reminder if it holds deadlines; used at silo start-up.</summary>
    [Alias("Wake")] Task WakeAsync();
}

/// <summary>The order's side of its payment deadline: asked by its shard once the deadline has come (internal to the cluster).</summary>
[Alias("orders.IOrderPaymentDueGrain")]
public interface IOrderPaymentDueGrain : IGrainWithStringKey
{
    /// <summary>One-way: the order cancels itself if still unpaid past its deadline, and disarms <paramref name="deadline"/> once it waits for nothing.</summary>
    [Alias("PaymentDue"), Orleans.Concurrency.OneWay] Task PaymentDueAsync(DateTimeOffset deadline);
}

[GenerateSerializer, Alias("orders.PaymentDeadlineShardState.v1")]
public sealed class PaymentDeadlineShardState
{
    /// <summary>Order id → its payment deadline: orders placed and perhaps not yet paid or cancelled.</summary>
    [Id(0)] public Dictionary<string, DateTimeOffset> Due { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// One shard of the payment timeouts: the unpaid orders of its part of the order ids, with their deadlines, in one
/// record. A placement arms its deadline here (one durable write, before the order's own write, as the relay mark is),
/// the payment or cancellation disarms it (in memory; stored with the shard's next write), and a grain timer every
/// <see cref="OrderTimeoutOptions.CheckPeriod"/> asks each order whose deadline has come, one-way, to cancel itself if
/// it is still unpaid; an order asked and still unpaid is asked again every <see cref="OrderTimeoutOptions.RetryPeriod"/>.
/// A reminder per shard (not per order) brings a shard with deadlines back after a crash; the silo's start wakes every
/// shard as well.
/// <para>
/// Compared with one Orleans reminder per order, which this replaced: no reminder registration on the placement's path,
/// no removal per payment (Azure: a merge and a delete per order become one write of the shard's record, shared by
/// the placements that find it idle), and nothing left in Orleans' reminder service per order. A disarm lost in a crash
/// only makes the shard ask a paid order, which answers by disarming again: nothing is ever cancelled that was paid,
/// because the order decides (<see cref="OrderDecider.IsPaymentOverdue"/>), never the shard.
/// </para>
/// <para>
/// The record is bounded by <see cref="OrderTimeoutOptions.MaxAwaitingPaymentPerShard"/>: a full shard refuses to arm,
/// and the placement is refused with <see cref="OrderErrorCode.TryLater"/> before the order is written (what it
/// reserved goes back). Every arm rewrites the whole record: ~40 bytes per order awaiting payment with a short id.
/// </para>
/// </summary>
[GrainType("payment-deadlines")]
public sealed partial class PaymentDeadlineShardGrain(
    [PersistentState("deadlines", StorageNames.Orders)] IPersistentState<PaymentDeadlineShardState> state,
    IOptions<OrderTimeoutOptions> options,
    TimeProvider clock,
    ILogger<PaymentDeadlineShardGrain> logger) : Grain, IPaymentDeadlineShardGrain, IRemindable
{
    private const string ShardReminder = "payment-deadlines";

    private readonly GuardedState<PaymentDeadlineShardState> _state = new(state);

    // When each due order is asked next (its deadline until it was asked once).
    private readonly Dictionary<string, DateTimeOffset> _nextAsk = new(StringComparer.Ordinal);
    private ShardUpkeep? _upkeep;
    private bool _dirty;

    private Dictionary<string, DateTimeOffset> Due => _state.State.Due;

    private ShardUpkeep Upkeep => _upkeep ??= new(this, ShardReminder, Options.CheckPeriod, AskDueOrders, ex => LogReminderFailed(ex, this.GetPrimaryKeyLong()));

    private OrderTimeoutOptions Options => options.Value;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (Due.Count > 0)
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
                // Only disarmed orders are at stake: they are asked once more and disarm again.
                LogWriteFailed(ex, this.GetPrimaryKeyLong());
            }
        }
    }

    public async Task<bool> ArmAsync(string orderId, DateTimeOffset deadline)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        if (Due.TryGetValue(orderId, out var known) && known == deadline)
        {
            return true; // stored already: an entry is only ever added by a write, and a failed write re-reads the record
        }

        if (!Due.ContainsKey(orderId) && Due.Count >= Options.MaxAwaitingPaymentPerShard)
        {
            LogShardFull(this.GetPrimaryKeyLong(), Due.Count);
            return false;
        }

        Due[orderId] = deadline;
        _nextAsk.Remove(orderId);
        await _state.WriteOrReloadAsync(this);
        _dirty = false;
        await EnsureRunningAsync();
        return true;
    }

    public Task DisarmAsync(string orderId, DateTimeOffset deadline)
    {
        if (Due.TryGetValue(orderId, out var armed) && armed <= deadline && Due.Remove(orderId))
        {
            _nextAsk.Remove(orderId);
            _dirty = true; // stored with the next arm, or as the shard deactivates: a lost disarm only asks a paid order once more
        }

        return Task.CompletedTask;
    }

    public Task<DateTimeOffset?> FindAsync(string orderId) =>
        Task.FromResult(Due.TryGetValue(orderId, out var deadline) ? deadline : (DateTimeOffset?)null);

    public async Task WakeAsync()
    {
        if (Due.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Nothing due at the reminder's tick: no reason to come back after a crash until the next arm registers it again.
    Task IRemindable.ReceiveReminder(string reminderName, TickStatus status) => Upkeep.OnReminderAsync(Due.Count > 0);

    private Task EnsureRunningAsync() => Upkeep.EnsureRunningAsync();

    /// <summary>One round: asks each order whose deadline (or retry) has come, at most <see cref="OrderTimeoutOptions.BatchSize"/>.</summary>
    private Task AskDueOrders()
    {
        if (Due.Count == 0)
        {
            // Idle: stop the timer and let the activation go; an arm starts it again.
            Upkeep.StopTimer();
            return Task.CompletedTask;
        }

        var now = clock.GetUtcNow();
        var asked = 0;
        foreach (var (orderId, deadline) in Due)
        {
            if (_nextAsk.GetValueOrDefault(orderId, deadline) > now)
            {
                continue;
            }

            if (asked++ == Options.BatchSize)
            {
                break; // the rest next round
            }

            _nextAsk[orderId] = now + Options.RetryPeriod;
            GrainFactory.GetGrain<IOrderPaymentDueGrain>(orderId).PaymentDueAsync(deadline).Ignore();
        }

        if (asked > 0)
        {
            LogAsked(this.GetPrimaryKeyLong(), Math.Min(asked, Options.BatchSize), Due.Count);
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Payment deadline shard {Shard} asked {Count} orders past their deadline; {Held} await payment")]
    private partial void LogAsked(long shard, int count, int held);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not write its state")]
    private partial void LogWriteFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Error, Message = "Payment deadline shard {Shard} is full ({Count} orders awaiting payment): placements of its orders are refused until payments or timeouts free it")]
    private partial void LogShardFull(long shard, int count);
}
