using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Storage;

namespace OrderFlow.Grains.Orders;

[GenerateSerializer, Alias("relay.RelayShardState.v1")]
public sealed class RelayShardState : IPagedShardState<RelayRecord>
{
    /// <summary>
    /// The shard's open record: orders with undelivered work marked since its last page was sealed, order id → what is
    /// known about it. (A record written before pages holds every order of its shard here.)
    /// </summary>
    [Id(0)] public Dictionary<string, RelayRecord> Pending { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The sealed pages this shard stores, each a record of its own (state name <c>relay.{n}</c>).</summary>
    [Id(1)] public List<long> Pages { get; set; } = [];

    [Id(2)] public long NextPage { get; set; }

    Dictionary<string, RelayRecord> IPagedShardState<RelayRecord>.Open => Pending;

    void IPagedShardState<RelayRecord>.ClearOpen() => Pending = new(StringComparer.Ordinal);
}

[GenerateSerializer, Alias("relay.RelayRecord.v1")]
public sealed class RelayRecord
{
    /// <summary>The highest event sequence the order marked (about to write, or written).</summary>
    [Id(0)] public long Sequence { get; set; }

    [Id(1)] public DateTimeOffset Since { get; set; }

    /// <summary>
    /// Settle checks so far, and who was behind at the last one: for operators, written lazily with the next write of the
    /// record that holds the order (a sealed page is not rewritten for them).
    /// </summary>
    [Id(2)] public int Checks { get; set; }
    [Id(3)] public List<string> Behind { get; set; } = [];

    /// <summary>The order's last event the check behind <see cref="Behind"/> saw (0: none, or a record stored before it was kept).</summary>
    [Id(4)] public long ReportedSequence { get; set; }
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
    private ShardPages<RelayShardState, RelayRecord>? _pages;
    private ShardUpkeep? _upkeep;

    // The orders held, in the open record and the sealed pages (ShardPages: a mark writes only the open record).
    private ShardPages<RelayShardState, RelayRecord> Pages => _pages ??= new(this, _state, "relay",
        ServiceProvider.GetRequiredKeyedService<IGrainStorage>(StorageNames.Orders), Options.PageSize, logger);

    private ShardUpkeep Upkeep => _upkeep ??= new(this, RelayReminder, Options.Period, RoundAsync, ex => LogReminderFailed(ex, this.GetPrimaryKeyLong()));

    private OrderRelayOptions Options => options.Value;

    private RelayRecord? Find(string orderId) => Pages.HolderOf(orderId) is { } holder ? holder[orderId] : null;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await Pages.LoadAsync();
        // After a crash or a restart every held order is due at once: nothing says how long it has waited.
        var now = clock.GetUtcNow();
        foreach (var (orderId, _) in Pages.All)
        {
            _nextCheck[orderId] = now;
        }

        if (Pages.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Only forgotten (settled) orders are at stake: they are checked again and forgotten again.
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        _state.IsTrusted && reason.ReasonCode != DeactivationReasonCode.ShuttingDown
            ? Pages.FlushOnDeactivateAsync(cancellationToken)
            : Task.CompletedTask;

    public async Task MarkAsync(string orderId, long sequence)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        if ((await ApplyAsync(new RelayBatch([new RelayPosition(orderId, sequence)], [])))[0] is { } refused)
        {
            throw new InvalidOperationException(refused);
        }
    }

    public async Task<IReadOnlyList<string?>> ApplyAsync(RelayBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Marks.Count > RelayBatch.MaxItems || batch.Delivered.Count > RelayBatch.MaxItems)
        {
            throw new ArgumentException($"a relay batch carries at most {RelayBatch.MaxItems} marks and {RelayBatch.MaxItems} deliveries", nameof(batch));
        }

        // Deliveries first: each frees its order unless a later mark holds it, which may make room for the marks.
        foreach (var (orderId, sequence) in batch.Delivered)
        {
            Forget(orderId, sequence);
        }

        var now = clock.GetUtcNow();
        var refusals = new string?[batch.Marks.Count];
        var puts = new Dictionary<string, RelayRecord>(StringComparer.Ordinal);
        var added = 0; // orders this call adds to the shard: re-marks of held ones take no room
        for (var i = 0; i < batch.Marks.Count; i++)
        {
            var (orderId, sequence) = batch.Marks[i];
            if (Ids.Problem(orderId, "order id") is { } problem)
            {
                refusals[i] = problem;
                continue;
            }

            var record = puts.GetValueOrDefault(orderId) ?? Find(orderId);
            if (record?.Sequence >= sequence)
            {
                continue;
            }

            if (record is null && Pages.Count + added >= Options.MaxPendingPerShard)
            {
                LogShardFull(this.GetPrimaryKeyLong(), Pages.Count + added);
                refusals[i] = $"relay shard {this.GetPrimaryKeyLong()} holds {Pages.Count + added} orders with undelivered work, its limit; retry later";
                continue;
            }

            added += record is null ? 1 : 0;

            // The normal path (publish, deliver) gets SettleAfter before the relay looks. A new record, not the held one
            // changed: that may sit in a sealed page, which must keep its stored entry if this write fails.
            _nextCheck[orderId] = now + Options.SettleAfter;
            puts[orderId] = new RelayRecord
            {
                Sequence = sequence, Since = record?.Since ?? now, Checks = record?.Checks ?? 0, Behind = record?.Behind ?? [],
                ReportedSequence = record?.ReportedSequence ?? 0,
            };
        }

        if (puts.Count > 0)
        {
            // Group commit: every mark of the call in one write of the open record.
            await Pages.PutManyAsync(puts);
            await EnsureRunningAsync();
        }

        return refusals;
    }

    public async Task UnmarkAsync(string orderId, long sequence)
    {
        if (Pages.Locate(orderId) is not var (holder, sealedIn) || holder[orderId].Sequence != sequence)
        {
            return;
        }

        if (sequence <= 1)
        {
            holder.Remove(orderId);
            _nextCheck.Remove(orderId);
            _inFlight.Remove(orderId);
        }
        else
        {
            // The event before may still be undelivered: it stays held (a check forgets it if it was delivered).
            holder[orderId].Sequence = sequence - 1;
        }

        // Stored now, in whichever record holds the order: a mark left for an event that was never written would keep
        // the order held for good (the relay forgets only at or above the latest mark).
        if (sealedIn is null)
        {
            await Pages.WriteOpenAsync();
        }
        else
        {
            await Pages.WritePageAsync(sealedIn);
        }
    }

    public Task ReportAsync(SettleReport report)
    {
        _inFlight.Remove(report.OrderId);
        if (Find(report.OrderId) is not { } record)
        {
            return Task.CompletedTask;
        }

        // Forget the order only if the check saw every event marked so far: a mark made after the check began is newer.
        // Written with the next round (or mark): a forgotten order lost in a crash is only checked once more.
        if (report.Settled && record.Sequence <= report.LastSequence)
        {
            Pages.Remove(report.OrderId);
            _nextCheck.Remove(report.OrderId);
        }
        else
        {
            // Who is behind is for operators: stored with the next write of its record (a page's is not rewritten for it).
            record.Behind = report.Behind.ToList();
            record.ReportedSequence = report.LastSequence;
            Pages.OpenDirty |= Pages.Open.ContainsKey(report.OrderId);
        }

        return Task.CompletedTask;
    }

    public Task DeliveredAsync(string orderId, long sequence)
    {
        Forget(orderId, sequence);
        return Task.CompletedTask;
    }

    private void Forget(string orderId, long sequence)
    {
        // Written with the next round (or mark): a forgotten order lost in a crash is only checked once more.
        if (Find(orderId) is { } record && record.Sequence <= sequence && Pages.Remove(orderId))
        {
            _nextCheck.Remove(orderId);
            _inFlight.Remove(orderId);
        }
    }

    public Task<RelayEntry?> FindAsync(string orderId) => Task.FromResult(Find(orderId) is { } record
        ? new RelayEntry(orderId, record.Sequence, record.Since, record.Checks, record.Behind.ToArray())
        : null);

    public Task<RelayShardStatus> GetStatusAsync()
    {
        var behind = new Dictionary<string, int>(StringComparer.Ordinal);
        var oldest = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        DateTimeOffset? oldestOfAll = null;
        foreach (var (_, record) in Pages.All)
        {
            oldestOfAll = oldestOfAll < record.Since ? oldestOfAll : record.Since;
            foreach (var name in RowsOf(record))
            {
                behind[name] = behind.GetValueOrDefault(name) + 1;
                oldest[name] = oldest.TryGetValue(name, out var since) && since < record.Since ? since : record.Since;
            }
        }

        return Task.FromResult(new RelayShardStatus((int)this.GetPrimaryKeyLong(), Pages.Count, oldestOfAll, behind, oldest));
    }

    /// <summary>
    /// The status rows an order the shard holds is counted in: the subscribers its last answered check found behind, and
    /// <c>*</c> (any subscriber may be behind) while no check has answered with names, or the order has marked events
    /// since the check that named them — before the first check, while one is in flight, after one that failed without a
    /// report, after a new event. Counting by checks sent instead left an order in no row for as long as its check took
    /// (red-team finding: status said all delivered while sms was two events behind).
    /// </summary>
    public static IReadOnlyList<string> RowsOf(RelayRecord record) =>
        record.Behind.Count == 0 ? ["*"]
        : record.Sequence > record.ReportedSequence ? [.. record.Behind, "*"]
        : record.Behind;

    public async Task WakeAsync()
    {
        if (Pages.Count > 0)
        {
            await EnsureRunningAsync();
        }
    }

    // Nothing held at the reminder's tick: no reason to come back after a crash until the next mark registers it again.
    Task IRemindable.ReceiveReminder(string reminderName, TickStatus status) => Upkeep.OnReminderAsync(Pages.Count > 0);

    private Task EnsureRunningAsync() => Upkeep.EnsureRunningAsync();

    /// <summary>One relay round: store what was forgotten, then send the due settle requests (one-way, bounded).</summary>
    private async Task RoundAsync()
    {
        await Pages.FlushAsync(writeChanged: true);
        if (Pages.Count == 0)
        {
            // Idle: stop the timer and let the activation go; a mark starts it again.
            Upkeep.StopTimer();
            return;
        }

        var now = clock.GetUtcNow();
        var due = Pages.All
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
            LogRound(this.GetPrimaryKeyLong(), due.Length, Pages.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay shard {Shard} asked {Count} orders to settle; {Pending} hold undelivered work")]
    private partial void LogRound(long shard, int count, int pending);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Relay shard {Shard} could not update its reminder")]
    private partial void LogReminderFailed(Exception exception, long shard);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relay could not ask order {OrderId} to settle; it asks again later")]
    private partial void LogSettleFailed(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Relay shard {Shard} is full ({Count} orders with undelivered work): new commands of its orders are refused until it drains")]
    private partial void LogShardFull(long shard, int count);
}
