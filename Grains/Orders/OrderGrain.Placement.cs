using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// Placement with reservations, all or nothing (docs/ARCHITECTURE.md, "Placing an order"): every line's stock and the
/// coupon are reserved under the order's placement epoch before the order is written; if any is refused, what was
/// reserved is given back after a fence, and the command is refused with a typed error. Payment ids pay one order.
/// </summary>
public sealed partial class OrderGrain : IOrderPlacementGrain
{
    private async Task<CommandResult> PlaceAsync(PlaceOrder command, OrderDecision.Accept accepted)
    {
        if (TooLarge(accepted.Event) is { } tooLarge)
        {
            return tooLarge;
        }

        if (benchSwitches.SkipReservations)
        {
            // Bench only (BenchSwitches): the "without reservations" side of the bench's ratio; never on outside a bench silo.
            return await AcceptAsync(command, accepted);
        }

        var epoch = State.PlacementEpoch;
        var claims = ClaimsOf(command);
        var outcomes = await Task.WhenAll(claims.Select(async claim =>
        {
            try
            {
                return (claim, Result: await claim.Ledger.ReserveAsync(OrderId, epoch, claim.Quantity), Error: (Exception?)null);
            }
            catch (Exception ex)
            {
                return (claim, Result: (ReservationResult?)null, Error: ex);
            }
        }));

        if (outcomes.All(o => o.Result is { Succeeded: true }))
        {
            CommandResult result;
            try
            {
                result = await AcceptAsync(command, accepted);
            }
            catch when (_order.IsTrusted && State.Status == OrderStatus.None)
            {
                // Not written (the re-read says so): give the reservations back now rather than at their check-back.
                await TryGiveBackAsync(epoch, claims);
                throw;
            }

            if (result.Accepted)
            {
                // One-way: a lost confirmation only means the key checks back later, and the order says "keep".
                foreach (var claim in claims)
                {
                    _ = claim.Ledger.ConfirmAsync(OrderId, epoch);
                }
            }
            else
            {
                // Refused after reserving (a full relay shard): give the reservations back like any refusal.
                await GiveBackAsync(epoch, claims);
            }

            return result;
        }

        // Something was refused or failed. What may be held (reserved, or unknown after an error) goes back — after the
        // fence, so that no other activation of this order can still write a placement of this epoch.
        var held = outcomes.Where(o => o.Result is null or { Succeeded: true }).Select(o => o.claim).ToArray();
        if (held.Length > 0)
        {
            await GiveBackAsync(epoch, held);
        }

        var refusal = outcomes.FirstOrDefault(o => o.Result is { Succeeded: false });
        if (refusal.Result is null)
        {
            var error = outcomes.First(o => o.Error is not null).Error!;
            LogReservationFailed(error, OrderId);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        var (code, message) = Refusal(refusal.claim, refusal.Result!);
        return Reject(code, message);
    }

    private async Task GiveBackAsync(long epoch, IReadOnlyList<Claim> claims)
    {
        await FenceAsync(epoch);
        await Task.WhenAll(claims.Select(async claim =>
        {
            try
            {
                await claim.Ledger.SettleAsync(OrderId, epoch, keep: false);
            }
            catch (Exception ex)
            {
                // Still pending at the key: its check-back asks this order, which answers "release" (fenced).
                LogGiveBackFailed(ex, OrderId, claim.Kind, claim.Key);
            }
        }));
    }

    private async Task TryGiveBackAsync(long epoch, IReadOnlyList<Claim> claims)
    {
        try
        {
            await GiveBackAsync(epoch, claims);
        }
        catch (Exception ex)
        {
            // The fence failed: the reservations stay pending and their check-back settles them.
            LogGiveBackFailed(ex, OrderId, claims[0].Kind, claims[0].Key);
        }
    }

    /// <summary>Records durably that no placement of <paramref name="epoch"/> will ever be written (see <see cref="IOrderPlacementGrain"/>).</summary>
    private async Task FenceAsync(long epoch)
    {
        if (State.PlacementEpoch <= epoch)
        {
            State.PlacementEpoch = epoch + 1;
            await _order.WriteOrReloadAsync(this);
            _persistedPublishedSequence = State.PublishedSequence;
        }
    }

    public async Task<PlacementVerdict> ResolvePlacementAsync(long epoch, LedgerKind kind, string key, long quantity)
    {
        switch (State.Status)
        {
            case OrderStatus.None:
                await FenceAsync(epoch);
                return PlacementVerdict.Release;
            case OrderStatus.Cancelled:
                // Its cancellation gives back what it holds; a reservation it never confirmed goes back too.
                return PlacementVerdict.Release;
            default:
                var holds = kind switch
                {
                    LedgerKind.Stock => State.Items.Where(line => line.Sku == key).Sum(line => (long)line.Quantity) == quantity,
                    LedgerKind.Coupon => State.CouponId == key && quantity == 1,
                    _ => false,
                };
                return holds && State.PlacementEpoch == epoch ? PlacementVerdict.Keep : PlacementVerdict.Release;
        }
    }

    private async Task<CommandResult> PayAsync(PayOrder command, OrderDecision.Accept accepted)
    {
        var owner = await GrainFactory.GetGrain<IPaymentIdGrain>(command.PaymentId).ClaimAsync(OrderId);
        return owner != OrderId
            ? Reject(OrderErrorCode.PaymentIdReused, $"payment {command.PaymentId} already paid order {owner}")
            : await AcceptAsync(command, accepted);
    }

    private List<Claim> ClaimsOf(PlaceOrder command)
    {
        var claims = command.Items
            .GroupBy(line => line.Sku, StringComparer.Ordinal)
            .Select(sku => new Claim(LedgerKind.Stock, sku.Key, sku.Sum(line => (long)line.Quantity),
                GrainFactory.GetGrain<IStockReservationsGrain>(sku.Key)))
            .ToList();
        if (command.CouponId is { } coupon)
        {
            claims.Add(new Claim(LedgerKind.Coupon, coupon, 1, GrainFactory.GetGrain<ICouponReservationsGrain>(coupon)));
        }

        return claims;
    }

    private static (OrderErrorCode Code, string Message) Refusal(Claim claim, ReservationResult result) => (claim.Kind, result.Outcome) switch
    {
        (_, ReservationOutcome.Busy) => (OrderErrorCode.TryLater, $"{claim.Kind} {claim.Key}: {result.Message}"),
        (LedgerKind.Stock, ReservationOutcome.Unknown) => (OrderErrorCode.UnknownSku, $"SKU {claim.Key} has no stock record"),
        (LedgerKind.Stock, ReservationOutcome.Insufficient) => (OrderErrorCode.OutOfStock, $"SKU {claim.Key} is out of stock: {result.Message}"),
        (LedgerKind.Coupon, ReservationOutcome.Unknown) => (OrderErrorCode.CouponUnavailable, $"coupon {claim.Key} was never issued"),
        (LedgerKind.Coupon, ReservationOutcome.Insufficient) => (OrderErrorCode.CouponUnavailable, $"coupon {claim.Key} has no use left"),
        _ => (OrderErrorCode.TryLater, $"{claim.Kind} {claim.Key}: {result.Outcome}: {result.Message}"),
    };

    private sealed record Claim(LedgerKind Kind, string Key, long Quantity, IReservationLedgerGrain Ledger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: a reservation failed; what was reserved is given back and the command fails")]
    private partial void LogReservationFailed(Exception exception, string orderId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: could not give back its {Kind} reservation on {Key}; the key's check-back will")]
    private partial void LogGiveBackFailed(Exception exception, string orderId, LedgerKind kind, string key);
}
