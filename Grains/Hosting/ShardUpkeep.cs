namespace OrderFlow.Grains.Hosting;

/// <summary>
/// The upkeep of a shard grain that holds durable work (the relay's shards, the payment deadline shards): a grain timer
/// runs its rounds while it holds work, and one Orleans reminder brings it back after a crash or a whole-cluster
/// restart. The reminder is removed at its own tick when the shard holds nothing — not when the shard empties — so a
/// shard that empties and fills again within the reminder's period pays no registration and removal each time.
/// </summary>
internal sealed class ShardUpkeep(Grain grain, string reminderName, TimeSpan period, Func<Task> round, Action<Exception> reminderFailed)
{
    private static readonly TimeSpan ReminderPeriod = TimeSpan.FromMinutes(1);

    private IGrainTimer? _timer;
    private bool _reminderSet;

    /// <summary>
    /// Starts the timer and registers the reminder, if not done yet. A failed registration is tried again by the next
    /// call and by every round of the timer meanwhile: a shard that holds work without a reminder would not come back
    /// after its silo dies until another silo starts or new work reaches it.
    /// </summary>
    public async Task EnsureRunningAsync()
    {
        _timer ??= grain.RegisterGrainTimer(_ => RoundAsync(), new GrainTimerCreationOptions(period, period) { KeepAlive = true });
        await EnsureReminderAsync();
    }

    private async Task RoundAsync()
    {
        try
        {
            await round();
        }
        finally
        {
            if (_timer is not null)
            {
                await EnsureReminderAsync(); // still holding work after the round (it never throws)
            }
        }
    }

    private async Task EnsureReminderAsync()
    {
        if (_reminderSet)
        {
            return;
        }

        try
        {
            await grain.RegisterOrUpdateReminder(reminderName, ReminderPeriod, ReminderPeriod);
            _reminderSet = true;
        }
        catch (Exception ex)
        {
            // The timer runs meanwhile, and its next round registers it again.
            reminderFailed(ex);
        }
    }

    /// <summary>Stops the timer (the shard is idle): its activation can go, and the next piece of work starts it again.</summary>
    public void StopTimer()
    {
        _timer?.Dispose();
        _timer = null;
    }

    /// <summary>The reminder's tick: runs the shard again if it holds work; otherwise removes the reminder.</summary>
    public async Task OnReminderAsync(bool holdsWork)
    {
        _reminderSet = true;
        if (holdsWork)
        {
            await EnsureRunningAsync();
            return;
        }

        try
        {
            if (await grain.GetReminder(reminderName) is { } reminder)
            {
                await grain.UnregisterReminder(reminder);
            }

            _reminderSet = false;
        }
        catch (Exception ex)
        {
            reminderFailed(ex);
        }
    }
}
