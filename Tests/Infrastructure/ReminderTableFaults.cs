using Microsoft.Extensions.DependencyInjection;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// Makes the silo's reminder table refuse registrations and removals on demand (reads still answer), around whatever
/// table the silo was configured with: the reminder service's storage down, as <c>StorageFaults</c> does for grain storage.
/// </summary>
public sealed class ReminderTableFaults
{
    private volatile bool _failWrites;
    private int _failed;

    /// <summary>While true, every upsert and removal of a reminder row fails.</summary>
    public bool FailWrites
    {
        get => _failWrites;
        set => _failWrites = value;
    }

    /// <summary>Writes refused so far.</summary>
    public int Failed => Volatile.Read(ref _failed);

    internal void ThrowIfFailing(string operation)
    {
        if (_failWrites)
        {
            Interlocked.Increment(ref _failed);
            throw new InvalidOperationException($"Injected reminder table fault: {operation} refused");
        }
    }
}

public static class ReminderTableFaultsExtensions
{
    /// <summary>Wraps the reminder table registered so far in one that fails on demand (<see cref="ReminderTableFaults"/>).</summary>
    public static ISiloBuilder AddReminderTableFaults(this ISiloBuilder builder)
    {
        var original = builder.Services.Last(d => d.ServiceType == typeof(IReminderTable));
        builder.Services.Remove(original);
        builder.Services.AddSingleton<ReminderTableFaults>();
        builder.Services.AddSingleton<IReminderTable>(services =>
            new FaultyReminderTable(Create(original, services), services.GetRequiredService<ReminderTableFaults>()));
        return builder;
    }

    private static IReminderTable Create(ServiceDescriptor descriptor, IServiceProvider services) =>
        descriptor.ImplementationInstance as IReminderTable
        ?? (IReminderTable)(descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.GetServiceOrCreateInstance(services, descriptor.ImplementationType!));

    private sealed class FaultyReminderTable(IReminderTable inner, ReminderTableFaults faults) : IReminderTable
    {
        public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

        public Task<ReminderTableData> ReadRows(GrainId grainId) => inner.ReadRows(grainId);

        public Task<ReminderTableData> ReadRows(uint begin, uint end) => inner.ReadRows(begin, end);

        public Task<ReminderEntry?> ReadRow(GrainId grainId, string reminderName) => inner.ReadRow(grainId, reminderName);

        public Task<string?> UpsertRow(ReminderEntry entry)
        {
            faults.ThrowIfFailing($"upsert of {entry.ReminderName} for {entry.GrainId}");
            return inner.UpsertRow(entry);
        }

        public Task<bool> RemoveRow(GrainId grainId, string reminderName, string eTag)
        {
            faults.ThrowIfFailing($"removal of {reminderName} for {grainId}");
            return inner.RemoveRow(grainId, reminderName, eTag);
        }

        public Task TestOnlyClearTable() => inner.TestOnlyClearTable();

        public Task StopAsync(CancellationToken cancellationToken = default) => inner.StopAsync(cancellationToken);
    }
}
