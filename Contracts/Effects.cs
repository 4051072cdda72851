namespace OrderFlow.Contracts;

/// <summary>The outcome of one ledger entry: applied now, or already applied under the same key (ignored).</summary>
[GenerateSerializer, Immutable, Alias("effects.LedgerResult.v1")]
public sealed record LedgerResult(
    [property: Id(0)] bool Applied,
    [property: Id(1)] decimal Balance);

/// <summary>A ledger's balance and how many processed keys it has recorded (the keys themselves are one record each: <see cref="ILedgerGrain.GetEntryAsync"/>).</summary>
[GenerateSerializer, Immutable, Alias("effects.LedgerSnapshot.v2")]
public sealed record LedgerSnapshot(
    [property: Id(0)] decimal Balance,
    [property: Id(1)] long Entries);

/// <summary>
/// An effect account with the seed's strong check: the processed key (order id + business scenario) is
/// committed together with the balance, so an effect is applied at most once per key. Each key is its own record, so a
/// write costs the same whatever the number of keys the ledger holds (hot keys: docs/ARCHITECTURE.md).
/// </summary>
[Alias("effects.ILedgerGrain")]
public interface ILedgerGrain : IGrainWithStringKey
{
    [Alias("Apply")] Task<LedgerResult> ApplyAsync(string processedKey, decimal delta);
    [Alias("Get")] Task<LedgerSnapshot> GetAsync();

    /// <summary>The amount <paramref name="processedKey"/> applied, or null when this ledger never applied it.</summary>
    [Alias("GetEntry")] Task<decimal?> GetEntryAsync(string processedKey);
}

/// <summary>Points of one user (key = user id).</summary>
[Alias("effects.IPointsAccountGrain")]
public interface IPointsAccountGrain : ILedgerGrain;

/// <summary>GMV of one marketing activity (key = activity id).</summary>
[Alias("effects.IActivityGmvGrain")]
public interface IActivityGmvGrain : ILedgerGrain;

/// <summary>One text message sent to a user.</summary>
[GenerateSerializer, Immutable, Alias("effects.SmsMessage.v1")]
public sealed record SmsMessage(
    [property: Id(0)] string OrderId,
    [property: Id(1)] string Kind,
    [property: Id(2)] string Text,
    [property: Id(3)] DateTimeOffset SentAt);

/// <summary>
/// The SMS gateway of one user (key = user id), with the seed's weak check: a time-limited key per
/// (order id, message kind), held in memory and bounded, like a Redis key with an expiry.
/// </summary>
[Alias("effects.ISmsGatewayGrain")]
public interface ISmsGatewayGrain : IGrainWithStringKey
{
    /// <summary>Sends unless the same (order, kind) was sent within the dedupe window; returns whether it sent.</summary>
    [Alias("Send")] Task<bool> SendAsync(string orderId, string kind, string text);
    [Alias("GetSent")] Task<IReadOnlyList<SmsMessage>> GetSentAsync();
}

public enum ReplicaOperation
{
    Insert = 1,
    Update = 2,
    Delete = 3,

    /// <summary>An event that does not change the row (an event kind the sync does not know): only the version moves.</summary>
    Skip = 4,
}

/// <summary>One change to an order's replica row, versioned by the event's sequence.</summary>
[GenerateSerializer, Immutable, Alias("effects.ReplicaChange.v1")]
public sealed record ReplicaChange(
    [property: Id(0)] ReplicaOperation Operation,
    [property: Id(1)] long Version,
    [property: Id(2)] OrderStatus Status,
    [property: Id(3)] decimal? Total);

/// <summary>
/// The replica row of one order. <see cref="Violations"/> counts changes that arrived out of order or did
/// not fit the row (insert over an existing row, update or delete of a missing one): it must stay zero.
/// </summary>
[GenerateSerializer, Immutable, Alias("effects.ReplicaRow.v1")]
public sealed record ReplicaRow(
    [property: Id(0)] bool Exists,
    [property: Id(1)] OrderStatus Status,
    [property: Id(2)] decimal Total,
    [property: Id(3)] long Version,
    [property: Id(4)] int Violations,
    [property: Id(5)] int Changes);

/// <summary>A row of the downstream order table kept in sync by the order-sync subscriber (key = order id).</summary>
[Alias("effects.IOrderReplicaGrain")]
public interface IOrderReplicaGrain : IGrainWithStringKey
{
    [Alias("Apply")] Task<ReplicaRow> ApplyAsync(ReplicaChange change);
    [Alias("Get")] Task<ReplicaRow> GetAsync();
}
