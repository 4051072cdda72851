namespace OrderFlow.Grains.Hosting;

/// <summary>Names of the grain storage providers the grains ask for. Every profile must register all of them.</summary>
public static class StorageNames
{
    /// <summary>Order state together with its outbox and event log.</summary>
    public const string Orders = "orders";

    /// <summary>Subscriber inboxes: applied sequence, reorder buffer, retry state and dead letters.</summary>
    public const string Subscribers = "subscribers";

    /// <summary>Effect ledgers: balances with their processed keys, replica rows and the dead-letter index.</summary>
    public const string Ledgers = "ledgers";

    /// <summary>
    /// Flash sales: each sale's record, its admission shards' heads and their sealed ticket segments. A store of its own,
    /// so a sale's burst of admission writes is apart from orders and ledgers (its own Azure table, countable on its own).
    /// </summary>
    public const string FlashSales = "flashsales";

    /// <summary>Orleans' own stream pub-sub store (needed by the stream provider even with implicit subscriptions only).</summary>
    public const string PubSub = "PubSubStore";

    /// <summary>Every provider above, in the order a profile registers them.</summary>
    public static IReadOnlyList<string> All { get; } = [Orders, Subscribers, Ledgers, FlashSales, PubSub];
}
