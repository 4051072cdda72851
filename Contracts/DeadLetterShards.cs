using System.Globalization;
using System.Text;

namespace OrderFlow.Contracts;

/// <summary>
/// Where a subscriber's dead letters are indexed: <see cref="Count"/> <see cref="IDeadLetterIndexGrain"/>s per subscriber,
/// keyed <c>{subscriber}.{shard}</c> (e.g. <c>points.17</c>), an order always in the shard of its id. One state row
/// per subscriber would hit Azure Table's 1 MB row limit at a few thousand parked orders — exactly when an outage parks
/// many at once. The separator is '.', not '/': Azure Table folds '/' in keys to '_', and subscriber names are
/// <c>[a-z-]</c>, so a shard key can never equal a subscriber name (the pre-shard key, see <see cref="IsShardKey"/>).
/// </summary>
public static class DeadLetterShards
{
    /// <summary>Shards per subscriber. Fixed: changing it moves orders to other shards (their entries would be re-parked on activation).</summary>
    public const int Count = 64;

    /// <summary>
    /// Most entries one shard keeps: with error texts capped at 300 characters an entry is at most ~600 bytes stored,
    /// so a full shard stays well under the row limit, and a subscriber lists up to <see cref="Count"/> × 1,000 = 64,000
    /// parked orders. Beyond that a shard refuses new entries (and logs each refusal); the orders stay parked in their
    /// inboxes, which are the truth, and show in <c>order show</c>.
    /// </summary>
    public const int MaxEntriesPerShard = 1000;

    public const char Separator = '.';

    /// <summary>
    /// The shard of an order: FNV-1a (32-bit) of the id's UTF-8 bytes, modulo <see cref="Count"/>. Stable across
    /// processes and versions, unlike <see cref="string.GetHashCode()"/>, which is randomized per process.
    /// </summary>
    public static int ShardOf(string orderId)
    {
        ArgumentNullException.ThrowIfNull(orderId);
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(orderId))
        {
            hash = (hash ^ b) * 16777619u;
        }

        return (int)(hash % Count);
    }

    public static string Key(string subscriber, int shard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, Count);
        return string.Create(CultureInfo.InvariantCulture, $"{subscriber}{Separator}{shard}");
    }

    /// <summary>The index grain key that holds <paramref name="orderId"/>'s dead letter at <paramref name="subscriber"/>.</summary>
    public static string KeyFor(string subscriber, string orderId) => Key(subscriber, ShardOf(orderId));

    /// <summary>Every shard key of one subscriber, shard 0 first.</summary>
    public static IReadOnlyList<string> KeysOf(string subscriber) => Enumerable.Range(0, Count).Select(shard => Key(subscriber, shard)).ToArray();

    /// <summary>False for the pre-shard key (the bare subscriber name), whose one row held every parked order.</summary>
    public static bool IsShardKey(string key) => key.Contains(Separator, StringComparison.Ordinal);
}
