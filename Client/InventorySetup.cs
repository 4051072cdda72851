using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>
/// The stock and coupon uses a set of orders needs: every SKU its lines name, with the sum of their quantities, and every
/// coupon, with one use per order using it. A placement reserves from these records and is refused without them
/// (<see cref="OrderErrorCode.UnknownSku"/>, <see cref="OrderErrorCode.CouponUnavailable"/>), so the demo and the bench
/// create them before their first order — exactly enough, so that nothing is refused and no order waits for another.
/// </summary>
public sealed class InventoryNeeds
{
    private readonly Dictionary<string, long> _stock;
    private readonly Dictionary<string, long> _coupons;

    private InventoryNeeds(Dictionary<string, long> stock, Dictionary<string, long> coupons) => (_stock, _coupons) = (stock, coupons);

    public IReadOnlyDictionary<string, long> Stock => _stock;

    public IReadOnlyDictionary<string, long> Coupons => _coupons;

    public static InventoryNeeds For(IEnumerable<OrderPlan> plans)
    {
        var (stock, coupons) = (new Dictionary<string, long>(StringComparer.Ordinal), new Dictionary<string, long>(StringComparer.Ordinal));
        foreach (var plan in plans)
        {
            foreach (var line in plan.Items)
            {
                stock[line.Sku] = stock.GetValueOrDefault(line.Sku) + line.Quantity;
            }

            if (plan.CouponId is { } coupon)
            {
                coupons[coupon] = coupons.GetValueOrDefault(coupon) + 1;
            }
        }

        return new InventoryNeeds(stock, coupons);
    }

    /// <summary>Every stock and coupon key, as the stored-state reader names them.</summary>
    public IEnumerable<(LedgerKind Kind, string Key)> Keys() =>
        _stock.Keys.Select(sku => (LedgerKind.Stock, sku)).Concat(_coupons.Keys.Select(coupon => (LedgerKind.Coupon, coupon)));

    /// <summary>The units (stock) or uses (coupon) the key was set up with.</summary>
    public long Initial(LedgerKind kind, string key) => kind switch
    {
        LedgerKind.Stock => _stock.GetValueOrDefault(key),
        LedgerKind.Coupon => _coupons.GetValueOrDefault(key),
        _ => 0,
    };

    public string Summary() =>
        $"stock for {_stock.Count} SKUs ({_stock.Values.Sum()} units), {_coupons.Count} coupons ({_coupons.Values.Sum()} uses)";

    /// <summary>
    /// Sets each SKU's available stock and issues each coupon, <paramref name="concurrency"/> at a time. Both calls are
    /// absolute (repeating one is harmless), so a transient failure is retried with the same call; a refusal throws.
    /// </summary>
    public async Task ApplyAsync(IClusterClient client, int concurrency, ResilientCaller? caller = null, CancellationToken cancellation = default)
    {
        caller ??= new ResilientCaller();
        var options = new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellation };
        await Parallel.ForEachAsync(_stock, options, async (pair, token) =>
        {
            var result = await caller.ExecuteAsync(() => client.GetGrain<IStockGrain>(pair.Key).SetAvailableAsync(pair.Value), token);
            Ensure(result.Accepted, $"stock {pair.Key}", result.Code, result.Message);
        });
        await Parallel.ForEachAsync(_coupons, options, async (pair, token) =>
        {
            var result = await caller.ExecuteAsync(() => client.GetGrain<ICouponGrain>(pair.Key).IssueAsync(pair.Value), token);
            Ensure(result.Accepted, $"coupon {pair.Key}", result.Code, result.Message);
        });
    }

    private static void Ensure(bool accepted, string what, OrderErrorCode? code, string? message)
    {
        if (!accepted)
        {
            throw new InvalidOperationException($"setting up {what} was refused: {code}: {Ids.Printable(message, 300)}");
        }
    }
}
