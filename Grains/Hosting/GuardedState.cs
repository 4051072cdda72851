using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// A grain's persistent state that is never served from a write that failed (STYLE.md: after a failed write, do not
/// trust in-memory state). Every grain here writes through <see cref="WriteOrReloadAsync"/>:
/// <list type="bullet">
/// <item>the write fails: the write may or may not have landed, so the state is re-read and the write's error
///   rethrown — memory now says what storage says;</item>
/// <item>the re-read fails too: memory still holds the failed write's changes (a processed key, an event, a
///   sequence number that storage may never have seen). The state is marked untrusted and the activation is
///   deactivated. From then on <see cref="State"/> and every write throw <see cref="InconsistentStateException"/> — a
///   retriable error, which Orleans also answers by deactivating the activation it escapes from — so this activation
///   neither answers another call from that memory nor writes it on its way out; the next activation reads storage.</item>
/// </list>
/// One instance per activation (a grain field), like the <see cref="IPersistentState{T}"/> it wraps.
/// </summary>
public sealed class GuardedState<T>(IPersistentState<T> storage)
{
    private string? _untrusted;

    /// <summary>False once a failed write could not be followed by a re-read: nothing in memory may be served or written.</summary>
    public bool IsTrusted => _untrusted is null;

    /// <summary>The state; throws <see cref="InconsistentStateException"/> once it is untrusted.</summary>
    public T State => IsTrusted ? storage.State : throw Refused();

    public bool RecordExists => storage.RecordExists;

    /// <summary>Writes the state; if the write fails, re-reads it and rethrows; if the re-read fails too, see the class summary.</summary>
    public async Task WriteOrReloadAsync(IGrainBase grain)
    {
        ThrowIfUntrusted();
        try
        {
            await storage.WriteStateAsync();
        }
        catch (Exception writeFailure)
        {
            await ReloadAsync(grain, writeFailure);
            throw;
        }
    }

    /// <summary>
    /// Re-reads the state after <paramref name="failure"/> left memory ahead of storage (a write that failed, or a step
    /// before the write that did); if the re-read fails too, see the class summary.
    /// </summary>
    public async Task ReloadAsync(IGrainBase grain, Exception failure)
    {
        ThrowIfUntrusted();
        try
        {
            await storage.ReadStateAsync();
        }
        catch (Exception readFailure)
        {
            _untrusted = $"memory went ahead of storage ({failure.GetType().Name}) and the re-read after it failed ({readFailure.GetType().Name})";
            var context = grain.GrainContext;
            GuardedStateLog.Untrusted(context.ActivationServices.GetRequiredService<ILoggerFactory>(), readFailure, context.GrainId, typeof(T).Name);
            context.Deactivate(new DeactivationReason(DeactivationReasonCode.ApplicationError, $"state {typeof(T).Name} untrusted: {_untrusted}"));
            throw new InconsistentStateException($"{context.GrainId}: state {typeof(T).Name} is not trusted, {_untrusted}; " +
                "the activation is deactivating and the call may be retried", failure);
        }
    }

    /// <summary>
    /// A plain write, for a flush whose failure the caller accepts (progress saved lazily, on deactivation). Refused once
    /// the state is untrusted; check <see cref="IsTrusted"/> first to skip it quietly.
    /// </summary>
    public Task WriteStateAsync(CancellationToken cancellationToken)
    {
        ThrowIfUntrusted();
        return storage.WriteStateAsync(cancellationToken);
    }

    private void ThrowIfUntrusted()
    {
        if (!IsTrusted)
        {
            throw Refused();
        }
    }

    private InconsistentStateException Refused() =>
        new($"state {typeof(T).Name} of this activation is not trusted ({_untrusted}); it is deactivating, retry the call");
}

internal static partial class GuardedStateLog
{
    public static void Untrusted(ILoggerFactory loggers, Exception readFailure, GrainId grainId, string stateType) =>
        LogUntrusted(loggers.CreateLogger("OrderFlow.Grains.Hosting.GuardedState"), readFailure, grainId, stateType);

    [LoggerMessage(Level = LogLevel.Error, Message = "{GrainId} could not write its {StateType} nor read it back: its in-memory state is not trusted and the activation is deactivated")]
    private static partial void LogUntrusted(ILogger logger, Exception exception, GrainId grainId, string stateType);
}
