using Microsoft.Extensions.Logging;
using OrderFlow.Contracts;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Orders;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Wakes the silo's durable background work when the silo becomes active — every relay shard, every payment deadline
/// shard and every subscriber's backfill job — so held orders are settled, unpaid orders time out and a running backfill goes on after a crash or a whole-cluster restart
/// without waiting for a reminder (and also where reminders are in memory and died with the silo). A shard with nothing
/// held, or a job that is not running, does nothing.
/// </summary>
internal sealed partial class StartupWake(IGrainFactory grains, SubscriberCatalog subscribers, ILogger<StartupWake> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(StartupWake), ServiceLifecycleStage.Active, OnStart, _ => Task.CompletedTask);

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
                // Waking is idempotent, so a failed round simply wakes everything again.
                await Task.WhenAll(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => grains.GetGrain<IOrderRelayGrain>(shard).WakeAsync())
                    .Concat(Enumerable.Range(0, IOrderRelayGrain.Shards).Select(shard => grains.GetGrain<IPaymentDeadlineShardGrain>(shard).WakeAsync()))
                    .Concat(subscribers.Names.Select(name => grains.GetGrain<IBackfillJobGrain>(name).WakeAsync())));
                return;
            }
            catch (Exception ex)
            {
                LogWakeFailed(ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(2 * attempt));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not wake the relay shards, payment deadline shards and backfill jobs (attempt {Attempt}); their reminders bring them back")]
    private partial void LogWakeFailed(Exception exception, int attempt);
}
