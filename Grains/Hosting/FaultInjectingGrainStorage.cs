using System.Net;
using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Wraps one named grain storage and fails the calls a <see cref="StorageFaults"/> fault matches, with a
/// <see cref="StorageFaultException"/>: before the call reaches the inner storage (nothing lands), or — in
/// <see cref="StorageFaultMode.AfterCall"/> — after it landed. Every other call goes straight through. It passes on
/// what Orleans asks of the storage it wraps: the silo lifecycle (the Azure table provider creates its table there),
/// error decoding, and disposal of a storage it owns.
/// </summary>
public sealed class FaultInjectingGrainStorage(string name, IGrainStorage inner, StorageFaults faults, bool ownsInner)
    : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>, IRestExceptionDecoder, IDisposable, IAsyncDisposable
{
    /// <summary>The storage this one wraps.</summary>
    public IGrainStorage Inner => inner;

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        RunAsync(StorageOperations.Read, grainId, grainState, () => inner.ReadStateAsync(stateName, grainId, grainState));

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        RunAsync(StorageOperations.Read, grainId, grainState, () => inner.ReadStateAsync(stateName, grainId, grainState, cancellationToken));

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        RunAsync(StorageOperations.Write, grainId, grainState, () => inner.WriteStateAsync(stateName, grainId, grainState));

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        RunAsync(StorageOperations.Write, grainId, grainState, () => inner.WriteStateAsync(stateName, grainId, grainState, cancellationToken));

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        RunAsync(StorageOperations.Clear, grainId, grainState, () => inner.ClearStateAsync(stateName, grainId, grainState));

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        RunAsync(StorageOperations.Clear, grainId, grainState, () => inner.ClearStateAsync(stateName, grainId, grainState, cancellationToken));

    private async Task RunAsync<T>(StorageOperations operation, GrainId grainId, IGrainState<T> grainState, Func<Task> call)
    {
        var fault = faults.Meet(name, grainId, operation);
        if (fault is null)
        {
            await call();
            return;
        }

        if (fault.Fault.Delay is { } delay)
        {
            await Task.Delay(delay); // slow storage: the call waits first, then goes as its mode says
        }

        var mode = fault.Fault.Mode;
        if (mode == StorageFaultMode.CountOnly)
        {
            await call();
            return;
        }

        if (mode == StorageFaultMode.AfterCall)
        {
            // The call lands, but its answer is "lost": the caller keeps the ETag and record flag it had, as after a
            // timeout, so only a re-read can tell it what storage now holds.
            var (etag, recordExists) = (grainState.ETag, grainState.RecordExists);
            await call();
            (grainState.ETag, grainState.RecordExists) = (etag, recordExists);
        }

        throw new StorageFaultException(name, grainId, operation, mode);
    }

    public void Participate(ISiloLifecycle lifecycle) => (inner as ILifecycleParticipant<ISiloLifecycle>)?.Participate(lifecycle);

    public bool DecodeException(Exception exception, out HttpStatusCode httpStatusCode, out string restStatus, bool getExtendedErrors = false)
    {
        if (inner is IRestExceptionDecoder decoder)
        {
            return decoder.DecodeException(exception, out httpStatusCode, out restStatus, getExtendedErrors);
        }

        httpStatusCode = default;
        restStatus = "";
        return false;
    }

    public void Dispose()
    {
        if (ownsInner && inner is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!ownsInner)
        {
            return;
        }

        if (inner is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else if (inner is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    public override string ToString() => $"{nameof(FaultInjectingGrainStorage)}({name}: {inner})";
}
