using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Effects;

/// <summary>
/// Base of the effect accounts. <see cref="ApplyAsync"/> checks the processed key and, if it is new, moves the
/// balance and records the key in the same write — so a retried or re-run handler can never apply twice.
/// </summary>
public abstract class LedgerGrain(IPersistentState<LedgerState> ledger) : Grain, ILedgerGrain
{
    public async Task<LedgerResult> ApplyAsync(string processedKey, decimal delta)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(processedKey);
        if (ledger.State.Entries.ContainsKey(processedKey))
        {
            return new LedgerResult(false, ledger.State.Balance);
        }

        ledger.State.Balance += delta;
        ledger.State.Entries[processedKey] = delta;
        await ledger.WriteOrReloadAsync();

        return new LedgerResult(true, ledger.State.Balance);
    }

    public Task<LedgerSnapshot> GetAsync() =>
        Task.FromResult(new LedgerSnapshot(ledger.State.Balance, new Dictionary<string, decimal>(ledger.State.Entries)));
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
