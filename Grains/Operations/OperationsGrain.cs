using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using Orleans.Concurrency;

namespace OrderFlow.Grains.Operations;

/// <summary>
/// Operator and client queries across subscribers. Stateless: it fans out to the order grain, the subscriber
/// grains and the dead-letter indexes, so any silo can serve it.
/// </summary>
[StatelessWorker]
[GrainType("operations")]
public sealed class OperationsGrain(SubscriberCatalog catalog) : Grain, IOperationsGrain
{
    /// <summary>Parked orders <see cref="RetryAllAsync"/> resumes at once.</summary>
    private const int RetryAllConcurrency = 8;

    public Task<IReadOnlyList<string>> GetSubscribersAsync() => Task.FromResult(catalog.Names);

    public async Task<OrderReport> InspectAsync(string orderId)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        var order = GrainFactory.GetGrain<IOrderGrain>(orderId).GetAsync();
        var statuses = Task.WhenAll(catalog.Names.Select(name => Subscriber(name, orderId).GetStatusAsync()));
        var relay = GrainFactory.GetGrain<IOrderRelayGrain>(IOrderRelayGrain.ShardOf(orderId)).FindAsync(orderId);
        var snapshot = await order;
        return new OrderReport(snapshot, await WithNothingToDoAsync(snapshot, await statuses), await relay);
    }

    /// <summary>
    /// A subscriber is not handed the events it has nothing to do for (<c>HandlesOnly</c>) and steps over them when a
    /// later one comes: until then its own progress stops short of them. Reported here as applied, as the subscriber
    /// itself will count them: when every event after its progress is of a kind it has nothing to do for, none final,
    /// and it holds nothing. (The order's log is read only for such a subscriber.)
    /// </summary>
    private async Task<SubscriberStatus[]> WithNothingToDoAsync(OrderSnapshot order, SubscriberStatus[] statuses)
    {
        var behind = statuses.Where(s => s.AppliedSequence < order.LastSequence && !s.Parked && s.BufferedSequences.Count == 0
                                         && catalog.KindsOf(s.Subscriber) is not null).ToArray();
        if (behind.Length == 0)
        {
            return statuses;
        }

        var log = await GrainFactory.GetGrain<IOrderGrain>(order.OrderId).GetEventsAsync(0);
        if (log.Count == 0 || log[^1].IsFinal)
        {
            return statuses;
        }

        // The latest event as the dispatcher saw it (with the earlier kinds), and whether it and all before it back to the
        // subscriber's progress are steps over events it has nothing to do for.
        var last = log[^1] with { EarlierKinds = OrderEventKinds.Of(log, log.Count - 1) };
        return statuses.Select(s => behind.Contains(s) && catalog.KindsOf(s.Subscriber) is var kinds
                                    && !HandlesOnlyAttribute.Handles(kinds, last)
                                    && HandlesOnlyAttribute.SkippableThrough(kinds, s.AppliedSequence, last) == last.Sequence - 1
                ? s with { AppliedSequence = last.Sequence }
                : s)
            .ToArray();
    }

    public async Task<IReadOnlyList<OrderReport>> InspectManyAsync(IReadOnlyList<string> orderIds)
    {
        ArgumentNullException.ThrowIfNull(orderIds);
        if (orderIds.Count > IOperationsGrain.MaxInspectBatch)
        {
            throw new ArgumentException($"at most {IOperationsGrain.MaxInspectBatch} orders per call, got {orderIds.Count}: page the rest", nameof(orderIds));
        }

        return await Task.WhenAll(orderIds.Select(InspectAsync));
    }

    /// <summary>
    /// The index's entries whose inbox is still parked, from every shard (<see cref="DeadLetterShards"/>). An entry whose
    /// inbox is not (a resolve that never reached the index) is removed from the index, unless the order was parked again
    /// meanwhile. Entries still in a subscriber's pre-shard index are moved into the shards first.
    /// </summary>
    public async Task<IReadOnlyList<DeadLetter>> ListDeadLettersAsync(string? subscriber)
    {
        // The index is keyed by the subscriber's own spelling; a name given in another case found nothing (red-team finding).
        var names = subscriber is null ? catalog.Names : catalog.NameOf(subscriber) is { } known ? [known] : [];
        var lists = await Task.WhenAll(names.Select(ListShardsAsync));
        var letters = lists.SelectMany(list => list)
            .OrderBy(letter => letter.FirstFailureAt).ThenBy(letter => letter.Subscriber, StringComparer.Ordinal).ThenBy(letter => letter.OrderId, StringComparer.Ordinal)
            .ToArray();
        var parked = await Task.WhenAll(letters.Select(async letter =>
        {
            try
            {
                return (await Subscriber(letter.Subscriber, letter.OrderId).GetStatusAsync()).Parked;
            }
            catch (Exception)
            {
                // Unknown (its inbox could not be read just now): keep listing it rather than hide the whole list.
                return true;
            }
        }));
        foreach (var stale in letters.Where((_, i) => !parked[i]))
        {
            await Shard(stale).ResolveStaleAsync(stale);
        }

        return letters.Where((_, i) => parked[i]).ToArray();
    }

    public async Task<IReadOnlyList<SubscriberLag>> GetLagAsync()
    {
        var statuses = Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(n => GrainFactory.GetGrain<IOrderRelayGrain>(n).GetStatusAsync()));
        // Counts only: listing would check each entry's inbox, which activates the subscriber grain.
        var deadLetters = CountDeadLettersAsync();
        var (shards, parked) = (await statuses, await deadLetters);
        return catalog.Names.Concat(["outbox", "*"])
            .Select(name => new SubscriberLag(name,
                shards.Sum(s => s.BehindBySubscriber.GetValueOrDefault(name)),
                shards.Select(s => s.OldestBySubscriber.TryGetValue(name, out var since) ? since : (DateTimeOffset?)null).Min(),
                parked.GetValueOrDefault(name)))
            .ToArray();
    }

    /// <summary>Entries per subscriber, summed over its shards (and what its pre-shard index still holds).</summary>
    public async Task<IReadOnlyDictionary<string, int>> CountDeadLettersAsync()
    {
        var names = catalog.Names;
        var counts = await Task.WhenAll(names.Select(async name =>
        {
            var shards = await Task.WhenAll(DeadLetterShards.KeysOf(name).Append(name)
                .Select(key => GrainFactory.GetGrain<IDeadLetterIndexGrain>(key).CountAsync()));
            return shards.Sum();
        }));
        return names.Zip(counts).ToDictionary(pair => pair.First, pair => pair.Second);
    }

    public Task<DeadLetterActionResult> RetryAsync(string subscriber, string orderId) =>
        catalog.TryGet(subscriber, out _)
            ? Subscriber(subscriber, orderId).RetryParkedAsync()
            : Task.FromResult(Unknown(subscriber));

    public async Task<BulkRetryResult> RetryAllAsync(string subscriber, DateTimeOffset? parkedSince)
    {
        if (catalog.NameOf(subscriber) is not { } name)
        {
            throw new ArgumentException(Unknown(subscriber).Message, nameof(subscriber));
        }

        var letters = (await ListShardsAsync(name)).Where(letter => parkedSince is null || letter.FirstFailureAt >= parkedSince).ToArray();
        var (resumed, notParked) = (0, 0);
        var failures = new List<string>();
        // A few at a time: each resume writes an inbox and runs a handler, and a mass retry follows an outage.
        foreach (var batch in letters.Chunk(RetryAllConcurrency))
        {
            var outcomes = await Task.WhenAll(batch.Select(async letter =>
            {
                try
                {
                    var result = await Subscriber(letter.Subscriber, letter.OrderId).RetryParkedAsync();
                    return (letter, Outcome: (DeadLetterActionOutcome?)result.Outcome, Error: (string?)result.Message);
                }
                catch (Exception ex)
                {
                    return (letter, Outcome: (DeadLetterActionOutcome?)null, Error: (string?)FailureClassifier.Classify(ex).Description);
                }
            }));
            foreach (var (letter, outcome, error) in outcomes)
            {
                if (outcome == DeadLetterActionOutcome.Resumed)
                {
                    resumed++;
                }
                else if (outcome == DeadLetterActionOutcome.NotParked)
                {
                    notParked++;
                    await Shard(letter).ResolveStaleAsync(letter);
                }
                else
                {
                    failures.Add($"{letter.OrderId}: {error}");
                }
            }
        }

        return new BulkRetryResult(resumed, failures.Count, notParked, failures.Take(BulkRetryResult.MaxFailuresListed).ToArray());
    }

    public Task<DeadLetterActionResult> SkipAsync(string subscriber, string orderId, long sequence) =>
        catalog.TryGet(subscriber, out _)
            ? Subscriber(subscriber, orderId).SkipParkedAsync(sequence)
            : Task.FromResult(Unknown(subscriber));

    public Task<BackfillReply> StartBackfillAsync(string subscriber, DateTimeOffset? since, bool includeFinished) =>
        catalog.TryGet(subscriber, out var grainType)
            ? BackfillJob(grainType).StartAsync(since, includeFinished)
            : Task.FromResult(UnknownBackfill(subscriber));

    public async Task<BackfillReply> GetBackfillAsync(string subscriber)
    {
        if (!catalog.TryGet(subscriber, out var grainType))
        {
            return UnknownBackfill(subscriber);
        }

        return await BackfillJob(grainType).GetProgressAsync() is { } progress
            ? new BackfillReply(BackfillOutcome.Reported, $"backfill {progress.Run} of {progress.Subscriber}: {progress.State}", progress)
            : new BackfillReply(BackfillOutcome.NoJob, $"no backfill of {grainType} has run", null);
    }

    /// <summary>One job per subscriber, keyed by the subscriber's own spelling of its name (names match case-insensitively).</summary>
    private IBackfillJobGrain BackfillJob(GrainType subscriber) => GrainFactory.GetGrain<IBackfillJobGrain>(subscriber.ToString());

    private BackfillReply UnknownBackfill(string subscriber) => new(BackfillOutcome.UnknownSubscriber, Unknown(subscriber).Message, null);

    /// <summary>
    /// One subscriber's entries from all its shards. Entries still in its pre-shard index (one row per subscriber, from
    /// before the index was sharded) are moved into their shards — unless the shard already lists that order, with an
    /// entry that is newer — and removed from the old row if unchanged. Once moved, the old row is empty and this costs
    /// one call that reads nothing.
    /// </summary>
    private async Task<IReadOnlyList<DeadLetter>> ListShardsAsync(string subscriber)
    {
        var shards = (await Task.WhenAll(DeadLetterShards.KeysOf(subscriber).Select(key => GrainFactory.GetGrain<IDeadLetterIndexGrain>(key).ListAsync())))
            .SelectMany(shard => shard).ToList();
        var legacy = GrainFactory.GetGrain<IDeadLetterIndexGrain>(subscriber);
        var listed = shards.Select(letter => letter.OrderId).ToHashSet(StringComparer.Ordinal);
        foreach (var letter in await legacy.ListAsync())
        {
            if (listed.Add(letter.OrderId))
            {
                await Shard(letter).ParkAsync(letter);
                shards.Add(letter);
            }

            await legacy.ResolveStaleAsync(letter);
        }

        return shards;
    }

    private IDeadLetterIndexGrain Shard(DeadLetter letter) =>
        GrainFactory.GetGrain<IDeadLetterIndexGrain>(DeadLetterShards.KeyFor(letter.Subscriber, letter.OrderId));

    private IOrderSubscriberGrain Subscriber(string name, string orderId) => catalog.GrainOf(GrainFactory, name, orderId);

    private DeadLetterActionResult Unknown(string subscriber) => new(DeadLetterActionOutcome.UnknownSubscriber,
        $"no subscriber named '{subscriber}'; known: {string.Join(", ", catalog.Names)}", null);
}
