using System.Diagnostics;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The client's way into a sale (<see cref="IFlashSaleGrain"/>): a stateless worker, so it runs on the silo the client is
/// connected to, with a local cache of the sale (its settings, sold out or not) refreshed from the sale's record in the
/// background at most every <see cref="FlashSaleOptions.CacheFor"/>. Bad input, a sale not started and a sale sold out are
/// answered here, with no call to any other grain (sold out: once the shards' final keys are here, for every request no
/// shard queued); the rest goes to the buyers' admission shards, one call per shard for a whole batch
/// (<see cref="IFlashSaleGrain.BuyManyAsync"/>). Its refusals are counted here and handed to the record with the next
/// refresh, for the status.
/// </summary>
[StatelessWorker, Reentrant]
[GrainType("flash-front")]
public sealed class FlashSaleGrain(IOptions<FlashSaleOptions> options, TimeProvider clock, FlashSaleMetrics metrics) : Grain, IFlashSaleGrain
{
    private static readonly AdmissionResult SoldOutAnswer = new(AdmissionOutcome.SoldOut);
    private readonly TimeSpan _cacheFor = options.Value.CacheFor;
    private readonly Dictionary<AdmissionOutcome, long> _unreported = [];
    private readonly (Task<QueuedKeys> Keys, long At)?[] _queued = new (Task<QueuedKeys>, long)?[FlashSaleLimits.Shards];
    private FlashSaleInfo? _info;
    private long _infoAt;
    private Task<FlashSaleInfo>? _refreshing;
    private IGrainTimer? _reporter;

    private string SaleId => this.GetPrimaryKeyString();

    private IFlashSaleRecordGrain Record => GrainFactory.GetGrain<IFlashSaleRecordGrain>(SaleId);

    public async Task<FlashSaleCommandResult> CreateAsync(FlashSaleSpec spec)
    {
        if (FlashSaleLimits.SpecProblem(SaleId, spec, clock.GetUtcNow()) is { } problem)
        {
            return new FlashSaleCommandResult(false, FlashSaleError.InvalidInput, problem, null);
        }

        var result = await Record.CreateAsync(spec);
        _info = null;
        if (result.Accepted)
        {
            await WarmAsync();
        }

        return result;
    }

    /// <summary>
    /// Activates the sale's shards (head and settings loaded) and drainer and fills this front's cache, so the first
    /// buyers of a sale created shortly before it opens do not wait for those activations. A sale created long before
    /// its start is cold again after Orleans' idle collection; its first buyers then pay the activations once. Best
    /// effort: the sale exists whatever happens here.
    /// </summary>
    private async Task WarmAsync()
    {
        try
        {
            await Task.WhenAll(Enumerable.Range(0, FlashSaleLimits.Shards)
                .Select(s => (Task)Shard(s).GetStatsAsync())
                .Append(GrainFactory.GetGrain<IFlashSaleDrainerGrain>(SaleId).GetStatsAsync())
                .Append(InfoAsync()));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The buyers' first requests activate what this could not; the sale was created either way.
        }
    }

    public async Task<FlashSaleCommandResult> SetRateAsync(int rate)
    {
        if ((FlashSaleLimits.SaleIdProblem(SaleId) ?? FlashSaleLimits.RateProblem(rate)) is { } problem)
        {
            return new FlashSaleCommandResult(false, FlashSaleError.InvalidInput, problem, null);
        }

        var result = await Record.SetRateAsync(rate);
        if (result.Accepted)
        {
            _info = null;
            await GrainFactory.GetGrain<IFlashSaleDrainerGrain>(SaleId).WakeAsync();
        }

        return result;
    }

    public async Task<AdmissionResult> BuyAsync(string userId, string requestId) =>
        (await BuyManyAsync([new BuyRequest(userId, requestId)]))[0];

    public async Task<IReadOnlyList<AdmissionResult>> BuyManyAsync(IReadOnlyList<BuyRequest> requests)
    {
        // Every answer a buyer gets passes here, once: counted and timed by outcome (orderflow.flashsale.*).
        var started = Stopwatch.GetTimestamp();
        var answers = await AdmitAsync(requests ?? []);
        var elapsed = Stopwatch.GetElapsedTime(started);
        foreach (var answer in answers)
        {
            metrics.Answered(answer.Outcome, elapsed);
        }

        return answers;
    }

    private async Task<AdmissionResult[]> AdmitAsync(IReadOnlyList<BuyRequest> requests)
    {
        var answers = new AdmissionResult[requests.Count];
        if (FlashSaleLimits.BatchProblem(requests.Count) is { } tooMany)
        {
            return RefuseAll(answers, new AdmissionResult(AdmissionOutcome.InvalidInput, Message: tooMany));
        }

        if (FlashSaleLimits.SaleIdProblem(SaleId) is { } saleProblem)
        {
            return RefuseAll(answers, new AdmissionResult(AdmissionOutcome.InvalidInput, Message: saleProblem));
        }

        var open = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            if (FlashSaleLimits.RequestProblem(requests[i]) is { } problem)
            {
                answers[i] = Refused(new AdmissionResult(AdmissionOutcome.InvalidInput, Message: problem));
            }
            else
            {
                open++;
            }
        }

        if (open == 0)
        {
            return answers;
        }

        var info = await InfoAsync();
        if (info.Spec is not { } spec)
        {
            return RefuseAll(answers, new AdmissionResult(AdmissionOutcome.UnknownSale, Message: $"no sale {SaleId}"));
        }

        if (clock.GetUtcNow() < spec.StartsAt)
        {
            return RefuseAll(answers, new AdmissionResult(AdmissionOutcome.NotStarted, Message: $"the sale starts at {spec.StartsAt:O}"));
        }

        // The requests each shard must decide, by index; the rest are answered here.
        var byShard = new List<int>?[FlashSaleLimits.Shards];
        for (var i = 0; i < requests.Count; i++)
        {
            if (answers[i] is null)
            {
                (byShard[FlashSaleLimits.ShardOf(requests[i].UserId)] ??= []).Add(i);
            }
        }

        var asked = new List<Task>(FlashSaleLimits.Shards);
        for (var shard = 0; shard < byShard.Length; shard++)
        {
            if (byShard[shard] is { } indexes)
            {
                asked.Add(AdmitInShardAsync(shard, indexes));
            }
        }

        await Task.WhenAll(asked);
        return answers;

        async Task AdmitInShardAsync(int shard, List<int> indexes)
        {
            if (info.SoldOut && FinalKeys(shard) is { } keys)
            {
                // Sold out, and the shard's keys are final: only a request among them can be a duplicate to answer.
                indexes.RemoveAll(i =>
                {
                    if (Array.BinarySearch(keys, FlashSaleShardGrain.RequestKey(requests[i].UserId, requests[i].RequestId)) >= 0)
                    {
                        return false;
                    }

                    answers[i] = Refused(SoldOutAnswer);
                    return true;
                });
            }

            if (indexes.Count == 0)
            {
                return;
            }

            // One request takes the single call, which a shard on a silo not yet upgraded (a rolling upgrade) also knows.
            var decided = indexes.Count == 1
                ? [await Shard(shard).AdmitAsync(requests[indexes[0]].UserId, requests[indexes[0]].RequestId)]
                : await Shard(shard).AdmitManyAsync(indexes.ConvertAll(i => requests[i]));
            if (decided.Length != indexes.Count)
            {
                throw new InvalidOperationException($"flash sale {SaleId} shard {shard} answered {decided.Length} of {indexes.Count} requests");
            }

            for (var n = 0; n < indexes.Count; n++)
            {
                answers[indexes[n]] = decided[n];
            }
        }
    }

    /// <summary>Every request not answered yet answered <paramref name="answer"/>.</summary>
    private AdmissionResult[] RefuseAll(AdmissionResult[] answers, AdmissionResult answer)
    {
        for (var i = 0; i < answers.Length; i++)
        {
            answers[i] ??= Refused(answer);
        }

        return answers;
    }

    /// <summary>
    /// The keys of every request <paramref name="shard"/> queued, once they are final (the sale is sold out and the shard
    /// can queue nothing more), or null: then the shard must answer each request itself, since a retry of a request it
    /// queued before, whose answer was lost, is a duplicate with its ticket, not sold out. Asked of the shard in the
    /// background and kept once final: at most <see cref="FlashSaleLimits.MaxStock"/> keys of 8 bytes per sold-out sale.
    /// No buyer waits for the asking: until the keys are here, the shard answers. Keys not final yet (the shard still
    /// holds a spare unit), or a shard that did not answer, are asked again after <see cref="FlashSaleOptions.CacheFor"/>.
    /// </summary>
    private ulong[]? FinalKeys(int shard)
    {
        var entry = _queued[shard];
        if (entry is { Keys.IsCompletedSuccessfully: true } && entry.Value.Keys.Result is { Final: true } keys)
        {
            return keys.Keys;
        }

        if (entry is null || entry.Value.Keys.IsCompleted && Stopwatch.GetElapsedTime(entry.Value.At) >= _cacheFor)
        {
            var asked = Shard(shard).GetQueuedKeysAsync();
            asked.Ignore(); // a failure only means asking again later
            _queued[shard] = (asked, Stopwatch.GetTimestamp());
        }

        return null;
    }

    private IFlashSaleShardGrain Shard(int shard) => GrainFactory.GetGrain<IFlashSaleShardGrain>(FlashSaleShardGrain.KeyOf(SaleId, shard));

    public async Task<TicketStatus> GetTicketAsync(string ticket)
    {
        if (FlashSaleLimits.SaleIdProblem(SaleId) is { } problem)
        {
            return new TicketStatus(TicketState.Unknown, Message: problem);
        }

        if (!FlashSaleLimits.TryParseTicket(ticket, out var shard, out var seq, out var tag))
        {
            return new TicketStatus(TicketState.Unknown, Message: FlashSaleLimits.TicketProblem(ticket));
        }

        var info = await InfoAsync();
        if (info.Spec is null)
        {
            return new TicketStatus(TicketState.Unknown, Message: $"no sale {SaleId}");
        }

        // Tickets are numbered in order: without the tag only the buyer was given, anyone could walk them and read every
        // winner's order id (and then act on the order).
        if (!FlashSaleLimits.IsTicketTag(SaleId, shard, seq, info.OrderKey, tag))
        {
            return new TicketStatus(TicketState.Unknown, Message: $"no ticket {Ids.Printable(ticket)} in sale {SaleId}");
        }

        var status = await Shard(shard).GetTicketAsync(seq);
        if (status.State == TicketState.Pending)
        {
            // A buyer waiting is reason enough to make sure the drain runs (it may have died with its silo).
            GrainFactory.GetGrain<IFlashSaleDrainerGrain>(SaleId).WakeAsync().Ignore();
        }

        return status;
    }

    public async Task<FlashSaleStatus> GetStatusAsync()
    {
        var empty = new Dictionary<AdmissionOutcome, long>();
        if (FlashSaleLimits.SaleIdProblem(SaleId) is not null)
        {
            return new FlashSaleStatus(SaleId, false, null, 0, empty, 0, 0, 0, 0, 0, false, new Dictionary<long, long>());
        }

        var info = await RefreshAsync();
        if (info.Spec is null)
        {
            return new FlashSaleStatus(SaleId, false, null, 0, empty, 0, 0, 0, 0, 0, false, new Dictionary<long, long>());
        }

        var shards = Task.WhenAll(Enumerable.Range(0, FlashSaleLimits.Shards)
            .Select(s => Shard(s).GetStatsAsync()));
        var drain = GrainFactory.GetGrain<IFlashSaleDrainerGrain>(SaleId).GetStatsAsync();
        var fronts = Record.GetFrontRefusalsAsync();
        var stats = await shards;
        var refused = new Dictionary<AdmissionOutcome, long>(await fronts);
        foreach (var (outcome, count) in stats.SelectMany(s => s.Refused))
        {
            refused[outcome] = refused.GetValueOrDefault(outcome) + count;
        }

        var windows = (await drain).Windows;
        var lastComplete = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1;
        var backlog = stats.Sum(s => s.Backlog);
        if (backlog > 0)
        {
            GrainFactory.GetGrain<IFlashSaleDrainerGrain>(SaleId).WakeAsync().Ignore();
        }

        return new FlashSaleStatus(SaleId, true, info.Spec, stats.Sum(s => s.Accepted), refused, stats.Sum(s => s.Processed),
            stats.Sum(s => s.Won), backlog, windows.GetValueOrDefault(lastComplete), info.UnitsLeft, info.SoldOut, windows);
    }

    private AdmissionResult Refused(AdmissionResult result)
    {
        _unreported[result.Outcome] = _unreported.GetValueOrDefault(result.Outcome) + 1;
        // Counts reach the record with the next refresh, or within one cache period when no buyer comes any more.
        _reporter ??= this.RegisterGrainTimer(ReportAsync, new GrainTimerCreationOptions(_cacheFor, _cacheFor));
        return result;
    }

    private async Task ReportAsync(CancellationToken cancellation)
    {
        if (_unreported.Count == 0)
        {
            _reporter?.Dispose();
            _reporter = null;
            return;
        }

        await RefreshAsync();
    }

    /// <summary>
    /// The cached view. A sale known to exist is answered from the cache at once, however old, and refreshed behind the
    /// answer when older than <see cref="FlashSaleOptions.CacheFor"/> (one refresh at a time): nothing decided from it is
    /// wrong when it is stale — a sale that exists keeps existing and keeps its start, and sold out never ends — a stale
    /// view only sends the shards requests this front could have answered. So no buyer waits for the sale's record,
    /// which is busy handing out units at the start of a burst. A sale not known to exist is asked for every time.
    /// </summary>
    private Task<FlashSaleInfo> InfoAsync()
    {
        if (_info is not { Exists: true } info)
        {
            return RefreshAsync();
        }

        if (Stopwatch.GetElapsedTime(_infoAt) >= _cacheFor)
        {
            RefreshAsync().Ignore();
        }

        return Task.FromResult(info);
    }

    private Task<FlashSaleInfo> RefreshAsync()
    {
        if (_refreshing is { IsCompleted: false } running)
        {
            return running;
        }

        return _refreshing = RunAsync();

        async Task<FlashSaleInfo> RunAsync()
        {
            {
                var report = new Dictionary<AdmissionOutcome, long>(_unreported);
                _unreported.Clear();
                try
                {
                    _info = await Record.RefreshAsync(report);
                }
                catch
                {
                    foreach (var (outcome, count) in report)
                    {
                        _unreported[outcome] = _unreported.GetValueOrDefault(outcome) + count;
                    }

                    throw;
                }

                _infoAt = Stopwatch.GetTimestamp();
                return _info;
            }
        }
    }
}
