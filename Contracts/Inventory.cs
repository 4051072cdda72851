using Orleans.Concurrency;

namespace OrderFlow.Contracts;

/// <summary>Bounds of the operators' stock and coupon figures (checked before any write, in the CLI and in the grain).</summary>
public static class InventoryLimits
{
    /// <summary>Most units a SKU may hold available at once.</summary>
    public const long MaxStock = 1_000_000_000;

    /// <summary>Most uses one coupon may be issued with.</summary>
    public const long MaxCouponUses = 1_000_000_000;

    /// <summary>
    /// Most reservations one SKU or coupon holds unconfirmed (made, not yet known to belong to a written order). A
    /// placement confirms its reservations right after its write, so this counts placements in flight and those whose
    /// silo died (until their check-back): beyond it a reservation is refused with <see cref="OrderErrorCode.TryLater"/>.
    /// They live in the key's head row: 2,000 of the longest order ids are about 320 KB, within Azure Table's 1 MB row.
    /// </summary>
    public const int MaxPending = 2_000;

    public static string? StockProblem(long available) =>
        available is < 0 or > MaxStock ? $"available stock must be between 0 and {MaxStock}, was {available}" : null;

    public static string? UsesProblem(long uses) =>
        uses is < 1 or > MaxCouponUses ? $"coupon uses must be between 1 and {MaxCouponUses}, was {uses}" : null;
}

/// <summary>
/// One SKU's stock as its record holds it: <see cref="Available"/> can still be reserved; <see cref="Reserved"/> is held
/// by placed, unpaid orders (and placements in flight); <see cref="Sold"/> by paid ones. <see cref="Pending"/> counts
/// reservations not yet confirmed by their order (in flight, or awaiting a check-back).
/// </summary>
[GenerateSerializer, Immutable, Alias("inventory.StockLevel.v1")]
public sealed record StockLevel(
    [property: Id(0)] string Sku,
    [property: Id(1)] bool Exists,
    [property: Id(2)] long Available,
    [property: Id(3)] long Reserved,
    [property: Id(4)] long Sold,
    [property: Id(5)] int Pending);

/// <summary>
/// One coupon's uses: <see cref="Issued"/> in total, <see cref="Reserved"/> by placed unpaid orders,
/// <see cref="Redeemed"/> by paid ones; <see cref="Available"/> is what is left to reserve.
/// </summary>
[GenerateSerializer, Immutable, Alias("inventory.CouponLevel.v1")]
public sealed record CouponLevel(
    [property: Id(0)] string CouponId,
    [property: Id(1)] bool Exists,
    [property: Id(2)] long Issued,
    [property: Id(3)] long Reserved,
    [property: Id(4)] long Redeemed,
    [property: Id(5)] int Pending)
{
    public long Available => Issued - Reserved - Redeemed;
}

/// <summary>The answer to an operator's stock or coupon command: accepted with the level after it, or refused with a reason (nothing written).</summary>
// A generic type's alias carries its arity (`1): on the wire its type name is the alias followed by [[argument]], which
// Orleans parses as generic arguments only after an arity; without it every answer to an external client was unreadable.
[GenerateSerializer, Immutable, Alias("inventory.InventoryResult.v1`1")]
public sealed record InventoryResult<TLevel>(
    [property: Id(0)] bool Accepted,
    [property: Id(1)] OrderErrorCode? Code,
    [property: Id(2)] string? Message,
    [property: Id(3)] TLevel Level);

/// <summary>
/// The stock record of one SKU (key = SKU), for operators: set the available quantity, read the figures. Orders reserve,
/// sell and release through <see cref="IReservationLedgerGrain"/> on the same grain.
/// </summary>
[Alias("inventory.IStockGrain")]
[ClientCallable]
public interface IStockGrain : IGrainWithStringKey
{
    /// <summary>
    /// Sets how many units can still be reserved (absolute, so repeating it is harmless); reserved and sold units are
    /// not touched. Refused with <see cref="OrderErrorCode.InvalidCommand"/> outside 0..<see cref="InventoryLimits.MaxStock"/>
    /// or for a SKU outside <see cref="Ids"/>.
    /// </summary>
    [Alias("Set")] Task<InventoryResult<StockLevel>> SetAvailableAsync(long available);

    [Alias("Get")] Task<StockLevel> GetAsync();
}

/// <summary>
/// One coupon (key = coupon id), for operators: issue it with a number of uses, read the figures. A coupon's uses are
/// reserved by placements and redeemed by payments through <see cref="IReservationLedgerGrain"/> on the same grain.
/// </summary>
[Alias("inventory.ICouponGrain")]
[ClientCallable]
public interface ICouponGrain : IGrainWithStringKey
{
    /// <summary>
    /// Issues the coupon with <paramref name="uses"/> uses in total. Issuing again sets the total (repeating is
    /// harmless); refused when the total would fall below the uses already reserved or redeemed.
    /// </summary>
    [Alias("Issue")] Task<InventoryResult<CouponLevel>> IssueAsync(long uses);

    [Alias("Get")] Task<CouponLevel> GetAsync();
}

/// <summary>Where one order's reservation on one SKU or coupon stands.</summary>
public enum ReservationState
{
    /// <summary>Held for the order (placed, or a placement in flight).</summary>
    Reserved = 1,

    /// <summary>Turned into a sale (stock) or a redemption (coupon) by the order's payment.</summary>
    Committed = 2,

    /// <summary>Given back before payment: the placement was never written, or the unpaid order was cancelled.</summary>
    Released = 3,

    /// <summary>Given back after payment: the paid order was cancelled (restocked, coupon restored).</summary>
    Restored = 4,
}

/// <summary>
/// One order's reservation on one SKU or coupon, as stored (one record per order and SKU or coupon, never in the
/// SKU's own row). <see cref="Epoch"/> is the order's placement epoch (<see cref="IOrderPlacementGrain"/>).
/// </summary>
[GenerateSerializer, Immutable, Alias("inventory.Reservation.v1")]
public sealed record Reservation(
    [property: Id(0)] string OrderId,
    [property: Id(1)] long Epoch,
    [property: Id(2)] long Quantity,
    [property: Id(3)] ReservationState State,
    [property: Id(4)] DateTimeOffset UpdatedAt);

/// <summary>What a reservation call did.</summary>
public enum ReservationOutcome
{
    /// <summary>The change was made now.</summary>
    Done = 1,

    /// <summary>The reservation already was where the call wanted it: nothing changed (a repeat).</summary>
    AlreadyDone = 2,

    /// <summary>Not enough left (stock or coupon uses): nothing reserved.</summary>
    Insufficient = 3,

    /// <summary>No stock record for the SKU, or the coupon was never issued.</summary>
    Unknown = 4,

    /// <summary>A later placement epoch of the order is known here: this call belongs to a fenced placement.</summary>
    Fenced = 5,

    /// <summary>The reservation is not in a state the call applies to (e.g. selling a released reservation).</summary>
    Conflict = 6,

    /// <summary>Too many unconfirmed reservations on this key (<see cref="InventoryLimits.MaxPending"/>): retry later.</summary>
    Busy = 7,
}

[GenerateSerializer, Immutable, Alias("inventory.ReservationResult.v1")]
public sealed record ReservationResult(
    [property: Id(0)] ReservationOutcome Outcome,
    [property: Id(1)] long Left,
    [property: Id(2)] string? Message = null)
{
    public bool Succeeded => Outcome is ReservationOutcome.Done or ReservationOutcome.AlreadyDone;
}

/// <summary>
/// The reservation side of a SKU's stock or a coupon (key = SKU or coupon id): the single writer of that key's figures.
/// Not client-callable: orders and their subscribers call it.
/// <list type="bullet">
/// <item><see cref="ReserveAsync"/> — a placement takes <c>quantity</c> (pending until confirmed);</item>
/// <item><see cref="ConfirmAsync"/> — the order wrote its placement: the reservation stays (no check-back needed);</item>
/// <item><see cref="SettleAsync"/> — the order's verdict on a pending reservation: keep it, or release it (the order
///   fenced that placement first);</item>
/// <item><see cref="CommitAsync"/> — the order was paid: reserved → sold / redeemed;</item>
/// <item><see cref="ReleaseAsync"/> — the order was cancelled: whatever it holds goes back.</item>
/// </list>
/// Every call is idempotent: each order's reservation is one stored record with a state, and the key's figures move
/// only with a change of that state, in the same commit.
/// </summary>
[Alias("inventory.IReservationLedgerGrain")]
public interface IReservationLedgerGrain : IGrainWithStringKey
{
    [Alias("Reserve")] Task<ReservationResult> ReserveAsync(string orderId, long epoch, long quantity);

    /// <summary>One-way: a lost confirmation only means the reservation is checked back later, and kept.</summary>
    [Alias("Confirm"), OneWay] Task ConfirmAsync(string orderId, long epoch);

    [Alias("Settle")] Task<ReservationResult> SettleAsync(string orderId, long epoch, bool keep);

    [Alias("Commit")] Task<ReservationResult> CommitAsync(string orderId);

    [Alias("Release")] Task<ReservationResult> ReleaseAsync(string orderId);

    [Alias("GetReservation")] Task<Reservation?> GetReservationAsync(string orderId);
}

/// <summary>The reservation ledger of a SKU (grain type <c>stock</c>).</summary>
[Alias("inventory.IStockReservationsGrain")]
public interface IStockReservationsGrain : IReservationLedgerGrain;

/// <summary>The reservation ledger of a coupon (grain type <c>coupon-uses</c>).</summary>
[Alias("inventory.ICouponReservationsGrain")]
public interface ICouponReservationsGrain : IReservationLedgerGrain;

/// <summary>The order's verdict on a pending reservation.</summary>
public enum PlacementVerdict
{
    /// <summary>The order was written with this placement: the reservation belongs to it.</summary>
    Keep = 1,

    /// <summary>The order recorded durably that this placement will never be written (a fence): give the reservation back.</summary>
    Release = 2,
}

/// <summary>
/// The order's side of the reservation check-back (RocketMQ's transaction check, per key): a SKU or coupon holding a
/// reservation its order never confirmed asks the order what became of that placement. The answer is authoritative:
/// before answering <see cref="PlacementVerdict.Release"/> the order writes a fence (its placement epoch moves past
/// <c>epoch</c>), so a placement of that epoch still in flight — a slow or zombie activation — can no longer be
/// written (its write carries a stale ETag, and a new placement reserves again under the new epoch).
/// </summary>
[Alias("orders.IOrderPlacementGrain")]
public interface IOrderPlacementGrain : IGrainWithStringKey
{
    /// <summary>
    /// <see cref="PlacementVerdict.Keep"/> only when the order is placed (and not cancelled) with placement
    /// <paramref name="epoch"/> and holds exactly <paramref name="quantity"/> of <paramref name="key"/> (a SKU of its lines
    /// for <see cref="LedgerKind.Stock"/>, its coupon for <see cref="LedgerKind.Coupon"/>); otherwise
    /// <see cref="PlacementVerdict.Release"/>, after the fence when the order was never placed.
    /// </summary>
    [Alias("ResolvePlacement")] Task<PlacementVerdict> ResolvePlacementAsync(long epoch, LedgerKind kind, string key, long quantity);
}

/// <summary>
/// One payment id (key = payment id): which order it paid. A payment id pays one order only; a second order is refused
/// with <see cref="OrderErrorCode.PaymentIdReused"/>. One small record per payment.
/// </summary>
[Alias("orders.IPaymentIdGrain")]
public interface IPaymentIdGrain : IGrainWithStringKey
{
    /// <summary>Claims the payment id for <paramref name="orderId"/> (durably) unless another order has it; returns the order that holds it.</summary>
    [Alias("Claim")] Task<string> ClaimAsync(string orderId);

    [Alias("Owner")] Task<string?> GetOwnerAsync();
}
