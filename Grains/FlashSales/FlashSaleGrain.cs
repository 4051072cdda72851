using System.Diagnostics;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// The client's way into a sale (<see cref="IFlashSaleGrain"/>): a stateless worker, so it runs on the silo the client is
/// connected to, with a local cache of the sale (its settings, sold out or not) refreshed from the sale's record at most
/// every <see cref="FlashSaleOptions.CacheFor"/>. Bad input, a sale not started and a sale sold out are answered here,
/// with no call to any other grain (sold out: once the shards' final keys are here, for every request no shard queued);
/// the rest goes to the buyer's admission shard. Its refusals are counted here and
/// handed to the record with the next refresh, for the status.
/// </summary>
[StatelessWorker, Reentrant]
[GrainType("flash-front")]
public sealed class FlashSaleGrain(IOptions<FlashSaleOptions> options, TimeProvider clock, FlashSaleMetrics metrics) : Grain, IFlashSaleGrain
{
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

    public async Task<AdmissionResult> BuyAsync(string userId, string requestId)
    {
        // Every answer a buyer gets passes here, once: counted and timed by outcome (orderflow.flashsale.*).
        var started = Stopwatch.GetTimestamp();
        var answer = await AdmitAsync(userId, requestId);
        metrics.Answered(answer.Outcome, Stopwatch.GetElapsedTime(started));
        return answer;
    }

    private async Task<AdmissionResult> AdmitAsync(string userId, string requestId)
    {
        if ((FlashSaleLimits.SaleIdProblem(SaleId) ?? Ids.Problem(userId, "user id") ?? Ids.Problem(requestId, "request id")) is { } problem)
        {
            return Refused(new AdmissionResult(AdmissionOutcome.InvalidInput, Message: problem));
        }

        var info = await InfoAsync();
        if (info.Spec is not { } spec)
        {
            return Refused(new AdmissionResult(AdmissionOutcome.UnknownSale, Message: $"no sale {SaleId}"));
        }

        if (clock.GetUtcNow() < spec.StartsAt)
        {
            return Refused(new AdmissionResult(AdmissionOutcome.NotStarted, Message: $"the sale starts at {spec.StartsAt:O}"));
        }

        var shard = FlashSaleLimits.ShardOf(userId);
        if (info.SoldOut && !await MayHaveQueuedAsync(shard, userId, requestId))
        {
            return Refused(new AdmissionResult(AdmissionOutcome.SoldOut));
        }

        return await Shard(shard).AdmitAsync(userId, requestId);
    }

    /// <summary>
    /// Whether <paramref name="shard"/> may hold this request, so it must answer it (a retry of a request queued before,
    /// whose answer was lost, is a duplicate with its ticket, not sold out). Asked of the shard once its keys are final,
    /// then answered here: at most <see cref="FlashSaleLimits.MaxStock"/> keys of 8 bytes per sold-out sale. A shard whose
    /// keys are not final yet (it still holds a spare unit) or that did not answer gets every request, and is asked again
    /// after <see cref="FlashSaleOptions.CacheFor"/>.
    /// </summary>
    private async Task<bool> MayHaveQueuedAsync(int shard, string userId, string requestId)
    {
        if (_queued[shard] is not { } entry
            || entry.Keys.IsCompleted && !(entry.Keys.IsCompletedSuccessfully && entry.Keys.Result.Final) && Stopwatch.GetElapsedTime(entry.At) >= _cacheFor)
        {
            entry = (Shard(shard).GetQueuedKeysAsync(), Stopwatch.GetTimestamp());
            _queued[shard] = entry;
        }

        try
        {
            var keys = await entry.Keys;
            return !keys.Final || Array.BinarySearch(keys.Keys, FlashSaleShardGrain.RequestKey(userId, requestId)) >= 0;
        }
        catch (Exception)
        {
            return true; // the shard answers for itself, or fails as any admission would
        }
    }

    private IFlashSaleShardGrain Shard(int shard) => GrainFactory.GetGrain<IFlashSaleShardGrain>(FlashSaleShardGrain.KeyOf(SaleId, shard));

    public async Task<TicketStatus> GetTicketAsync(string ticket)
    {
        if (FlashSaleLimits.SaleIdProblem(SaleId) is { } problem)
        {
            return new TicketStatus(TicketState.Unknown, Message: problem);
        }

        if (!FlashSaleLimits.TryParseTicket(ticket, out var shard, out var seq))
        {
            return new TicketStatus(TicketState.Unknown, Message: $"a ticket is SHARD-SEQ (shard 0-{FlashSaleLimits.Shards - 1}), was '{Ids.Printable(ticket)}'");
        }

        if ((await InfoAsync()).Spec is null)
        {
            return new TicketStatus(TicketState.Unknown, Message: $"no sale {SaleId}");
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

    /// <summary>The cached view, refreshed when older than <see cref="FlashSaleOptions.CacheFor"/> (one refresh at a time).</summary>
    private Task<FlashSaleInfo> InfoAsync() =>
        _info is { Exists: true } info && Stopwatch.GetElapsedTime(_infoAt) < _cacheFor ? Task.FromResult(info) : RefreshAsync();

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
