using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// Wakes every relay shard when a silo becomes active, so undelivered work resumes after a restart without waiting for
/// a reminder (and also where reminders are in memory and died with the silo). A shard with nothing held does nothing.
/// </summary>
internal sealed partial class RelayStarter(IGrainFactory grains, ILogger<RelayStarter> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RelayStarter), ServiceLifecycleStage.Active, OnStart, _ => Task.CompletedTask);

    private Task OnStart(CancellationToken cancellationToken)
    {
        // In the background: the silo's start must not wait on 64 activations (or on storage that is down).
        _ = Task.Run(WakeAllAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task WakeAllAsync()
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            try
            {
                await Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => grains.GetGrain<IOrderRelayGrain>(shard).WakeAsync()));
                return;
            }
            catch (Exception ex)
            {
                LogWakeFailed(ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(2 * attempt));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not wake the relay shards (attempt {Attempt}); their reminders bring them back")]
    private partial void LogWakeFailed(Exception exception, int attempt);
}
