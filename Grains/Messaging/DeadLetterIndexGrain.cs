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
/// The operators' list of one subscriber's parked orders (key = subscriber name). The parked events themselves
/// stay in each order's inbox; this is the index that makes them cheap to count and list. The inbox is the truth and
/// the index follows it: a subscriber retries a failed index update and re-asserts its entry when it is activated
/// parked, and <c>deadletters list</c> drops entries whose inbox is no longer parked.
/// </summary>
[GrainType("dead-letter-index")]
public sealed class DeadLetterIndexGrain([PersistentState("deadletters", StorageNames.Ledgers)] IPersistentState<DeadLetterIndexState> index)
    : Grain, IDeadLetterIndexGrain
{
    private readonly GuardedState<DeadLetterIndexState> _index = new(index);

    public async Task ParkAsync(DeadLetter letter)
    {
        if (_index.State.Parked.TryGetValue(letter.OrderId, out var existing) && existing == letter)
        {
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
}
