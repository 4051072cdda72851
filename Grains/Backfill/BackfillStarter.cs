using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;

namespace OrderFlow.Grains.Backfill;

/// <summary>
/// Wakes the backfill job of every subscriber this silo hosts when the silo becomes active, so a job that was running
/// when the cluster went down goes on without waiting for its reminder (and also where reminders are in memory and
/// died with the silo). A job that is not running does nothing.
/// </summary>
internal sealed partial class BackfillStarter(IGrainFactory grains, SubscriberCatalog subscribers, ILogger<BackfillStarter> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(BackfillStarter), ServiceLifecycleStage.Active, OnStart, _ => Task.CompletedTask);

    private Task OnStart(CancellationToken cancellationToken)
    {
        // In the background: the silo's start must not wait on activations (or on storage that is down).
        _ = Task.Run(WakeAllAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task WakeAllAsync()
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            try
            {
                await Task.WhenAll(subscribers.Names.Select(name => grains.GetGrain<IBackfillJobGrain>(name).WakeAsync()));
                return;
            }
            catch (Exception ex)
            {
                LogWakeFailed(ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(2 * attempt));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not wake the backfill jobs (attempt {Attempt}); their reminders bring running ones back")]
    private partial void LogWakeFailed(Exception exception, int attempt);
}
