using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The record of one sale (<see cref="IFlashSaleRecordGrain"/>). Units are taken at admission, from here: a shard asks
/// for exactly the units of the requests it is about to queue, and the grant is written before the shard may use it, so
/// the sum of every shard's tickets never exceeds the stock, whatever crashes (a shard that lost its answer asks again and
/// hears its authoritative total). Not reentrant, and it calls no other flash-sale grain.
/// </summary>
[GrainType("flash-sale")]
public sealed partial class FlashSaleRecordGrain(
    [PersistentState("flash-sale", StorageNames.FlashSales)] IPersistentState<FlashSaleRecord> record,
    TimeProvider clock,
    ILogger<FlashSaleRecordGrain> logger) : Grain, IFlashSaleRecordGrain
{
    private readonly GuardedState<FlashSaleRecord> _record = new(record);
    private readonly Dictionary<AdmissionOutcome, long> _frontRefusals = [];

    private string SaleId => this.GetPrimaryKeyString();

    public async Task<FlashSaleCommandResult> CreateAsync(FlashSaleSpec spec)
    {
        var now = clock.GetUtcNow();
        // No start given (FlashSaleSpec.StartsNow): the sale starts when it is created, and creating it again with the
        // same settings is a repeat as long as it has started — a caller retrying after a lost answer gets the first one.
        var startsNow = spec is { StartsAt: var at } && at == FlashSaleSpec.StartsNow;
        if (startsNow)
        {
            spec = spec with { StartsAt = now };
        }

        if (FlashSaleLimits.SpecProblem(SaleId, spec, now) is { } problem)
        {
            return Refuse(FlashSaleError.InvalidInput, problem);
        }

        if (_record.State.Spec is { } existing)
        {
            return existing == spec with { Rate = existing.Rate, StartsAt = startsNow && existing.StartsAt <= now ? existing.StartsAt : spec.StartsAt }
                ? new FlashSaleCommandResult(true, null, "the sale exists with these settings (a repeat)", existing)
                : Refuse(FlashSaleError.SaleExists, $"sale {SaleId} exists with other settings: {Describe(existing)}");
        }

        // The sale's units must be there to sell: its orders reserve them from the SKU's stock record like any order.
        var level = await GrainFactory.GetGrain<IStockGrain>(spec.Sku).GetAsync();
        if (!level.Exists)
        {
            return Refuse(FlashSaleError.UnknownSku, $"SKU {spec.Sku} has no stock record (stock set {spec.Sku} QTY creates it)");
        }

        if (level.Available < spec.Stock)
        {
            return Refuse(FlashSaleError.InsufficientStock, $"SKU {spec.Sku} has {level.Available} units available, the sale wants {spec.Stock}");
        }

        _record.State.Spec = spec;
        _record.State.CreatedAt = now;
        _record.State.OrderKey = FlashSaleLimits.NewOrderKey();
        await _record.WriteOrReloadAsync(this);
        LogCreated(SaleId, spec.Sku, spec.Stock, spec.Rate, spec.StartsAt);
        return new FlashSaleCommandResult(true, null, null, spec);
    }

    public async Task<FlashSaleCommandResult> SetRateAsync(int rate)
    {
        if (FlashSaleLimits.RateProblem(rate) is { } problem)
        {
            return Refuse(FlashSaleError.InvalidInput, problem);
        }

        if (_record.State.Spec is not { } spec)
        {
            return Refuse(FlashSaleError.UnknownSale, $"no sale {SaleId}");
        }

        if (spec.Rate != rate)
        {
            _record.State.Spec = spec with { Rate = rate };
            await _record.WriteOrReloadAsync(this);
            LogRate(SaleId, spec.Rate, rate);
        }

        return new FlashSaleCommandResult(true, null, null, _record.State.Spec);
    }

    public Task<FlashSaleInfo> RefreshAsync(IReadOnlyDictionary<AdmissionOutcome, long>? refusals)
    {
        foreach (var (outcome, count) in refusals ?? new Dictionary<AdmissionOutcome, long>())
        {
            _frontRefusals[outcome] = _frontRefusals.GetValueOrDefault(outcome) + count;
        }

        return Task.FromResult(Info());
    }

    public async Task<UnitGrant> TakeUnitsAsync(int shard, long wanted)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, FlashSaleLimits.Shards);
        ArgumentOutOfRangeException.ThrowIfNegative(wanted);
        var state = _record.State;
        var give = Math.Min(wanted, state.UnitsLeft);
        if (give > 0)
        {
            state.Granted[shard] += give;
            // Written before the shard hears of it: a unit is in exactly one shard's hands, durably.
            await _record.WriteOrReloadAsync(this);
        }

        return new UnitGrant(_record.State.Granted[shard], _record.State.UnitsLeft, _record.State.Exhausted);
    }

    public async Task MarkExhaustedAsync()
    {
        if (_record.State.Spec is not null && !_record.State.Exhausted)
        {
            _record.State.Exhausted = true;
            await _record.WriteOrReloadAsync(this);
            LogExhausted(SaleId);
        }
    }

    public Task<IReadOnlyDictionary<AdmissionOutcome, long>> GetFrontRefusalsAsync() =>
        Task.FromResult<IReadOnlyDictionary<AdmissionOutcome, long>>(new Dictionary<AdmissionOutcome, long>(_frontRefusals));

    private FlashSaleInfo Info() =>
        new(_record.State.Spec is not null, _record.State.Spec, _record.State.UnitsLeft, _record.State.Exhausted, _record.State.OrderKey);

    private static FlashSaleCommandResult Refuse(FlashSaleError error, string message) => new(false, error, message, null);

    public static string Describe(FlashSaleSpec s) =>
        $"sku {s.Sku}, stock {s.Stock}, rate {s.Rate}/s, starts {s.StartsAt:O}, per-user limit {s.PerUserLimit}, buffer {s.Buffer}, price {s.Price}";

    [LoggerMessage(Level = LogLevel.Information, Message = "Flash sale {SaleId} created: SKU {Sku}, {Stock} units, {Rate} orders/s, starts {StartsAt}")]
    private partial void LogCreated(string saleId, string sku, long stock, int rate, DateTimeOffset startsAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flash sale {SaleId}: rate {OldRate} → {NewRate} orders/s")]
    private partial void LogRate(string saleId, int oldRate, int newRate);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId}: the SKU refused a winner's order (out of stock); every remaining ticket ends sold out")]
    private partial void LogExhausted(string saleId);
}
