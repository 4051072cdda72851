using Microsoft.Extensions.Logging;

namespace OrderFlow.Grains.Hosting;

/// <summary>The grain storage operations a <see cref="StorageFault"/> makes fail.</summary>
[Flags]
public enum StorageOperations
{
    None = 0,
    Read = 1,
    Write = 2,
    Clear = 4,
    All = Read | Write | Clear,
}

/// <summary>How a failing storage call fails.</summary>
public enum StorageFaultMode
{
    /// <summary>The call throws before it reaches storage: nothing lands (storage down, a request refused).</summary>
    BeforeCall,

    /// <summary>
    /// The call reaches storage and lands, then throws: the ambiguous failure of real storage (a timeout after the
    /// write was applied). The caller never sees the answer, so its in-memory ETag and record flag stay as they were
    /// before the call; only a re-read shows that the write landed.
    /// </summary>
    AfterCall,

    /// <summary>
    /// The call goes through untouched and is only counted (<see cref="StorageFaultHandle.Hits"/>): a probe, for a test
    /// that counts a grain's storage calls.
    /// </summary>
    CountOnly,
}

/// <summary>
/// Which grain storage calls fail, and for how long. Every filter left null matches everything. A fault without
/// <see cref="Times"/> and without <see cref="For"/> lasts until its handle is disposed or <see cref="StorageFaults.Clear"/>.
/// Tests that run side by side give their grains unique keys and filter on them, so their faults never meet.
/// </summary>
public sealed record StorageFault
{
    /// <summary>The storage provider name (e.g. <see cref="StorageNames.Ledgers"/>); null: every storage.</summary>
    public string? StorageName { get; init; }

    /// <summary>The operations that fail. Default: all of them.</summary>
    public StorageOperations Operations { get; init; } = StorageOperations.All;

    /// <summary>The grain type (e.g. <c>ledger-points</c>); null: every grain type.</summary>
    public string? GrainType { get; init; }

    /// <summary>The start of the grain's key (ordinal); a whole key names one grain of <see cref="GrainType"/>. Null: every key.</summary>
    public string? KeyPrefix { get; init; }

    /// <summary>Let this many matching calls through before failing any (e.g. the second write of one grain). Default 0.</summary>
    public int Skip { get; init; }

    /// <summary>Fail only the next this many matching calls. Null: no limit by count.</summary>
    public int? Times { get; init; }

    /// <summary>Fail matching calls for this long from <see cref="StorageFaults.Fail"/> (the silo's <see cref="TimeProvider"/>). Null: no limit by time.</summary>
    public TimeSpan? For { get; init; }

    /// <summary>Whether a failing call lands first. Default <see cref="StorageFaultMode.BeforeCall"/>: it does not.</summary>
    public StorageFaultMode Mode { get; init; } = StorageFaultMode.BeforeCall;

    /// <summary>
    /// A matching call first waits this long, then goes as <see cref="Mode"/> says: with <see cref="StorageFaultMode.CountOnly"/>,
    /// slow storage. Null: no wait.
    /// </summary>
    public TimeSpan? Delay { get; init; }

    internal bool Matches(string storageName, GrainId grainId, StorageOperations operation) =>
        (Operations & operation) != 0
        && (StorageName is null || string.Equals(StorageName, storageName, StringComparison.Ordinal))
        && (GrainType is null || string.Equals(GrainType, grainId.Type.ToString(), StringComparison.Ordinal))
        && (KeyPrefix is null || (grainId.Key.ToString() ?? "").StartsWith(KeyPrefix, StringComparison.Ordinal));

    public override string ToString() =>
        $"{Operations} on {StorageName ?? "every storage"}, grain {GrainType ?? "*"}/{KeyPrefix ?? ""}*, " +
        $"{(Skip > 0 ? $"after {Skip} calls, " : "")}{(Times is { } n ? $"next {n} calls" : "every call")}{(For is { } window ? $" for {window}" : "")}, {Mode}{(Delay is { } wait ? $" after {wait}" : "")}";
}

/// <summary>
/// One fault while it is active. Disposing it ends the fault; <see cref="Hits"/> says how many calls it failed,
/// so a test can check that the call it meant to break really met it.
/// </summary>
public sealed class StorageFaultHandle : IDisposable
{
    private readonly StorageFaults _owner;
    private int _hits;

    internal StorageFaultHandle(StorageFaults owner, StorageFault fault, DateTimeOffset? endsAt)
    {
        _owner = owner;
        Fault = fault;
        EndsAt = endsAt;
        Remaining = fault.Times;
        ToSkip = fault.Skip;
    }

    public StorageFault Fault { get; }

    /// <summary>The calls this fault has failed so far.</summary>
    public int Hits => Volatile.Read(ref _hits);

    internal DateTimeOffset? EndsAt { get; }

    /// <summary>Calls left to fail when the fault counts calls; changed only under the owner's lock.</summary>
    internal int? Remaining { get; private set; }

    /// <summary>Matching calls still to let through before failing; changed only under the owner's lock.</summary>
    internal int ToSkip { get; set; }

    internal bool IsSpent(DateTimeOffset now) => Remaining <= 0 || EndsAt <= now;

    internal void Hit()
    {
        Remaining--;
        Interlocked.Increment(ref _hits);
    }

    public void Dispose() => _owner.Remove(this);
}

/// <summary>
/// Makes grain storage fail on demand, for tests and drills. One per silo (a singleton), consulted by the
/// <see cref="FaultInjectingGrainStorage"/> that <see cref="StorageFaultInjectionExtensions.AddStorageFaultInjection"/>
/// puts around every grain storage. Thread-safe. With no fault active a storage call costs one volatile read here.
/// <code>
/// using var fault = faults.Fail(new StorageFault { Operations = StorageOperations.Write, GrainType = "order", KeyPrefix = orderId, Times = 1 });
/// </code>
/// </summary>
public sealed partial class StorageFaults(TimeProvider clock, ILogger<StorageFaults> logger)
{
    private readonly Lock _lock = new();
    private readonly List<StorageFaultHandle> _active = [];
    private volatile int _count;

    /// <summary>Starts failing the calls <paramref name="fault"/> describes; dispose the handle to stop.</summary>
    public StorageFaultHandle Fail(StorageFault fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        if (fault.Operations == StorageOperations.None || (fault.Operations & ~StorageOperations.All) != 0)
        {
            throw new ArgumentException($"Operations must be a combination of Read, Write and Clear, not {fault.Operations}", nameof(fault));
        }

        if (fault.Skip < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(fault), fault.Skip, "Skip must be zero or positive");
        }

        if (fault.Times is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(fault), fault.Times, "Times must be positive (or null for no limit)");
        }

        if (fault.Delay is { } wait && (wait < TimeSpan.Zero || wait > TimeSpan.FromMinutes(1)))
        {
            throw new ArgumentOutOfRangeException(nameof(fault), wait, "Delay must be between 0 and 1 minute (or null for none)");
        }

        if (fault.For is { } window && window <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(fault), window, "For must be positive (or null for no limit)");
        }

        var handle = new StorageFaultHandle(this, fault, fault.For is { } duration ? clock.GetUtcNow() + duration : null);
        lock (_lock)
        {
            _active.Add(handle);
            _count = _active.Count;
        }

        LogFaultAdded(fault.ToString());
        return handle;
    }

    /// <summary>Ends every fault.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _active.Clear();
            _count = 0;
        }

        LogFaultsCleared();
    }

    /// <summary>The faults still active now (spent ones are dropped).</summary>
    public IReadOnlyList<StorageFaultHandle> Active
    {
        get
        {
            lock (_lock)
            {
                DropSpent(clock.GetUtcNow());
                return _active.ToArray();
            }
        }
    }

    /// <summary>
    /// The fault a storage call meets, or null to let it through. The first active fault that matches takes the call
    /// (and counts it against its <see cref="StorageFault.Times"/>).
    /// </summary>
    public StorageFaultHandle? Meet(string storageName, GrainId grainId, StorageOperations operation)
    {
        if (_count == 0)
        {
            return null;
        }

        lock (_lock)
        {
            DropSpent(clock.GetUtcNow());
            foreach (var handle in _active)
            {
                if (handle.Fault.Matches(storageName, grainId, operation))
                {
                    if (handle.ToSkip > 0)
                    {
                        handle.ToSkip--;
                        return null; // let through, as asked
                    }

                    handle.Hit();
                    return handle;
                }
            }

            return null;
        }
    }

    internal void Remove(StorageFaultHandle handle)
    {
        lock (_lock)
        {
            _active.Remove(handle);
            _count = _active.Count;
        }
    }

    private void DropSpent(DateTimeOffset now)
    {
        _active.RemoveAll(handle => handle.IsSpent(now));
        _count = _active.Count;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Storage fault injected: {Fault}")]
    private partial void LogFaultAdded(string fault);

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage faults cleared")]
    private partial void LogFaultsCleared();
}
