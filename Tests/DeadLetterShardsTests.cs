using OrderFlow.Contracts;

namespace OrderFlow.Tests;

/// <summary>Which dead-letter shard an order's entry lives in: the rule on its own, no cluster.</summary>
public sealed class DeadLetterShardsTests
{
    [Theory]
    // FNV-1a 32 of "a" is 0xe40c292c (the published test vector); 0xe40c292c % 64 = 44.
    [InlineData("a", 44)]
    [InlineData("x", 7)]
    [InlineData("o-1", 40)]
    [InlineData("order-42", 52)]
    [InlineData("poison-retry-0123456789abcdef", 25)]
    public void An_order_id_maps_to_the_same_shard_in_every_process_and_version(string orderId, int shard) =>
        Assert.Equal(shard, DeadLetterShards.ShardOf(orderId));

    [Fact]
    public void Shard_keys_are_valid_ids_that_no_subscriber_name_can_equal()
    {
        Assert.Equal("points.17", DeadLetterShards.Key("points", 17));
        Assert.Equal(DeadLetterShards.Key("activity-gmv", DeadLetterShards.ShardOf("o-1")), DeadLetterShards.KeyFor("activity-gmv", "o-1"));
        var keys = DeadLetterShards.KeysOf("activity-gmv");
        Assert.Equal(DeadLetterShards.Count, keys.Distinct().Count());
        Assert.All(keys, key => Assert.True(Ids.IsValid(key) && DeadLetterShards.IsShardKey(key), key));
        Assert.False(DeadLetterShards.IsShardKey("activity-gmv"));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeadLetterShards.Key("points", DeadLetterShards.Count));
    }

    [Fact]
    public void Orders_spread_over_every_shard_about_evenly()
    {
        var counts = new int[DeadLetterShards.Count];
        for (var i = 0; i < 64_000; i++)
        {
            counts[DeadLetterShards.ShardOf($"order-{i}")]++;
        }

        // 1,000 per shard on average; no shard near twice that, so the per-shard cap binds at about Count x cap orders.
        Assert.InRange(counts.Min(), 800, 1000);
        Assert.InRange(counts.Max(), 1000, 1200);
    }
}
