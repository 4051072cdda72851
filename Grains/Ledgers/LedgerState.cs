using OrderFlow.Contracts;

namespace OrderFlow.Grains.Ledgers;

/// <summary>
/// The head row of a ledger (one per ledger key: a user's points, a SKU's stock …): its figures, and the journal of its
/// last commit. The head never holds the processed keys themselves — each is its own record (<see cref="LedgerEntry"/>)
/// — so a write costs the same whatever the number of orders that touched the key.
/// <para>
/// <b>The journal</b> makes the head and the entries of one commit atomic without a multi-record transaction: a commit
/// writes the head with the changed entries in <see cref="Journal"/> (one write: the commit point), then writes each
/// entry to its own record. An activation that finds a journal writes its entries again before doing anything else, so
/// an entry whose record was not written (a crash, a failed write) is still found, in the journal, until it is. A
/// journal holds at most one batch (<see cref="LedgerBook{THead}.MaxBatch"/> entries).
/// </para>
/// </summary>
[GenerateSerializer, Alias("ledgers.LedgerHead.v1")]
public abstract class LedgerHead
{
    /// <summary>How many entries this ledger ever recorded (processed keys, or reservations).</summary>
    [Id(0)] public long Entries { get; set; }

    /// <summary>Commit counter: each entry records the version that wrote it, so a re-written entry never goes back.</summary>
    [Id(1)] public long Version { get; set; }

    /// <summary>The entries of the last commit (see the class summary).</summary>
    [Id(2)] public List<LedgerEntry> Journal { get; set; } = [];
}

/// <summary>A points or GMV balance.</summary>
[GenerateSerializer, Alias("ledgers.BalanceHead.v1")]
public sealed class BalanceHead : LedgerHead
{
    [Id(0)] public decimal Balance { get; set; }
}

/// <summary>A SKU's stock or a coupon's uses, with the reservations not yet confirmed by their order.</summary>
[GenerateSerializer, Alias("ledgers.ReservationHead.v1")]
public sealed class ReservationHead : LedgerHead
{
    /// <summary>True once an operator created the record (stock set, coupon issued): reservations on a missing record are refused.</summary>
    [Id(0)] public bool Exists { get; set; }

    [Id(1)] public long Available { get; set; }
    [Id(2)] public long Reserved { get; set; }

    /// <summary>Sold units (stock) or redeemed uses (coupon).</summary>
    [Id(3)] public long Committed { get; set; }

    /// <summary>
    /// Reservations their order has not confirmed yet (order id → epoch, quantity, since when): placements in flight, and
    /// those whose silo died before the confirmation. Bounded by <see cref="InventoryLimits.MaxPending"/>.
    /// </summary>
    [Id(4)] public Dictionary<string, PendingReservation> Pending { get; set; } = new(StringComparer.Ordinal);
}

[GenerateSerializer, Immutable, Alias("ledgers.PendingReservation.v1")]
public sealed record PendingReservation(
    [property: Id(0)] long Epoch,
    [property: Id(1)] long Quantity,
    [property: Id(2)] DateTimeOffset Since);

/// <summary>
/// One entry of a ledger, in a record of its own: a processed key and the amount it applied (points, GMV), or an order's
/// reservation (stock, coupon; key = order id). <see cref="Version"/> is the head version of the commit that wrote it.
/// </summary>
[GenerateSerializer, Alias("ledgers.LedgerEntry.v1")]
public sealed class LedgerEntry
{
    [Id(0)] public string Key { get; set; } = "";
    [Id(1)] public decimal Amount { get; set; }
    [Id(2)] public Reservation? Reservation { get; set; }
    [Id(3)] public long Version { get; set; }
}
