using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// Everything about one order in one record, so one write makes the new state, the event log and the outbox
/// durable together. Events with a sequence above <see cref="PublishedSequence"/> are the outbox.
/// </summary>
[GenerateSerializer, Alias("orders.OrderState.v1")]
public sealed class OrderState
{
    [Id(0)] public OrderStatus Status { get; set; }
    [Id(1)] public string? UserId { get; set; }
    [Id(2)] public List<OrderLine> Items { get; set; } = [];
    [Id(3)] public decimal Total { get; set; }
    [Id(4)] public decimal PaidAmount { get; set; }
    [Id(5)] public string? PaymentId { get; set; }
    [Id(6)] public string? CouponId { get; set; }
    [Id(7)] public string? ActivityId { get; set; }

    /// <summary>The order's event log, in sequence order (sequence n is at index n - 1).</summary>
    [Id(8)] public List<OrderEvent> Events { get; set; } = [];

    /// <summary>
    /// Highest sequence the stream is known to have accepted. It is persisted lazily (with the next write), so after a
    /// restart at most the events since the last write are published again — subscribers drop them as duplicates.
    /// </summary>
    [Id(9)] public long PublishedSequence { get; set; }

    /// <summary>Command id → what it did, so a repeated command returns the same result and adds no event.</summary>
    [Id(10)] public Dictionary<string, ProcessedCommand> Commands { get; set; } = [];

    /// <summary>
    /// The placement epoch: reservations are made under it, and a fence (<see cref="OrderGrain.ResolvePlacementAsync"/>)
    /// moves it past an epoch whose reservations are given back. A record with status None and an epoch above zero is
    /// only fences: placements that were never written.
    /// </summary>
    [Id(11)] public long PlacementEpoch { get; set; }

    /// <summary>
    /// Set by every write of a new event, which the order's relay shard marked first (<see cref="IOrderRelayGrain.MarkAsync"/>).
    /// The relay forgets an order only once it is delivered up to its latest mark, and a mark covers every event before
    /// it: so for a marked record, "the relay does not hold this order" means every stored event was delivered, and an
    /// activation need not publish again what lies above <see cref="PublishedSequence"/>. Records written before the
    /// relay existed lack it and are published again as before.
    /// </summary>
    [Id(12)] public bool RelayMarked { get; set; }

    public long LastSequence => Events.Count;
}

/// <summary>
/// A command id's first outcome. <see cref="Fingerprint"/> binds the id to the command's content
/// (<see cref="CommandFingerprint"/>); records stored before it existed have none and are matched by kind only.
/// </summary>
[GenerateSerializer, Immutable, Alias("orders.ProcessedCommand.v1")]
public sealed record ProcessedCommand(
    [property: Id(0)] string Kind,
    [property: Id(1)] long Sequence,
    [property: Id(2)] OrderStatus Status,
    [property: Id(3)] string? Fingerprint = null);
