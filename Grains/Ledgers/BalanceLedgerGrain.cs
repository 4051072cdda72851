using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Ledgers;

/// <summary>
/// Base of the balance ledgers (points, GMV). <see cref="ApplyAsync"/> checks the processed key and, if it is new, moves
/// the balance and records the key in the same commit (<see cref="LedgerBook{THead}"/>) — so a retried or re-run handler
/// can never apply twice, and a hot key (one activity's GMV) costs the same per write at the millionth order as at the
/// first. Reentrant: calls queue in the book while a commit is in flight and share the next one (group commit).
/// </summary>
[Reentrant]
public abstract class BalanceLedgerGrain : Grain, ILedgerGrain
{
    private readonly LedgerBook<BalanceHead> _book;

    protected BalanceLedgerGrain(IPersistentState<BalanceHead> head, string stateName, IServiceProvider services)
    {
        var context = services.GetRequiredService<IGrainContextAccessor>().GrainContext;
        _book = new LedgerBook<BalanceHead>(this, head, services.GetRequiredService<ILedgerEntryStore>(),
            EntriesOf(context.GrainId, stateName), services.GetRequiredService<ILoggerFactory>().CreateLogger(GetType()));
    }

    /// <summary>The entries' state name: the head's, with <c>.entry</c>.</summary>
    public static string EntryStateName(string stateName) => $"{stateName}.entry";

    /// <summary>The entries' grain type: the ledger's, with <c>.entry</c> (a record type only: no grain has it).</summary>
    public static GrainType EntryTypeOf(GrainType ledgerType) => GrainType.Create($"{ledgerType}.entry");

    /// <summary>Where the entries of the ledger <paramref name="ledger"/> (head state <paramref name="stateName"/>) live.</summary>
    public static LedgerEntries EntriesOf(GrainId ledger, string stateName) =>
        new(EntryStateName(stateName), EntryTypeOf(ledger.Type), ledger.Key.ToString()!);

    public Task<LedgerResult> ApplyAsync(string processedKey, decimal delta)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(processedKey);
        return _book.RunAsync([processedKey], () =>
        {
            if (_book.Find(processedKey) is not null)
            {
                return new LedgerResult(false, _book.Head.Balance);
            }

            _book.Head.Balance += delta;
            _book.Put(new LedgerEntry { Key = processedKey, Amount = delta });
            return new LedgerResult(true, _book.Head.Balance);
        });
    }

    public Task<LedgerSnapshot> GetAsync() =>
        _book.RunAsync([], () => new LedgerSnapshot(_book.Head.Balance, _book.Head.Entries));

    public Task<decimal?> GetEntryAsync(string processedKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(processedKey);
        return _book.RunAsync([processedKey], () => _book.Find(processedKey)?.Amount);
    }
}

[GrainType("ledger-points")]
public sealed class PointsAccountGrain(
    [PersistentState(LedgerStateNames.Points, StorageNames.Ledgers)] IPersistentState<BalanceHead> head, IServiceProvider services)
    : BalanceLedgerGrain(head, LedgerStateNames.Points, services), IPointsAccountGrain;

[GrainType("ledger-gmv")]
public sealed class ActivityGmvGrain(
    [PersistentState(LedgerStateNames.Gmv, StorageNames.Ledgers)] IPersistentState<BalanceHead> head, IServiceProvider services)
    : BalanceLedgerGrain(head, LedgerStateNames.Gmv, services), IActivityGmvGrain;

/// <summary>
/// The ledgers' head state names (their entries add <c>.entry</c>). Not the pre-reservation names ("points", "gmv",
/// "stock", "coupon"): those rows held every processed key in one record and are not read any more.
/// </summary>
public static class LedgerStateNames
{
    public const string Points = "points-balance";
    public const string Gmv = "gmv-balance";
    public const string Stock = "stock-level";
    public const string Coupon = "coupon-uses";
}
