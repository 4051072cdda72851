using System.Globalization;
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
public sealed class PaymentDeadlineShardState
{
    /// <summary>
    /// The shard's open page, order id → payment deadline: orders placed since its last page was sealed, perhaps not yet
    /// paid or cancelled. (A record written before pages holds every deadline of its shard here.)
    /// </summary>
    [Id(0)] public Dictionary<string, DateTimeOffset> Due { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The sealed pages this shard stores, each a record of its own (<see cref="PaymentDeadlinePage"/>, state name <c>deadlines.{n}</c>).</summary>
    [Id(1)] public List<long> Pages { get; set; } = [];

    /// <summary>The number the next sealed page gets.</summary>
    [Id(2)] public long NextPage { get; set; }
}

/// <summary>A sealed page of a payment deadline shard: order id → payment deadline, shrinking as its orders are paid or cancelled.</summary>
[GenerateSerializer, Alias("orders.PaymentDeadlinePage.v1")]
public sealed class PaymentDeadlinePage
{
    [Id(0)] public Dictionary<string, DateTimeOffset> Due { get; set; } = new(StringComparer.Ordinal);
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

    // The sealed pages, read at activation: each its record, the earliest deadline it was sealed with (no order of the
    // page is due before it), and whether disarms changed it since its last write.
    private readonly SortedDictionary<long, Page> _pages = [];

    // When each due order is asked next (its deadline until it was asked once).
    private readonly Dictionary<string, DateTimeOffset> _nextAsk = new(StringComparer.Ordinal);
    private ShardUpkeep? _upkeep;
    private bool _dirty;

    private Dictionary<string, DateTimeOffset> Due => _state.State.Due;

    private int Held => Due.Count + _pages.Values.Sum(page => page.Due.Count);

    private ShardUpkeep Upkeep => _upkeep ??= new(this, ShardReminder, Options.CheckPeriod, AskDueOrders, ex => LogReminderFailed(ex, this.GetPrimaryKeyLong()));

    private OrderTimeoutOptions Options => options.Value;

    private IGrainStorage Storage => ServiceProvider.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_state.State.Pages.Select(LoadPageAsync));
        if (Held > 0)
        {
            await EnsureRunningAsync();
        }
    }

    private async Task LoadPageAsync(long number)
    {
        var record = PageRecord(number);
        await record.ReadStateAsync();
        _pages[number] = new Page(record, EarliestOf(record.State.Due));
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (!_state.IsTrusted || reason.ReasonCode == DeactivationReasonCode.ShuttingDown)
        {
            return;
        }

        // Only disarmed orders are at stake: they are asked once more and disarm again.
        foreach (var (number, page) in _pages.Where(p => p.Value.Dirty))
        {
            try
            {
                await page.Record.WriteStateAsync(cancellationToken);
            }
            catch (Exception ex)
            {
                LogPageWriteFailed(ex, this.GetPrimaryKeyLong(), number);
            }
        }

        if (_dirty)
        {
            try
            {
                await _state.WriteStateAsync(cancellationToken);
            }
            catch (Exception ex)
            {
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

        var sealedIn = PageOf(orderId);
        if ((sealedIn?.Due ?? Due).TryGetValue(orderId, out var known) && known == deadline)
        {
            return true; // stored already: an entry is only ever added by a write, and a failed write re-reads the record
        }

        if (sealedIn is null && !Due.ContainsKey(orderId) && Held >= Options.MaxAwaitingPaymentPerShard)
        {
            LogShardFull(this.GetPrimaryKeyLong(), Held);
            return false;
        }

        Due[orderId] = deadline;
        _nextAsk.Remove(orderId);
        await WriteOpenRecordAsync();
        if (sealedIn is not null && sealedIn.Due.Remove(orderId))
        {
            // Armed again with another deadline, now stored in the open record: that entry is the one that counts. Not
            // before the write: a failed write must leave the stored entry where it was.
            sealedIn.Dirty = true;
        }
        if (Due.Count >= Options.DeadlinePageSize)
        {
            await SealPageAsync();
        }

        await EnsureRunningAsync();
        return true;
    }

    public Task DisarmAsync(string orderId, DateTimeOffset deadline)
    {
        var sealedIn = PageOf(orderId);
        var entries = sealedIn?.Due ?? Due;
        if (entries.TryGetValue(orderId, out var armed) && armed <= deadline && entries.Remove(orderId))
        {
            _nextAsk.Remove(orderId);
            // Stored with the next write of its record, or as the shard deactivates; a page that empties is deleted at
            // the next round. A lost disarm only asks a paid order once more.
            if (sealedIn is null)
            {
                _dirty = true;
            }
            else
            {
                sealedIn.Dirty = true;
            }
        }

        return Task.CompletedTask;
    }

    public Task<DateTimeOffset?> FindAsync(string orderId) =>
        Task.FromResult((PageOf(orderId)?.Due ?? Due).TryGetValue(orderId, out var deadline) ? deadline : (DateTimeOffset?)null);

    public async Task WakeAsync()
    {
        if (Held > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Nothing due at the reminder's tick: no reason to come back after a crash until the next arm registers it again.
    Task IRemindable.ReceiveReminder(string reminderName, TickStatus status) => Upkeep.OnReminderAsync(Held > 0);

    private Task EnsureRunningAsync() => Upkeep.EnsureRunningAsync();

    private Page? PageOf(string orderId)
    {
        foreach (var page in _pages.Values)
        {
            if (page.Due.ContainsKey(orderId))
            {
                return page;
            }
        }

        return null;
    }

    /// <summary>
    /// Moves the open record's deadlines into a page record of their own: the page first, then the open record, emptied
    /// and listing it. If the page cannot be written the deadlines stay open and the next arm tries again; if the open
    /// record cannot, it is read back (its deadlines still there) and the page record is left unlisted, to be overwritten
    /// by the next seal under the same number.
    /// </summary>
    private async Task SealPageAsync()
    {
        var number = _state.State.NextPage;
        var record = PageRecord(number);
        try
        {
            record.AssumeNew();
            record.State.Due = new(Due, StringComparer.Ordinal);
            try
            {
                await record.WriteStateAsync();
            }
            catch (InconsistentStateException)
            {
                // Left by a seal whose open record's write failed: its deadlines are still open, so overwrite it.
                await record.ReadStateAsync();
                record.State.Due = new(Due, StringComparer.Ordinal);
                await record.WriteStateAsync();
            }
        }
        catch (Exception ex)
        {
            LogPageWriteFailed(ex, this.GetPrimaryKeyLong(), number);
            return;
        }

        var earliest = EarliestOf(Due);
        _state.State.Pages.Add(number);
        _state.State.NextPage = number + 1;
        _state.State.Due = new(StringComparer.Ordinal);
        _pages[number] = new Page(record, earliest);
        try
        {
            await WriteOpenRecordAsync();
        }
        catch (Exception ex)
        {
            // Read back: either the write did not land (the deadlines are open again and the page record is unlisted, to
            // be overwritten by the next seal) or it did (the page is listed and the open record empty).
            LogWriteFailed(ex, this.GetPrimaryKeyLong());
        }
    }

    /// <summary>
    /// Writes the open record. If the write fails it is read back (<see cref="GuardedState{T}"/>), and the pages in
    /// memory are made the ones it lists: a page it lists and memory lacks is read (a seal whose write landed though it
    /// answered with a failure), one memory holds and it does not list is let go (its deadlines are open again). If that
    /// read fails too, the activation goes, and the next one reads everything.
    /// </summary>
    private async Task WriteOpenRecordAsync()
    {
        try
        {
            await _state.WriteOrReloadAsync(this);
            _dirty = false;
        }
        catch when (_state.IsTrusted)
        {
            _dirty = false; // memory is what storage holds
            foreach (var number in _pages.Keys.Where(n => !_state.State.Pages.Contains(n)).ToList())
            {
                _pages.Remove(number);
            }

            try
            {
                await Task.WhenAll(_state.State.Pages.Where(n => !_pages.ContainsKey(n)).Select(LoadPageAsync));
            }
            catch (Exception readFailure)
            {
                LogPageWriteFailed(readFailure, this.GetPrimaryKeyLong(), -1);
                DeactivateOnIdle();
            }

            throw;
        }
    }

    /// <summary>Deletes the pages whose orders are all disarmed, then stores the open record without them.</summary>
    private async Task DropEmptyPagesAsync()
    {
        var dropped = false;
        foreach (var (number, page) in _pages.Where(p => p.Value.Due.Count == 0).ToList())
        {
            if (!await TryDeletePageAsync(number, page))
            {
                continue; // listed still: the next round tries again
            }

            _pages.Remove(number);
            _state.State.Pages.Remove(number);
            dropped = true;
        }

        if (dropped)
        {
            try
            {
                // A page deleted but still listed (this write failed) reads as empty, and goes again, when next seen.
                await WriteOpenRecordAsync();
            }
            catch (Exception ex)
            {
                LogWriteFailed(ex, this.GetPrimaryKeyLong());
            }
        }
    }

    /// <summary>
    /// Deletes an emptied page's record. A delete that fails may have landed (its answer lost): the record is read back
    /// and counts as deleted if it is gone; otherwise it keeps the fresh ETag, and nothing of what it holds (deadlines
    /// disarmed in memory, not yet in storage), for the next round's try.
    /// </summary>
    private async Task<bool> TryDeletePageAsync(long number, Page page)
    {
        try
        {
            await page.Record.ClearStateAsync();
            return true;
        }
        catch (Exception ex)
        {
            LogPageWriteFailed(ex, this.GetPrimaryKeyLong(), number);
        }

        try
        {
            await page.Record.ReadStateAsync();
            page.Due.Clear();
            return !page.Record.RecordExists;
        }
        catch (Exception ex)
        {
            LogPageWriteFailed(ex, this.GetPrimaryKeyLong(), number);
            return false;
        }
    }

    private DeferredState<PaymentDeadlinePage> PageRecord(long number) =>
        new($"deadlines.{number.ToString(CultureInfo.InvariantCulture)}", this.GetGrainId(), Storage);

    private static DateTimeOffset EarliestOf(Dictionary<string, DateTimeOffset> due) =>
        due.Count == 0 ? DateTimeOffset.MaxValue : due.Values.Min();

    /// <summary>
    /// One round: deletes emptied pages, then asks each order whose deadline (or retry) has come, at most
    /// <see cref="OrderTimeoutOptions.BatchSize"/>; a page none of whose orders can be due yet is not looked through.
    /// </summary>
    private async Task AskDueOrders()
    {
        await DropEmptyPagesAsync();
        if (Held == 0)
        {
            // Idle: stop the timer and let the activation go; an arm starts it again.
            Upkeep.StopTimer();
            return;
        }

        var now = clock.GetUtcNow();
        var asked = 0;
        var batch = BatchSize(Held);
        foreach (var entries in _pages.Values.Where(page => page.Earliest <= now).Select(page => page.Due).Append(Due))
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
            LogAsked(this.GetPrimaryKeyLong(), Math.Min(asked, batch), Held);
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

    private sealed class Page(DeferredState<PaymentDeadlinePage> record, DateTimeOffset earliest)
    {
        public DeferredState<PaymentDeadlinePage> Record { get; } = record;

        public DateTimeOffset Earliest { get; } = earliest;

        public Dictionary<string, DateTimeOffset> Due => Record.State.Due;

        public bool Dirty { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Payment deadline shard {Shard} asked {Count} orders past their deadline; {Held} await payment")]
    private partial void LogAsked(long shard, int count, int held);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not write its state")]
    private partial void LogWriteFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not write or delete its page {Page}; it tries again")]
    private partial void LogPageWriteFailed(Exception exception, long shard, long page);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Payment deadline shard {Shard} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Error, Message = "Payment deadline shard {Shard} is full ({Count} orders awaiting payment): placements of its orders are refused until payments or timeouts free it")]
    private partial void LogShardFull(long shard, int count);
}
