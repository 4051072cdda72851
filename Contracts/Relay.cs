namespace OrderFlow.Contracts;

/// <summary>One order with undelivered work, as its relay shard holds it.</summary>
[GenerateSerializer, Immutable, Alias("relay.RelayEntry.v1")]
public sealed record RelayEntry(
    [property: Id(0)] string OrderId,
    [property: Id(1)] long Sequence,
    [property: Id(2)] DateTimeOffset Since,
    [property: Id(3)] int Checks,
    [property: Id(4)] IReadOnlyList<string> Behind);

/// <summary>What the order found when the relay asked it to settle: how far it is, and who is not there yet.</summary>
[GenerateSerializer, Immutable, Alias("relay.SettleReport.v1")]
public sealed record SettleReport(
    [property: Id(0)] string OrderId,
    [property: Id(1)] long LastSequence,
    [property: Id(2)] IReadOnlyList<string> Behind,
    [property: Id(3)] IReadOnlyList<string> Parked)
{
    /// <summary>Every event is published and every subscriber reached the last one, or holds it parked for an operator.</summary>
    public bool Settled => Behind.Count == 0;
}

/// <summary>An order's event, as a relay mark (about to be written) or a delivery (stored by every subscriber).</summary>
[GenerateSerializer, Immutable, Alias("relay.RelayPosition.v1")]
public readonly record struct RelayPosition(
    [property: Id(0)] string OrderId,
    [property: Id(1)] long Sequence);

/// <summary>What one call to a relay shard carries (<see cref="IOrderRelayGrain.ApplyAsync"/>): at most <see cref="MaxItems"/> of each.</summary>
[GenerateSerializer, Immutable, Alias("relay.RelayBatch.v1")]
public sealed record RelayBatch(
    [property: Id(0)] IReadOnlyList<RelayPosition> Marks,
    [property: Id(1)] IReadOnlyList<RelayPosition> Delivered)
{
    public const int MaxItems = 256;
}

/// <summary>A relay shard's view for operators.</summary>
[GenerateSerializer, Immutable, Alias("relay.RelayShardStatus.v1")]
public sealed record RelayShardStatus(
    [property: Id(0)] int Shard,
    [property: Id(1)] int Pending,
    [property: Id(2)] DateTimeOffset? OldestSince,
    [property: Id(3)] IReadOnlyDictionary<string, int> BehindBySubscriber,
    [property: Id(4)] IReadOnlyDictionary<string, DateTimeOffset> OldestBySubscriber);

/// <summary>
/// One shard of the order index's undelivered-work set (key = shard number, <see cref="Shards"/> of them; an order
/// belongs to shard <see cref="ShardOf"/>). An order marks its shard durably before it writes each event; the shard's
/// relay asks the order to settle — publish its outbox and bring every subscriber to its last event — until it reports
/// settled, then forgets it. So the set holds only orders with undelivered work, never every open order.
/// </summary>
[Alias("relay.IOrderRelayGrain")]
public interface IOrderRelayGrain : IGrainWithIntegerKey
{
    public const int Shards = 64;

    /// <summary>A stable shard of an order id (FNV-1a over its UTF-16 code units; never string.GetHashCode, which varies per process).</summary>
    public static int ShardOf(string orderId)
    {
        var hash = 2166136261u;
        foreach (var c in orderId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % Shards);
    }

    /// <summary>Records durably that the order is about to write event <paramref name="sequence"/>.</summary>
    [Alias("Mark")] Task MarkAsync(string orderId, long sequence);

    /// <summary>
    /// Many orders' marks and deliveries in one call (a silo's relay batcher sends them): the deliveries first, as
    /// <see cref="DeliveredAsync"/> each, then every mark as <see cref="MarkAsync"/> would, stored with one write. Returns,
    /// per mark in order, null when it is stored (or an equal or later one was), or why it was refused (the shard is
    /// full). A failed write fails the whole call: no mark of it is stored.
    /// </summary>
    [Alias("Apply")] Task<IReadOnlyList<string?>> ApplyAsync(RelayBatch batch);

    /// <summary>
    /// The order's own word that event <paramref name="sequence"/>, which it marked, was not written (its write failed
    /// and a re-read shows it absent, or the command was refused after the mark): the mark goes back to the event before.
    /// </summary>
    [Alias("Unmark")] Task UnmarkAsync(string orderId, long sequence);

    /// <summary>The order's answer to a settle request.</summary>
    [Alias("Report"), Orleans.Concurrency.OneWay] Task ReportAsync(SettleReport report);

    /// <summary>
    /// The order's dispatcher saw every subscriber store event <paramref name="sequence"/> as applied: the shard forgets
    /// the order if it marked nothing later; otherwise nothing changes (its own check still runs).
    /// </summary>
    [Alias("Delivered"), Orleans.Concurrency.OneWay] Task DeliveredAsync(string orderId, long sequence);

    [Alias("Find")] Task<RelayEntry?> FindAsync(string orderId);
    [Alias("Status")] Task<RelayShardStatus> GetStatusAsync();

    /// <summary>Starts the shard's relay (its reminder and timer) if it holds work; used at silo start-up and by tests.</summary>
    [Alias("Wake")] Task WakeAsync();
}

/// <summary>The relay's side door into an order (internal to the cluster, not client-callable).</summary>
[Alias("relay.IOrderSettleGrain")]
public interface IOrderSettleGrain : IGrainWithStringKey
{
    /// <summary>Publishes what is left in the outbox; returns the last and the published sequence.</summary>
    [Alias("FlushOutbox")] Task<(long LastSequence, long PublishedSequence)> FlushOutboxAsync();
}

/// <summary>Settles orders for the relay shards: one-way in, a report back to the order's shard (internal).</summary>
[Alias("relay.IRelayDriverGrain")]
public interface IRelayDriverGrain : IGrainWithIntegerKey
{
    [Alias("Settle"), Orleans.Concurrency.OneWay] Task SettleAsync(string orderId);
}

/// <summary>How far a subscriber is on one order, after being asked to reach its last event.</summary>
public enum ReachOutcome
{
    Reached = 1,
    Behind = 2,
    Parked = 3,
}
