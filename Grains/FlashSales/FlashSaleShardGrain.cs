using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using Orleans.Concurrency;
using Orleans.Storage;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// One admission shard of a sale (<see cref="IFlashSaleShardGrain"/>): decides every request of the users hashed to it
/// — duplicate, per-user limit, backlog bound, a unit left — and stores the queued ones with <b>group commit</b>: the
/// requests that arrive while a write is in flight form the next batch (up to <see cref="MaxBatch"/>), which takes its
/// units from the sale in one call and is stored in one head write, and each request is answered only after that write.
/// So admission costs a share of two writes per batch, not a write per request.
/// <para>
/// Everything that changes the head goes through the one queue (admissions, the drain's answers), so there is never a
/// second write in flight and nothing is read from a batch that is not yet stored. After a failed write the head is
/// re-read (<see cref="GuardedState{T}"/>): requests whose tickets landed anyway are answered queued, the others busy.
/// </para>
/// <para>
/// Bounds: tickets ≤ the units this shard was handed (≤ the sale's stock, ≤ <see cref="FlashSaleLimits.MaxStock"/>),
/// held in memory with their request ids for duplicates and per-user counts; backlog ≤ ⌈buffer / shards⌉.
/// </para>
/// </summary>
[Reentrant]
[GrainType("flash-shard")]
public sealed partial class FlashSaleShardGrain : Grain, IFlashSaleShardGrain
{
    /// <summary>Most requests (and drain answers) one commit takes.</summary>
    public const int MaxBatch = 256;

    /// <summary>Tickets per sealed segment record; the head holds fewer than this many (plus one batch).</summary>
    public const int SegmentSize = 256;

    private const string SegmentStateName = "flash-shard.segment";
    private static readonly GrainType SegmentType = GrainType.Create("flash-shard.segment");

    private readonly GuardedState<FlashShardState> _head;
    private readonly IGrainStorage _segmentStorage;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Queue<Operation> _queue = new();
    private readonly List<List<FlashTicket>> _segments = [];
    private readonly Dictionary<(string User, string Request), long> _byRequest = [];
    private readonly Dictionary<string, int> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<AdmissionOutcome, long> _refused = [];
    private FlashSaleSpec _spec = null!;
    private string _saleId = "";
    private string? _orderKey;
    private int _shard;
    private bool _saleSoldOut;
    private bool _pumping;

    public FlashSaleShardGrain(
        [PersistentState("flash-shard", StorageNames.FlashSales)] IPersistentState<FlashShardState> head,
        [FromKeyedServices(StorageNames.FlashSales)] IGrainStorage segmentStorage,
        TimeProvider clock,
        ILogger<FlashSaleShardGrain> logger)
    {
        _head = new GuardedState<FlashShardState>(head);
        _segmentStorage = segmentStorage;
        _clock = clock;
        _logger = logger;
    }

    private FlashShardState State => _head.State;

    public static string KeyOf(string saleId, int shard) => $"{saleId}~{shard}";

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var tilde = key.LastIndexOf('~');
        _saleId = key[..tilde];
        _shard = int.Parse(key[(tilde + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var info = await GrainFactory.GetGrain<IFlashSaleRecordGrain>(_saleId).RefreshAsync(null);
        // Fronts call a shard only for a sale that exists; anything else is a caller inside the cluster gone wrong.
        _spec = info.Spec ?? throw new InvalidOperationException($"flash sale {_saleId} does not exist");
        _saleSoldOut = info.SoldOut;
        _orderKey = info.OrderKey;
        for (var n = 0; n < State.Sealed; n++)
        {
            var record = new GrainState<FlashTicketSegment>(new FlashTicketSegment());
            await _segmentStorage.ReadStateAsync(SegmentStateName, SegmentId(n, TokenOf(n)), record);
            // A head counts a segment only after the segment's own write landed: a missing one is storage losing data.
            _segments.Add(record.RecordExists && record.State is { } segment
                ? segment.Tickets
                : throw new InvalidOperationException($"flash sale {_saleId} shard {_shard}: segment {n} of {State.Sealed} is missing from storage"));
        }

        Reindex();
    }

    public Task<AdmissionResult> AdmitAsync(string userId, string requestId) => Admit(new BuyRequest(userId, requestId));

    public Task<AdmissionResult[]> AdmitManyAsync(IReadOnlyList<BuyRequest> requests)
    {
        if (requests is null)
        {
            return Task.FromResult(Array.Empty<AdmissionResult>());
        }

        if (FlashSaleLimits.BatchProblem(requests.Count) is { } tooMany)
        {
            return Task.FromResult(Enumerable.Repeat(new AdmissionResult(AdmissionOutcome.InvalidInput, Message: tooMany), requests.Count).ToArray());
        }

        var answers = new Task<AdmissionResult>[requests.Count];
        for (var i = 0; i < answers.Length; i++)
        {
            answers[i] = Admit(requests[i]);
        }

        return Task.WhenAll(answers);
    }

    private Task<AdmissionResult> Admit(BuyRequest? request)
    {
        if (FlashSaleLimits.RequestProblem(request) is { } problem)
        {
            return Task.FromResult(new AdmissionResult(AdmissionOutcome.InvalidInput, Message: problem));
        }

        var shard = FlashSaleLimits.ShardOf(request!.UserId);
        return shard == _shard
            ? Enqueue(new Admission(request.UserId, request.RequestId))
            : Task.FromResult(new AdmissionResult(AdmissionOutcome.InvalidInput, Message: $"user {request.UserId} belongs to shard {shard}, not {_shard}"));
    }

    public Task<TicketStatus> GetTicketAsync(long seq) => Enqueue(new Read<TicketStatus>(() => TicketOf(seq)));

    public Task<ShardBacklog> PeekAsync(long fromSeq, int max) => Enqueue(new Read<ShardBacklog>(() =>
    {
        var from = Math.Max(fromSeq, State.Resolved);
        var tickets = new List<QueuedTicket>();
        for (var seq = from; seq < State.Issued && tickets.Count < max; seq++)
        {
            tickets.Add(new QueuedTicket(seq, Ticket(seq).UserId));
        }

        return new ShardBacklog(tickets, Math.Max(0, State.Issued - from), State.Resolved);
    }));

    public Task ResolveAsync(long fromSeq, IReadOnlyList<bool> won) => Enqueue(new Change(() =>
    {
        var changed = false;
        for (var i = 0; i < won.Count; i++)
        {
            var seq = fromSeq + i;
            if (seq < State.Resolved)
            {
                continue; // a repeat of an answer already stored
            }

            if (seq != State.Resolved || seq >= State.Issued)
            {
                break; // answers come in ticket order; a gap is the drain's bug, never guessed over
            }

            if (!won[i] && !(seq >= State.SoldOutFrom))
            {
                State.SoldOut.Add(seq);
            }

            State.Resolved++;
            changed = true;
        }

        return changed;
    }));

    public Task ResolveRestSoldOutAsync() => Enqueue(new Change(() =>
    {
        _saleSoldOut = true;
        var changed = false;
        if (State.SoldOutFrom is null)
        {
            State.SoldOutFrom = State.Resolved;
            changed = true;
        }

        if (State.Resolved < State.Issued)
        {
            State.Resolved = State.Issued;
            changed = true;
        }

        return changed;
    }));

    public Task<ShardStats> GetStatsAsync() => Enqueue(new Read<ShardStats>(() =>
        new ShardStats(State.Issued, State.Resolved, State.Won, State.Backlog, new Dictionary<AdmissionOutcome, long>(_refused))));

    public async Task<QueuedKeys> GetQueuedKeysAsync()
    {
        // The sale's record is the authority on what this shard holds (a grant whose write here failed is still ours),
        // and a front asks once it has heard the sale is sold out, which this shard may not have heard yet.
        var grant = await GrainFactory.GetGrain<IFlashSaleRecordGrain>(_saleId).TakeUnitsAsync(_shard, 0);
        var soldOut = grant.UnitsLeft == 0 || grant.Exhausted;
        return await Enqueue(new Read<QueuedKeys>(() =>
        {
            var keys = _byRequest.Keys.Select(k => RequestKey(k.User, k.Request)).ToArray();
            Array.Sort(keys);
            return new QueuedKeys(State.SoldOutFrom is not null || (soldOut && Math.Max(State.Granted, grant.GrantedTotal) <= State.Issued), keys);
        }));
    }

    /// <summary>
    /// A stable 64-bit key of a request (FNV-1a over the user id, a separator no id may hold, and the request id): the
    /// same in every process, so a front can look up what a shard on another silo queued. Two requests may share a key;
    /// that only sends the second one to its shard, which answers it exactly.
    /// </summary>
    public static ulong RequestKey(string userId, string requestId)
    {
        var hash = 14695981039346656037ul;
        foreach (var c in userId)
        {
            hash = (hash ^ c) * 1099511628211ul;
        }

        hash = (hash ^ '\n') * 1099511628211ul;
        foreach (var c in requestId)
        {
            hash = (hash ^ c) * 1099511628211ul;
        }

        return hash;
    }

    private Task<T> Enqueue<T>(Operation<T> operation)
    {
        _queue.Enqueue(operation);
        if (!_pumping)
        {
            _pumping = true;
            _ = PumpAsync();
        }

        return operation.Task;
    }

    private async Task PumpAsync()
    {
        try
        {
            while (_queue.Count > 0)
            {
                var batch = new List<Operation>(Math.Min(_queue.Count, MaxBatch));
                while (batch.Count < MaxBatch && _queue.TryDequeue(out var next))
                {
                    batch.Add(next);
                }

                await RunBatchAsync(batch);
            }
        }
        finally
        {
            _pumping = false;
        }
    }

    private async Task RunBatchAsync(List<Operation> batch)
    {
        FlashShardState state;
        try
        {
            state = State;
        }
        catch (Exception ex)
        {
            batch.ForEach(operation => operation.Fail(ex));
            return;
        }

        var dirty = false;
        var now = _clock.GetUtcNow();
        var candidates = new List<Admission>();
        var inBatch = new Dictionary<(string, string), Admission>();
        var inBatchHeld = new Dictionary<string, int>(StringComparer.Ordinal);
        HashSet<Admission>? deferred = null; // rare: made for the first request that waits on its batch
        foreach (var operation in batch)
        {
            switch (operation)
            {
                case Change change:
                    dirty |= change.Run();
                    break;
                case Admission admission when inBatch.TryGetValue((admission.UserId, admission.RequestId), out var twin):
                    admission.Twin = twin; // the same request twice in one batch: answered as the first one is
                    break;
                case Admission admission when WaitsOnBatch(admission, inBatchHeld):
                    // The user reaches the limit only with requests of this batch that may yet end sold out or busy:
                    // decided in the next batch, when they have their outcome (never limit_reached for units not held).
                    (deferred ??= []).Add(admission);
                    break;
                case Admission admission:
                    var decided = Decide(admission, now, candidates.Count);
                    if (decided is not null)
                    {
                        admission.Answer = decided;
                    }
                    else
                    {
                        candidates.Add(admission);
                        inBatch[(admission.UserId, admission.RequestId)] = admission;
                        inBatchHeld[admission.UserId] = inBatchHeld.GetValueOrDefault(admission.UserId) + 1;
                    }

                    break;
            }
        }

        if (deferred is not null)
        {
            batch.RemoveAll(operation => operation is Admission admission && deferred.Contains(admission));
        }

        try
        {
            await CommitAsync(batch, state, candidates, dirty, now);
        }
        finally
        {
            foreach (var admission in deferred ?? [])
            {
                _queue.Enqueue(admission); // the pump takes them in its next batch
            }
        }
    }

    /// <summary>Takes the units for <paramref name="candidates"/>, stores the batch and answers every operation of it.</summary>
    private async Task CommitAsync(List<Operation> batch, FlashShardState state, List<Admission> candidates, bool dirty, DateTimeOffset now)
    {
        if (candidates.Count > 0 && !await TakeUnitsAsync(candidates))
        {
            candidates.Clear();
        }

        var issuedBefore = state.Issued;
        foreach (var admission in candidates.Where(a => a.Answer is null))
        {
            var ticket = new FlashTicket(state.Issued, admission.UserId, admission.RequestId, now);
            state.Open.Add(ticket);
            state.Issued++;
            admission.Seq = ticket.Seq;
            dirty = true;
        }

        if (dirty)
        {
            try
            {
                await SealAsync();
            }
            catch (Exception ex)
            {
                // The head holds this batch in memory only: storage must say again what is queued before anyone is answered.
                LogWriteFailed(ex, _saleId, _shard);
                await ReloadQuietlyAsync(ex);
                RestoreAfterFailedWrite(batch, issuedBefore, ex);
                return;
            }

            try
            {
                await _head.WriteOrReloadAsync(this);
            }
            catch (Exception ex)
            {
                LogWriteFailed(ex, _saleId, _shard);
                RestoreAfterFailedWrite(batch, issuedBefore, ex);
                return;
            }
        }

        Reindex(issuedBefore);
        foreach (var operation in batch)
        {
            operation.Complete(this);
        }

        if (state.Issued > issuedBefore)
        {
            GrainFactory.GetGrain<IFlashSaleDrainerGrain>(_saleId).WakeAsync().Ignore();
        }
    }

    /// <summary>Whether <paramref name="a"/> reaches the user's limit only with candidates of this batch (not a stored repeat).</summary>
    private bool WaitsOnBatch(Admission a, Dictionary<string, int> inBatchHeld) =>
        inBatchHeld.GetValueOrDefault(a.UserId) is > 0 and var inBatch
        && !_byRequest.ContainsKey((a.UserId, a.RequestId))
        && _held.GetValueOrDefault(a.UserId) + inBatch >= _spec.PerUserLimit;

    /// <summary>
    /// The answer that needs no unit, or null when the request should be queued. The user's candidates of this batch
    /// need no count here: a request they would take to the limit waited for the next batch (<see cref="WaitsOnBatch"/>).
    /// </summary>
    private AdmissionResult? Decide(Admission a, DateTimeOffset now, int candidates)
    {
        if (_byRequest.TryGetValue((a.UserId, a.RequestId), out var seq))
        {
            return Count(new AdmissionResult(AdmissionOutcome.Duplicate, FlashSaleLimits.TicketId(_saleId, _shard, seq, _orderKey), Message: "this request was queued before"));
        }

        if (now < _spec.StartsAt)
        {
            return Count(new AdmissionResult(AdmissionOutcome.NotStarted, Message: $"the sale starts at {_spec.StartsAt:O}"));
        }

        if (State.SoldOutFrom is not null || (_saleSoldOut && State.Granted <= State.Issued))
        {
            return Count(new AdmissionResult(AdmissionOutcome.SoldOut));
        }

        if (_held.GetValueOrDefault(a.UserId) >= _spec.PerUserLimit)
        {
            return Count(new AdmissionResult(AdmissionOutcome.LimitReached, Message: $"user {a.UserId} holds the sale's limit of {_spec.PerUserLimit}"));
        }

        var bound = (_spec.Buffer + FlashSaleLimits.Shards - 1) / FlashSaleLimits.Shards;
        if (State.Backlog + candidates >= bound)
        {
            // About when half this backlog has become orders at the sale's rate (every shard drains at its share).
            var retryAfter = (int)Math.Clamp(500.0 * (State.Backlog + candidates) * FlashSaleLimits.Shards / _spec.Rate, 100, 60_000);
            return Count(new AdmissionResult(AdmissionOutcome.Busy, RetryAfterMs: retryAfter, Message: $"the sale's backlog is at its bound ({_spec.Buffer})"));
        }

        return null;
    }

    /// <summary>Makes sure a unit is held for every candidate; those without one are answered sold out. False: none could be asked for.</summary>
    private async Task<bool> TakeUnitsAsync(List<Admission> candidates)
    {
        var state = State;
        var needed = candidates.Count;
        var spare = state.Granted - state.Issued;
        if (spare < needed && !_saleSoldOut)
        {
            try
            {
                var grant = await GrainFactory.GetGrain<IFlashSaleRecordGrain>(_saleId).TakeUnitsAsync(_shard, needed - spare);
                // The sale's record is the authority on what this shard holds: it may know more than this head (a
                // grant whose answer, or whose write here, was lost).
                state.Granted = Math.Max(state.Granted, grant.GrantedTotal);
                _saleSoldOut = grant.UnitsLeft == 0 || grant.Exhausted;
            }
            catch (Exception ex)
            {
                LogGrantFailed(ex, _saleId, _shard);
                foreach (var admission in candidates)
                {
                    admission.Answer = Count(new AdmissionResult(AdmissionOutcome.Busy, RetryAfterMs: 1_000, Message: "the sale's record did not answer; nothing was queued"));
                }

                return false;
            }
        }

        var units = state.Granted - state.Issued;
        foreach (var admission in candidates)
        {
            if (units > 0)
            {
                units--;
            }
            else
            {
                admission.Answer = Count(new AdmissionResult(AdmissionOutcome.SoldOut));
            }
        }

        return true;
    }

    /// <summary>Writes every full run of the open tickets to its segment record, before the head that points past it.</summary>
    private async Task SealAsync()
    {
        var state = State;
        while (state.Open.Count >= SegmentSize)
        {
            var run = state.Open.GetRange(0, SegmentSize);
            var record = new GrainState<FlashTicketSegment>(new FlashTicketSegment { Tickets = run });
            // Written once, under a key of its own (a new record: a clash is refused, and the batch answered busy).
            var token = Random.Shared.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
            await _segmentStorage.WriteStateAsync(SegmentStateName, SegmentId(state.Sealed, token), record);
            while (state.SegmentTokens.Count < state.Sealed)
            {
                state.SegmentTokens.Add(""); // segments of a head stored before tokens: keyed by number only
            }

            state.SegmentTokens.Add(token);
            _segments.Add(run);
            state.Open.RemoveRange(0, SegmentSize);
            state.Sealed++;
        }
    }

    /// <summary>Re-reads the head after a failure before its write; a failed re-read leaves it untrusted (<see cref="State"/> throws).</summary>
    private async Task ReloadQuietlyAsync(Exception failure)
    {
        try
        {
            await _head.ReloadAsync(this, failure);
        }
        catch (InconsistentStateException)
        {
            // Untrusted now: RestoreAfterFailedWrite fails the batch and the activation is going away.
        }
    }

    private void RestoreAfterFailedWrite(List<Operation> batch, long issuedBefore, Exception error)
    {
        FlashShardState state;
        try
        {
            state = State; // re-read by the guarded write; throws if even that failed (the activation is going away)
        }
        catch (Exception ex)
        {
            batch.ForEach(operation => operation.Fail(ex));
            return;
        }

        if (state.Sealed > _segments.Count)
        {
            // Another activation of this shard sealed segments this one never read: nothing here can be trusted to
            // answer from; the next activation reads storage.
            var stale = new InconsistentStateException($"flash sale {_saleId} shard {_shard}: the stored head is ahead of this activation; retry");
            batch.ForEach(operation => operation.Fail(stale));
            DeactivateOnIdle();
            return;
        }

        _segments.RemoveRange(state.Sealed, _segments.Count - state.Sealed);
        // The re-read head may hold fewer units than a grant this activation heard of (its write failed): ask the sale
        // again before answering sold out, so no granted unit is stranded.
        _saleSoldOut = false;
        Reindex();
        foreach (var operation in batch)
        {
            switch (operation)
            {
                case Admission { Seq: { } seq } admission when seq < state.Issued && Ticket(seq) is var stored
                    && stored.RequestId == admission.RequestId && stored.UserId == admission.UserId:
                    break; // its ticket is stored after all: queued
                case Admission { Answer: null, Twin: null } pending:
                    pending.Seq = null;
                    pending.Answer = Count(new AdmissionResult(AdmissionOutcome.Busy, RetryAfterMs: 1_000, Message: "storage did not take the request; nothing was queued"));
                    break;
                case Change:
                    operation.Fail(error); // the drain asks again
                    break;
            }
        }

        foreach (var operation in batch)
        {
            operation.Complete(this);
        }
    }

    /// <summary>Rebuilds (or extends from <paramref name="from"/>) the request and per-user indexes from the stored tickets.</summary>
    private void Reindex(long from = 0)
    {
        if (from == 0)
        {
            _byRequest.Clear();
            _held.Clear();
        }

        for (var seq = from; seq < State.Issued; seq++)
        {
            var ticket = Ticket(seq);
            _byRequest[(ticket.UserId, ticket.RequestId)] = seq;
            _held[ticket.UserId] = _held.GetValueOrDefault(ticket.UserId) + 1;
        }
    }

    private FlashTicket Ticket(long seq)
    {
        var sealedCount = (long)State.Sealed * SegmentSize;
        return seq < sealedCount ? _segments[(int)(seq / SegmentSize)][(int)(seq % SegmentSize)] : State.Open[(int)(seq - sealedCount)];
    }

    private TicketStatus TicketOf(long seq)
    {
        if (seq < 0 || seq >= State.Issued)
        {
            return new TicketStatus(TicketState.Unknown, Message: $"no ticket {FlashSaleLimits.TicketId(_saleId, _shard, seq, _orderKey)} in sale {_saleId}");
        }

        var ticket = Ticket(seq);
        return seq >= State.Resolved ? new TicketStatus(TicketState.Pending, UserId: ticket.UserId)
            : State.EndedSoldOut(seq) ? new TicketStatus(TicketState.SoldOut, UserId: ticket.UserId)
            : new TicketStatus(TicketState.Won, FlashSaleLimits.OrderIdOf(_saleId, _shard, seq, _orderKey), ticket.UserId);
    }

    private AdmissionResult Count(AdmissionResult result)
    {
        if (result.Outcome != AdmissionOutcome.Queued)
        {
            _refused[result.Outcome] = _refused.GetValueOrDefault(result.Outcome) + 1;
        }

        return result;
    }

    /// <summary>Segment <paramref name="n"/>'s record: <c>{shard key}~{n}~{token}</c> (<c>{shard key}~{n}</c> for a head stored before tokens).</summary>
    public static GrainId SegmentId(string shardKey, int n, string? token) =>
        GrainId.Create(SegmentType, token is null ? $"{shardKey}~{n}" : $"{shardKey}~{n}~{token}");

    private GrainId SegmentId(int n, string? token) => SegmentId(this.GetPrimaryKeyString(), n, token);

    private string? TokenOf(int n) => n < State.SegmentTokens.Count && State.SegmentTokens[n] is { Length: > 0 } token ? token : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId} shard {Shard}: a batch could not be stored; its requests were answered busy unless the re-read found them stored")]
    private partial void LogWriteFailed(Exception exception, string saleId, int shard);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Flash sale {SaleId} shard {Shard}: the sale did not hand out units; the batch was answered busy")]
    private partial void LogGrantFailed(Exception exception, string saleId, int shard);

    private abstract class Operation
    {
        public abstract void Complete(FlashSaleShardGrain shard);

        public abstract void Fail(Exception error);
    }

    private abstract class Operation<T> : Operation
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<T> Task => _done.Task;

        protected void SetResult(T value) => _done.TrySetResult(value);

        public override void Fail(Exception error) => _done.TrySetException(error);
    }

    private sealed class Admission(string userId, string requestId) : Operation<AdmissionResult>
    {
        public string UserId { get; } = userId;

        public string RequestId { get; } = requestId;

        public AdmissionResult? Answer { get; set; }

        public long? Seq { get; set; }

        /// <summary>An earlier request of this batch with the same user and request id: this one is its duplicate.</summary>
        public Admission? Twin { get; set; }

        public override void Complete(FlashSaleShardGrain shard)
        {
            if (Twin is not null)
            {
                SetResult(Twin.Seq is { } twinSeq
                    ? shard.Count(new AdmissionResult(AdmissionOutcome.Duplicate, FlashSaleLimits.TicketId(shard._saleId, shard._shard, twinSeq, shard._orderKey), Message: "this request was queued before"))
                    : Twin.Answer!);
                return;
            }

            SetResult(Answer ?? new AdmissionResult(AdmissionOutcome.Queued, FlashSaleLimits.TicketId(shard._saleId, shard._shard, Seq!.Value, shard._orderKey)));
        }
    }

    private sealed class Read<T>(Func<T> read) : Operation<T>
    {
        public override void Complete(FlashSaleShardGrain shard)
        {
            try
            {
                SetResult(read());
            }
            catch (Exception ex)
            {
                Fail(ex);
            }
        }
    }

    private sealed class Change(Func<bool> change) : Operation<bool>
    {
        public bool Run() => change();

        public override void Complete(FlashSaleShardGrain shard) => SetResult(true);
    }
}
