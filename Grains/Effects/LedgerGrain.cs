using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Effects;

/// <summary>
/// Base of the effect accounts. <see cref="ApplyAsync"/> checks the processed key and, if it is new, moves the
/// balance and records the key in the same write — so a retried or re-run handler can never apply twice.
/// </summary>
public abstract class LedgerGrain(IPersistentState<LedgerState> ledger) : Grain, ILedgerGrain
{
    // Guarded: a key whose write failed must never be answered as "already applied" (GuardedState).
    private readonly GuardedState<LedgerState> _ledger = new(ledger);

    public async Task<LedgerResult> ApplyAsync(string processedKey, decimal delta)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(processedKey);
        if (_ledger.State.Entries.ContainsKey(processedKey))
        {
            return new LedgerResult(false, _ledger.State.Balance);
        }

        _ledger.State.Balance += delta;
        _ledger.State.Entries[processedKey] = delta;
        await _ledger.WriteOrReloadAsync(this);

        return new LedgerResult(true, _ledger.State.Balance);
    }

    public Task<LedgerSnapshot> GetAsync() =>
        Task.FromResult(new LedgerSnapshot(_ledger.State.Balance, new Dictionary<string, decimal>(_ledger.State.Entries)));
}

[GrainType("ledger-points")]
public sealed class PointsAccountGrain([PersistentState("points", StorageNames.Ledgers)] IPersistentState<LedgerState> ledger)
    : LedgerGrain(ledger), IPointsAccountGrain;

[GrainType("ledger-coupon")]
public sealed class CouponGrain([PersistentState("coupon", StorageNames.Ledgers)] IPersistentState<LedgerState> ledger)
    : LedgerGrain(ledger), ICouponGrain;

[GrainType("ledger-gmv")]
public sealed class ActivityGmvGrain([PersistentState("gmv", StorageNames.Ledgers)] IPersistentState<LedgerState> ledger)
    : LedgerGrain(ledger), IActivityGmvGrain;

[GrainType("ledger-stock")]
public sealed class StockGrain([PersistentState("stock", StorageNames.Ledgers)] IPersistentState<LedgerState> ledger)
    : LedgerGrain(ledger), IStockGrain;
