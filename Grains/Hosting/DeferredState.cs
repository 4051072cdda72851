using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// A grain's persistent state that is not read when the grain activates, unlike <c>[PersistentState]</c>: the grain
/// reads it on first need (<see cref="ReadStateAsync()"/>) or, when it knows its key is new, starts from an empty
/// state without a read (<see cref="AssumeNew"/>). The record is the one <c>[PersistentState]</c> would use (same
/// storage, state name and grain id), so the two are interchangeable over stored data.
/// <para>
/// Assuming a key is new is safe because every write is conditional: the first write after <see cref="AssumeNew"/> is
/// an insert (no ETag), which storage refuses if a record exists after all (<see cref="InconsistentStateException"/>);
/// <see cref="GuardedState{T}"/> then re-reads, and the grain goes on from what storage holds. Saves one read of a row
/// that does not exist per new key: on Azure Table storage a request that answers 404.
/// </para>
/// </summary>
public sealed class DeferredState<T>(string stateName, GrainId grainId, IGrainStorage storage) : IPersistentState<T>
    where T : new()
{
    private readonly GrainState<T> _record = new(new T());

    /// <summary>False until the state was read, or assumed new.</summary>
    public bool IsLoaded { get; private set; }

    /// <summary>True after <see cref="AssumeNew"/> until a read or a write shows what storage holds.</summary>
    public bool IsAssumedNew { get; private set; }

    public T State
    {
        get => IsLoaded ? _record.State! : throw new InvalidOperationException($"state {stateName} of {grainId} was not loaded yet");
        set => _record.State = value;
    }

    public string? Etag => _record.ETag;

    public bool RecordExists => _record.RecordExists;

    /// <summary>Starts from an empty state with no read, as if storage held no record (see the class summary).</summary>
    public void AssumeNew()
    {
        _record.State = new T();
        _record.ETag = null;
        _record.RecordExists = false;
        IsLoaded = true;
        IsAssumedNew = true;
    }

    /// <summary>
    /// Loads the state on first need (nothing if it is loaded): with no read when <paramref name="knownNew"/> (the caller
    /// knows the key is new, <see cref="AssumeNew"/>), else with one.
    /// </summary>
    public async ValueTask LoadAsync(bool knownNew)
    {
        if (IsLoaded)
        {
            return;
        }

        if (knownNew)
        {
            AssumeNew();
        }
        else
        {
            await ReadStateAsync();
        }
    }

    /// <summary>
    /// Makes sure the state is what storage holds. Not loaded: reads it. Assumed new with no write settled yet: a read that
    /// changes nothing if storage holds no record (true: the key is new, the state as it stands is kept); if a record
    /// exists after all, the state becomes that record (false). Otherwise nothing to do (true).
    /// </summary>
    public async Task<bool> ConfirmNewAsync(CancellationToken cancellationToken = default)
    {
        if (!IsLoaded)
        {
            await ReadStateAsync(cancellationToken);
            return true;
        }

        if (!IsAssumedNew)
        {
            return true;
        }

        var stored = new GrainState<T>(new T());
        await storage.ReadStateAsync(stateName, grainId, stored, cancellationToken);
        IsAssumedNew = false;
        if (!stored.RecordExists)
        {
            return true;
        }

        _record.State = stored.State;
        _record.ETag = stored.ETag;
        _record.RecordExists = true;
        return false;
    }

    public Task ReadStateAsync() => ReadStateAsync(CancellationToken.None);

    public async Task ReadStateAsync(CancellationToken cancellationToken)
    {
        await storage.ReadStateAsync(stateName, grainId, _record, cancellationToken);
        IsLoaded = true;
        IsAssumedNew = false;
    }

    /// <summary>
    /// Learns the stored record's ETag (and whether it exists) without taking its state: for a writer whose write failed,
    /// perhaps after landing, and whose state in memory is still what it means to store.
    /// </summary>
    public async Task RefreshETagAsync()
    {
        var stored = new GrainState<T>(new T());
        await storage.ReadStateAsync(stateName, grainId, stored);
        _record.ETag = stored.ETag;
        _record.RecordExists = stored.RecordExists;
        IsAssumedNew = false;
    }

    public Task WriteStateAsync() => WriteStateAsync(CancellationToken.None);

    public async Task WriteStateAsync(CancellationToken cancellationToken)
    {
        await storage.WriteStateAsync(stateName, grainId, _record, cancellationToken);
        IsAssumedNew = false;
    }

    public Task ClearStateAsync() => ClearStateAsync(CancellationToken.None);

    public async Task ClearStateAsync(CancellationToken cancellationToken)
    {
        await storage.ClearStateAsync(stateName, grainId, _record, cancellationToken);
        IsAssumedNew = false;
    }
}
