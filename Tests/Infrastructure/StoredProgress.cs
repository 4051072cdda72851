using System.Diagnostics;
using OrderFlow.Contracts;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// The tests' "caught up?" from stored state only (<see cref="IStoredStateGrain"/>): no order or inbox grain is
/// activated while waiting, so a stuck outbox or an inbox that never reaches its order's end fails the wait instead of
/// being repaired by it.
/// </summary>
public static class StoredProgress
{
    /// <summary>Waits until every order is finished in storage and every subscriber's stored inbox is <c>Finished</c>.</summary>
    public static async Task<IReadOnlyList<StoredOrder>> WaitFinishedAsync(IGrainFactory grains, IReadOnlyList<string> orderIds, TimeSpan timeout)
    {
        var stored = grains.GetGrain<IStoredStateGrain>(0);
        var waited = Stopwatch.StartNew();
        var result = new List<StoredOrder>();
        foreach (var batch in orderIds.Chunk(IStoredStateGrain.MaxBatch))
        {
            // One bound for the whole wait, not per batch.
            var remaining = timeout - waited.Elapsed > TimeSpan.FromSeconds(1) ? timeout - waited.Elapsed : TimeSpan.FromSeconds(1);
            var ready = await Eventually.Until(() => ReadOrNullAsync(stored, batch),
                all => all is not null && all.All(IsFinished),
                remaining,
                all => all is null ? "the last read of stored state failed" : string.Join("; ", all.Where(o => !IsFinished(o)).Take(3).Select(Describe)));
            result.AddRange(ready!);
        }

        return result;
    }

    public static bool IsFinished(StoredOrder order) =>
        order.IsFinal && order.Subscribers.All(s => order.Delivery(s) == DeliveryState.Finished);

    public static string Describe(StoredOrder order) =>
        $"order {order.OrderId} {order.Status} at {order.LastSequence} (stored published mark {order.PublishedSequence}): " +
        string.Join(", ", order.Subscribers.Select(s =>
            $"{s.Subscriber}={s.AppliedSequence} {order.Delivery(s)} attempts {s.Attempts} held [{string.Join(",", s.HeldSequences)}]"));

    private static async Task<IReadOnlyList<StoredOrder>?> ReadOrNullAsync(IStoredStateGrain stored, IReadOnlyList<string> batch)
    {
        try
        {
            return await stored.ReadOrdersAsync(batch);
        }
        catch (Exception ex) when (ex is TimeoutException or OrleansException)
        {
            // A silo that just died or storage that is briefly down: read again on the next tick.
            return null;
        }
    }
}
