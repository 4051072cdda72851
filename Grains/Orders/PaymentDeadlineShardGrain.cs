using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

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
public sealed class PaymentDeadlineShardState : IPagedShardState<DateTimeOffset>
{
    /// <summary>
    /// The shard's open record, order id → payment deadline: orders placed since its last page was sealed, perhaps not
    /// yet paid or cancelled. (A record written before pages holds every deadline of its shard here.)
    /// </summary>
    [Id(0)] public Dictionary<string, DateTimeOffset> Due { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The sealed pages this shard stores, each a record of its own (state name <c>deadlines.{n}</c>).</summary>
    [Id(1)] public List<long> Pages { get; set; } = [];

    [Id(2)] public long NextPage { get; set; }

    Dictionary<string, DateTimeOffset> IPagedShardState<DateTimeOffset>.Open => Due;

    void IPagedShardState<DateTimeOffset>.ClearOpen() => Due = new(StringComparer.Ordinal);
}

/// <summary>
/// One shard of the payment timeouts: the unpaid orders of its part of the order ids, with their deadlines. A placement
/// arms its deadline here (one durable write, before the order's own write, as the relay mark is), the payment or
/// cancellation disarms it (in memory; stored with the shard's next write), and a grain timer every
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
/// Storage is paged so that no write grows with the orders awaiting payment. Arms go to the shard's open record
/// (<see cref="PaymentDeadlineShardState"/>); once it holds <see cref="OrderTimeoutOptions.DeadlinePageSize"/> deadlines
/// they are sealed into a page record of their own (written first, then the open record empties and lists the page:
/// a crash between the two leaves the deadlines in both, and asking an order twice is harmless), and a page whose
/// orders are all disarmed is deleted. Deadlines are the placement time plus one timeout, so a page's orders come due
/// together. Disarms in a page are stored with the page's next write (as the shard deactivates), or not at all when it
/// empties. The shard's memory is bounded by <see cref="OrderTimeoutOptions.MaxAwaitingPaymentPerShard"/>: a full shard
/// refuses to arm, and the placement is refused with <see cref="OrderErrorCode.TryLater"/> before the order is written
/// (what it reserved goes back).
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

    // The earliest deadline of each sealed page as first seen: a page only loses deadlines, so none of its orders is due
    // before it, and a round skips the page until then.
    private readonly Dictionary<long, DateTimeOffset> _earliest = [];

    // When each due order is asked next (its deadline until it was asked once).
    private readonly Dictionary<string, DateTimeOffset> _nextAsk = new(StringComparer.Ordinal);
    private ShardPages<PaymentDeadlineShardState, DateTimeOffset>? _pages;
    private ShardUpkeep? _upkeep;

    private ShardPages<PaymentDeadlineShardState, DateTimeOffset> Pages => _pages ??= new(this, _state, "deadlines",
        ServiceProvider.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders), Options.DeadlinePageSize, logger);

    private ShardUpkeep Upkeep => _upkeep ??= new(this, ShardReminder, Options.CheckPeriod, AskDueOrders, ex => LogReminderFailed(ex, this.GetPrimaryKeyLong()));

    private OrderTimeoutOptions Options => options.Value;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await Pages.LoadAsync();
        if (Pages.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Only disarmed orders are at stake: they are asked once more and disarm again.
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        _state.IsTrusted && reason.ReasonCode != DeactivationReasonCode.ShuttingDown
            ? Pages.FlushOnDeactivateAsync(cancellationToken)
            : Task.CompletedTask;

    public async Task<bool> ArmAsync(string orderId, DateTimeOffset deadline)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        var held = Pages.HolderOf(orderId);
        if (held is not null && held[orderId] == deadline)
        {
            return true; // stored already: an entry is only ever added by a write, and a failed write re-reads the record
        }

        if (held is null && Pages.Count >= Options.MaxAwaitingPaymentPerShard)
        {
            LogShardFull(this.GetPrimaryKeyLong(), Pages.Count);
            return false;
        }

        // New, or armed again with another deadline: the open record's entry is the one that counts.
        _nextAsk.Remove(orderId);
        await Pages.PutAsync(orderId, deadline);
        await EnsureRunningAsync();
        return true;
    }

    public Task DisarmAsync(string orderId, DateTimeOffset deadline)
    {
        // Stored with the next write of its record, or as the shard deactivates; a page that empties is deleted at the
        // next round. A lost disarm only asks a paid order once more.
        if (Pages.HolderOf(orderId) is { } held && held[orderId] <= deadline && Pages.Remove(orderId))
        {
            _nextAsk.Remove(orderId);
        }

        return Task.CompletedTask;
    }

    public Task<DateTimeOffset?> FindAsync(string orderId) =>
        Task.FromResult(Pages.HolderOf(orderId) is { } held ? held[orderId] : (DateTimeOffset?)null);

    public async Task WakeAsync()
    {
        if (Pages.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Nothing due at the reminder's tick: no reason to come back after a crash until the next arm registers it again.
    Task IRemindable.ReceiveReminder(string reminderName, TickStatus status) => Upkeep.OnReminderAsync(Pages.Count > 0);

    private Task EnsureRunningAsync() => Upkeep.EnsureRunningAsync();

    private DateTimeOffset EarliestOf(ShardPages<PaymentDeadlineShardState, DateTimeOffset>.Page page) =>
        _earliest.TryGetValue(page.Number, out var earliest)
            ? earliest
            : _earliest[page.Number] = page.Entries.Count == 0 ? DateTimeOffset.MaxValue : page.Entries.Values.Min();

    /// <summary>
    /// One round: stores what changed lazily (emptied pages deleted), then asks each order whose deadline (or retry) has
    /// come, at most <see cref="BatchSize"/>; a page none of whose orders can be due yet is not looked through.
    /// </summary>
    private async Task AskDueOrders()
    {
        await Pages.FlushAsync(writeChanged: false); // disarms ride the next arm's write: only emptied pages go now
        foreach (var gone in _earliest.Keys.Where(number => Pages.Sealed.All(page => page.Number != number)).ToList())
        {
            _earliest.Remove(gone); // deleted, or never listed: its number may be sealed again
        }

        if (Pages.Count == 0)
        {
            // Idle: stop the timer and let the activation go; an arm starts it again.
            Upkeep.StopTimer();
            return;
        }

        var now = clock.GetUtcNow();
        var asked = 0;
        var batch = BatchSize(Pages.Count);
        foreach (var entries in Pages.Sealed.Where(page => EarliestOf(page) <= now).Select(page => page.Entries).Append(Pages.Open))
        {
            foreach (var (orderId, deadline) in entries)
            {
                if (_nextAsk.GetValueOrDefault(orderId, deadline) > now)
                {
                    continue;
                }

                if (asked++ == batch)
                {
                    break; // the rest next round
                }

                _nextAsk[orderId] = now + Options.RetryPeriod;
                GrainFactory.GetGrain<IOrderPaymentDueGrain>(orderId).PaymentDueAsync(deadline).Ignore();
            }

            if (asked > batch)
            {
                break;
            }
        }

        if (asked > 0)
        {
            LogAsked(this.GetPrimaryKeyLong(), Math.Min(asked, batch), Pages.Count);
        }
    }

    /// <summary>
    /// Orders one round may ask: <see cref="OrderTimeoutOptions.BatchSize"/>, or more when the shard holds so many that
    /// at that pace some would wait longer than <see cref="OrderTimeoutOptions.RetryPeriod"/> for their turn (the rounds
    /// look from the oldest page on, and an order asked is not asked again within that period, so every held order is
    /// reached within one period even if none of them answers).
    /// </summary>
    private int BatchSize(int held)
    {
        var roundsPerRetry = Math.Max(1, (int)(Options.RetryPeriod / Options.CheckPeriod));
        return Math.Max(Options.BatchSize, (held + roundsPerRetry - 1) / roundsPerRetry);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Payment deadline shard {Shard} asked {Count} orders past their deadline; {Held} await payment")]
    private partial void LogAsked(long shard, int count, int held);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Error, Message = "Payment deadline shard {Shard} is full ({Count} orders awaiting payment): placements of its orders are refused until payments or timeouts free it")]
    private partial void LogShardFull(long shard, int count);
}
