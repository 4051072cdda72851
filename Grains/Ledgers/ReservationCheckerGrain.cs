using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Ledgers;

/// <summary>Runs one reservation check-back: asks the order, then settles the reservation at its key.</summary>
[Alias("ledgers.IReservationCheckerGrain")]
public interface IReservationCheckerGrain : IGrainWithIntegerKey
{
    [Alias("Check"), OneWay] Task CheckAsync(LedgerKind kind, string key, string orderId, long epoch, long quantity);
}

/// <summary>
/// A stateless worker between a reservation ledger and an order, like the relay driver: the ledger never waits on the
/// order inside its own turn (the order may at that moment be waiting on the ledger for a reservation), and the order's
/// verdict reaches the ledger as a call of its own (<see cref="IReservationLedgerGrain.SettleAsync"/>). A check that
/// fails is sent again by the ledger's next rounds.
/// </summary>
[StatelessWorker, Reentrant]
[GrainType("reservation-checker")]
public sealed partial class ReservationCheckerGrain(ILogger<ReservationCheckerGrain> logger) : Grain, IReservationCheckerGrain
{
    public async Task CheckAsync(LedgerKind kind, string key, string orderId, long epoch, long quantity)
    {
        try
        {
            var verdict = await GrainFactory.GetGrain<IOrderPlacementGrain>(orderId).ResolvePlacementAsync(epoch, kind, key, quantity);
            IReservationLedgerGrain ledger = kind == LedgerKind.Stock
                ? GrainFactory.GetGrain<IStockReservationsGrain>(key)
                : GrainFactory.GetGrain<ICouponReservationsGrain>(key);
            var result = await ledger.SettleAsync(orderId, epoch, verdict == PlacementVerdict.Keep);
            LogSettled(kind, key, orderId, epoch, verdict, result.Outcome);
        }
        catch (Exception ex)
        {
            LogCheckFailed(ex, kind, key, orderId, epoch);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Kind} {Key}: order {OrderId} says {Verdict} for placement epoch {Epoch}; settled: {Outcome}")]
    private partial void LogSettled(LedgerKind kind, string key, string orderId, long epoch, PlacementVerdict verdict, ReservationOutcome outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} {Key}: check-back of order {OrderId} (epoch {Epoch}) failed; the ledger sends it again")]
    private partial void LogCheckFailed(Exception exception, LedgerKind kind, string key, string orderId, long epoch);
}
