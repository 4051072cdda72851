using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Messaging;

[GenerateSerializer, Alias("messaging.DeadLetterIndexState.v1")]
public sealed class DeadLetterIndexState
{
    /// <summary>Order id → its dead letter. A parked order holds at most one: everything after it waits behind it.</summary>
    [Id(0)] public Dictionary<string, DeadLetter> Parked { get; set; } = [];
}

/// <summary>
/// The operators' list of one shard of one subscriber's parked orders (key <c>{subscriber}.{shard}</c>, see
/// <see cref="DeadLetterShards"/>). The parked events themselves stay in each order's inbox; this is the index that makes
/// them cheap to count and list. The inbox is the truth and the index follows it: a subscriber retries a failed index
/// update and re-asserts its entry when it is activated parked, and <c>deadletters list</c> drops entries whose inbox is
/// no longer parked. A shard keeps at most <see cref="DeadLetterShards.MaxEntriesPerShard"/> entries, so its row stays far
/// below Azure Table's 1 MB; a new entry beyond that is refused and logged (updates of listed orders still land).
/// A key without the separator is the pre-shard index of a whole subscriber, kept readable so its entries can be moved.
/// </summary>
[GrainType("dead-letter-index")]
public sealed partial class DeadLetterIndexGrain(
    [PersistentState("deadletters", StorageNames.Ledgers)] IPersistentState<DeadLetterIndexState> index,
    ILogger<DeadLetterIndexGrain> logger)
    : Grain, IDeadLetterIndexGrain
{
    private readonly GuardedState<DeadLetterIndexState> _index = new(index);

    public async Task ParkAsync(DeadLetter letter)
    {
        // Errors written before they were capped (FailureClassifier) must not grow the row either.
        letter = letter with { Error = FailureClassifier.Truncate(letter.Error) };
        var listed = _index.State.Parked.TryGetValue(letter.OrderId, out var existing);
        if (listed && existing == letter)
        {
            return;
        }

        if (!listed && _index.State.Parked.Count >= DeadLetterShards.MaxEntriesPerShard)
        {
            // The row must stay writable for the entries it has. The order is parked in its inbox all the same.
            LogShardFull(this.GetPrimaryKeyString(), letter.OrderId, _index.State.Parked.Count);
            return;
        }

        _index.State.Parked[letter.OrderId] = letter;
        await _index.WriteOrReloadAsync(this);
    }

    public async Task ResolveAsync(string orderId)
    {
        if (_index.State.Parked.Remove(orderId))
        {
            await _index.WriteOrReloadAsync(this);
        }
    }

    public async Task<bool> ResolveStaleAsync(DeadLetter letter)
    {
        if (!_index.State.Parked.TryGetValue(letter.OrderId, out var existing) || existing != letter)
        {
            return false;
        }

        _index.State.Parked.Remove(letter.OrderId);
        await _index.WriteOrReloadAsync(this);
        return true;
    }

    public Task<IReadOnlyList<DeadLetter>> ListAsync() => Task.FromResult<IReadOnlyList<DeadLetter>>(
        _index.State.Parked.Values.OrderBy(letter => letter.FirstFailureAt).ThenBy(letter => letter.OrderId, StringComparer.Ordinal).ToArray());

    public Task<int> CountAsync() => Task.FromResult(_index.State.Parked.Count);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "Dead-letter index {Shard} is full ({Count} entries): order {OrderId} is parked but not listed; it shows in order show")]
    private partial void LogShardFull(string shard, string orderId, int count);
}
