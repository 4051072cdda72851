using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Ledgers;

/// <summary>
/// Base of the reservation ledgers (a SKU's stock, a coupon's uses): the single writer of one key's figures, with one
/// record per order's reservation (<see cref="ReservationRules"/>, committed by a <see cref="LedgerBook{THead}"/> with
/// group commit, so a flash-sale SKU takes many reservations per head write).
/// <para>
/// <b>Check-back.</b> A reservation stays in the head's <see cref="ReservationHead.Pending"/> until its order confirms
/// it (right after the order's write). One still unconfirmed after <see cref="ReservationOptions.CheckBackAfter"/> is
/// sent to a <c>reservation-checker</c>, which asks the order (<see cref="IOrderPlacementGrain"/>, authoritative: it
/// fences a placement before saying release) and settles it here. A timer runs while anything is pending; a reminder
/// covers a silo that dies with pending reservations: registered at a key's first pending reservation, removed by its
/// own tick finding nothing pending or when the activation deactivates with nothing pending — once per busy spell,
/// not per reservation.
/// </para>
/// </summary>
[Reentrant]
public abstract partial class ReservationLedgerGrain : Grain, IReservationLedgerGrain, IRemindable
{
    private const string CheckReminder = "reservation-check";

    private readonly LedgerBook<ReservationHead> _book;
    private readonly ReservationOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<string, DateTimeOffset> _checking = new(StringComparer.Ordinal);
    private IGrainTimer? _timer;
    // The check-back reminder, kept from the first pending reservation until its own tick or deactivation finds nothing
    // pending: wanted, and whether it is stored (null: this activation does not know yet), changed one step at a time.
    private bool _reminderWanted;
    private bool? _reminderStored;
    private IGrainReminder? _reminder;
    private Task _reminderChange = Task.CompletedTask;

    protected ReservationLedgerGrain(IPersistentState<ReservationHead> head, string stateName, IServiceProvider services)
    {
        var context = services.GetRequiredService<IGrainContextAccessor>().GrainContext;
        _logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(GetType());
        _book = new LedgerBook<ReservationHead>(this, head, services.GetRequiredService<ILedgerEntryStore>(),
            BalanceLedgerGrain.EntriesOf(context.GrainId, stateName), _logger);
        _options = services.GetRequiredService<IOptions<ReservationOptions>>().Value;
        _clock = services.GetRequiredService<TimeProvider>();
    }

    /// <summary>Which ledger this is (stock or coupon), for the check-back.</summary>
    protected abstract LedgerKind Kind { get; }

    protected string Key => this.GetPrimaryKeyString();

    protected LedgerBook<ReservationHead> Book => _book;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (_book.Head.Pending.Count > 0)
        {
            ArmChecks();
        }

        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // A head this activation no longer trusts is left as it is: the next activation reads it and arms its checks.
        if (_book.IsTrusted)
        {
            // Nothing pending: the reminder this activation registered goes with it. One it does not know of (activated
            // by a read) is left to its own tick rather than read on every deactivation. Something pending: the
            // reminder must be stored when the activation goes (a registration that failed, or a stale tick that made
            // this activation believe it stored), so that the check-back comes back.
            var pending = _book.Head.Pending.Count > 0;
            // A silo shutting down leaves a reminder with nothing pending to its own tick (after the restart, or on
            // another silo): one storage request fewer per key in the shutdown, whose reminder table may be gone.
            var removing = !pending && (_reminderWanted || _reminderStored == true) && reason.ReasonCode != DeactivationReasonCode.ShuttingDown;
            if (pending || removing)
            {
                // Wanted and not known to be stored (a failed or unknown registration) queues one (WantReminder).
                WantReminder(pending);
                try
                {
                    await _reminderChange.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    // The silo is out of time for this activation: the reminder's own tick (or the next activation's
                    // checks) settles it.
                }
            }
        }

        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    public async Task<ReservationResult> ReserveAsync(string orderId, long epoch, long quantity)
    {
        CheckOrder(orderId);
        ArgumentOutOfRangeException.ThrowIfLessThan(epoch, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(quantity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quantity, InventoryLimits.MaxStock);
        var result = await Change(orderId, current =>
            ReservationRules.Reserve(_book.Head, current, orderId, epoch, quantity, _clock.GetUtcNow(), InventoryLimits.MaxPending));
        if (_book.Head.Pending.Count > 0)
        {
            ArmChecks();
        }

        return result;
    }

    public Task ConfirmAsync(string orderId, long epoch)
    {
        CheckOrder(orderId);
        return _book.RunAsync([], () =>
        {
            if (ReservationRules.Confirm(_book.Head, orderId, epoch))
            {
                _book.Touch();
            }

            return true;
        });
    }

    public async Task<ReservationResult> SettleAsync(string orderId, long epoch, bool keep)
    {
        CheckOrder(orderId);
        var result = await Change(orderId, current => ReservationRules.Settle(_book.Head, current, orderId, epoch, keep, _clock.GetUtcNow()), alwaysTouch: true);
        _checking.Remove(orderId);
        return result;
    }

    public Task<ReservationResult> CommitAsync(string orderId)
    {
        CheckOrder(orderId);
        return Change(orderId, current => ReservationRules.Commit(_book.Head, current, orderId, _clock.GetUtcNow()));
    }

    public Task<ReservationResult> ReleaseAsync(string orderId)
    {
        CheckOrder(orderId);
        return Change(orderId, current => ReservationRules.Release(_book.Head, current, orderId, _clock.GetUtcNow()));
    }

    public Task<Reservation?> GetReservationAsync(string orderId)
    {
        CheckOrder(orderId);
        return _book.RunAsync([orderId], () => _book.Find(orderId)?.Reservation);
    }

    private Task<ReservationResult> Change(string orderId, Func<Reservation?, (ReservationResult Result, Reservation? Next)> rule, bool alwaysTouch = false) =>
        _book.RunAsync([orderId], () =>
        {
            var pendingBefore = _book.Head.Pending.Count;
            var (result, next) = rule(_book.Find(orderId)?.Reservation);
            if (next is not null)
            {
                _book.Put(ReservationRules.EntryOf(orderId, next));
            }
            else if (alwaysTouch && _book.Head.Pending.Count != pendingBefore)
            {
                _book.Touch();
            }

            return result;
        });

    private static void CheckOrder(string orderId)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }
    }

    private void ArmChecks()
    {
        _timer ??= this.RegisterGrainTimer(CheckPendingAsync, new GrainTimerCreationOptions(_options.CheckPeriod, _options.CheckPeriod) { KeepAlive = true });
        WantReminder(true);
    }

    /// <summary>
    /// The reminder is registered when something is pending and kept while this activation lives: it is removed by its
    /// own tick when that finds nothing pending, or when the activation deactivates with nothing pending — not at every
    /// moment nothing is pending, which on a busy SKU re-registered and removed it every few seconds (two storage
    /// requests each, and a removed reminder Orleans keeps in memory until its next re-read of the reminder table).
    /// Nor only by its own tick: after a deactivation that tick would activate the ledger (reading its head) only to
    /// remove it, which under a bench of one coupon per two orders kept every coupon's ledger in memory.
    /// </summary>
    private void WantReminder(bool wanted)
    {
        // A change is queued when the wish changes, or when nothing is under way and storage may not match it (a
        // failed change, or an activation that does not know).
        if (_reminderWanted != wanted || (_reminderChange.IsCompleted && _reminderStored != wanted))
        {
            _reminderWanted = wanted;
            _reminderChange = ChangeReminderAsync(_reminderChange);
        }
    }

    private async Task ChangeReminderAsync(Task previous)
    {
        await previous;
        try
        {
            if (_reminderWanted && _reminderStored != true)
            {
                _reminder = await this.RegisterOrUpdateReminder(CheckReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                _reminderStored = true;
            }
            else if (!_reminderWanted && _reminderStored != false)
            {
                // With the registration's handle, one request (a delete); without it (activated by the tick) a read first.
                if ((_reminder ?? await this.GetReminder(CheckReminder)) is { } reminder)
                {
                    await this.UnregisterReminder(reminder);
                }

                (_reminder, _reminderStored) = (null, false);
            }
        }
        catch (Exception ex)
        {
            // Not done, or maybe half done: asked again by the next timer tick with something pending (a failed
            // registration) or by the reminder's own tick (a failed removal).
            (_reminder, _reminderStored) = (null, null);
            LogReminderFailed(ex, Key);
        }
    }

    async Task IRemindable.ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != CheckReminder)
        {
            return;
        }

        // An activation that has not changed the reminder learns from the tick that it is stored (it has no handle) —
        // but only with nothing pending: a tick sent before an earlier activation removed it (at deactivation) proves
        // nothing, and with something pending the checks below register it again (one idempotent write) rather than
        // trust that. One that has changed it knows better.
        if (_reminderStored is null && _book.Head.Pending.Count == 0)
        {
            (_reminderStored, _reminderWanted) = (true, true);
        }

        if (_book.Head.Pending.Count > 0)
        {
            ArmChecks();
            return;
        }

        // Nothing pending: the reminder goes until the next reservation that outlives its placement.
        WantReminder(false);
        await _reminderChange;
    }

    private Task CheckPendingAsync(CancellationToken cancellationToken)
    {
        var pending = _book.Head.Pending;
        if (pending.Count == 0)
        {
            // The reminder stays until its own tick or this activation's end (WantReminder).
            _timer?.Dispose();
            _timer = null;
            _checking.Clear();
            return Task.CompletedTask;
        }

        WantReminder(true);

        var now = _clock.GetUtcNow();
        // A check whose settle never came back (the checker or the order failed) is sent again after a few periods.
        foreach (var (orderId, sentAt) in _checking.ToArray())
        {
            if (!pending.ContainsKey(orderId) || now - sentAt > 4 * _options.CheckPeriod + _options.CheckBackAfter)
            {
                _checking.Remove(orderId);
            }
        }

        var checker = GrainFactory.GetGrain<IReservationCheckerGrain>(0);
        foreach (var (orderId, reservation) in pending.Where(p => now - p.Value.Since >= _options.CheckBackAfter).OrderBy(p => p.Value.Since).ToArray())
        {
            if (_checking.Count >= _options.MaxChecksInFlight)
            {
                break;
            }

            if (_checking.TryAdd(orderId, now))
            {
                LogCheckBack(Kind, Key, orderId, reservation.Epoch);
                _ = checker.CheckAsync(Kind, Key, orderId, reservation.Epoch, reservation.Quantity);
            }
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Kind} {Key}: reservation of order {OrderId} (epoch {Epoch}) was never confirmed; asking the order")]
    private partial void LogCheckBack(LedgerKind kind, string key, string orderId, long epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reservation ledger {Key} could not register or remove its check-back reminder")]
    private partial void LogReminderFailed(Exception exception, string key);
}

/// <summary>A SKU's stock (key = SKU): operators set what is available; placements reserve, payments sell, cancellations give back.</summary>
[GrainType("stock")]
public sealed class StockGrain(
    [PersistentState(LedgerStateNames.Stock, StorageNames.Ledgers)] IPersistentState<ReservationHead> head, IServiceProvider services)
    : ReservationLedgerGrain(head, LedgerStateNames.Stock, services), IStockGrain, IStockReservationsGrain
{
    protected override LedgerKind Kind => LedgerKind.Stock;

    public async Task<InventoryResult<StockLevel>> SetAvailableAsync(long available)
    {
        var problem = Ids.NewIdProblem(Key, "SKU") ?? InventoryLimits.StockProblem(available);
        if (problem is not null)
        {
            return new InventoryResult<StockLevel>(false, OrderErrorCode.InvalidCommand, problem, await GetAsync());
        }

        return await Book.RunAsync([], () =>
        {
            Book.Head.Exists = true;
            Book.Head.Available = available;
            Book.Touch();
            return new InventoryResult<StockLevel>(true, null, null, Level());
        });
    }

    public Task<StockLevel> GetAsync() => Ids.IsValid(Key)
        ? Book.RunAsync([], Level)
        : Task.FromResult(new StockLevel(Key, false, 0, 0, 0, 0));

    private StockLevel Level() =>
        new(Key, Book.Head.Exists, Book.Head.Available, Book.Head.Reserved, Book.Head.Committed, Book.Head.Pending.Count);
}

/// <summary>A coupon (key = coupon id): operators issue it with a number of uses; placements reserve a use, payments redeem it, cancellations restore it.</summary>
[GrainType("coupon-uses")]
public sealed class CouponGrain(
    [PersistentState(LedgerStateNames.Coupon, StorageNames.Ledgers)] IPersistentState<ReservationHead> head, IServiceProvider services)
    : ReservationLedgerGrain(head, LedgerStateNames.Coupon, services), ICouponGrain, ICouponReservationsGrain
{
    protected override LedgerKind Kind => LedgerKind.Coupon;

    public async Task<InventoryResult<CouponLevel>> IssueAsync(long uses)
    {
        var problem = Ids.NewIdProblem(Key, "coupon id") ?? InventoryLimits.UsesProblem(uses);
        if (problem is not null)
        {
            return new InventoryResult<CouponLevel>(false, OrderErrorCode.InvalidCommand, problem, await GetAsync());
        }

        return await Book.RunAsync([], () =>
        {
            var held = Book.Head.Reserved + Book.Head.Committed;
            if (uses < held)
            {
                return new InventoryResult<CouponLevel>(false, OrderErrorCode.InvalidCommand,
                    $"coupon {Key} has {held} uses reserved or redeemed; it cannot be issued with {uses}", Level());
            }

            Book.Head.Exists = true;
            Book.Head.Available = uses - held;
            Book.Touch();
            return new InventoryResult<CouponLevel>(true, null, null, Level());
        });
    }

    public Task<CouponLevel> GetAsync() => Ids.IsValid(Key)
        ? Book.RunAsync([], Level)
        : Task.FromResult(new CouponLevel(Key, false, 0, 0, 0, 0));

    private CouponLevel Level() =>
        new(Key, Book.Head.Exists, Book.Head.Available + Book.Head.Reserved + Book.Head.Committed, Book.Head.Reserved,
            Book.Head.Committed, Book.Head.Pending.Count);
}
