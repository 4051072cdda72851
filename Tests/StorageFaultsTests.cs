using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFlow.Grains.Hosting;
using Orleans.Runtime.Hosting;
using Orleans.Storage;

namespace OrderFlow.Tests;

/// <summary>The storage fault controller and the storage decorator on their own: no cluster.</summary>
public sealed class StorageFaultsTests
{
    private static readonly GrainId Ledger = GrainId.Create("ledger-points", "user-1");
    private static readonly GrainId OtherLedger = GrainId.Create("ledger-points", "other-1");
    private static readonly GrainId Order = GrainId.Create("order", "user-1");

    private readonly ManualClock _clock = new();
    private readonly StorageFaults _faults;

    public StorageFaultsTests() => _faults = new StorageFaults(_clock, NullLogger<StorageFaults>.Instance);

    [Fact]
    public void A_fault_for_the_next_two_writes_fails_two_matching_writes_and_then_lets_calls_through()
    {
        var fault = _faults.Fail(new StorageFault { Operations = StorageOperations.Write, Times = 2 });

        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Read));
        Assert.Same(fault, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        Assert.Same(fault, _faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        Assert.Equal(2, fault.Hits);
        Assert.Empty(_faults.Active);
    }

    [Fact]
    public void A_fault_that_skips_two_lets_the_first_two_matching_calls_through_and_fails_the_third()
    {
        var fault = _faults.Fail(new StorageFault { Operations = StorageOperations.Write, GrainType = "order", Skip = 2, Times = 1 });

        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write)); // not matching: not counted
        Assert.Null(_faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Same(fault, _faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Equal(1, fault.Hits);
        Assert.Throws<ArgumentOutOfRangeException>(() => _faults.Fail(new StorageFault { Skip = -1 }));
    }

    [Fact]
    public void A_fault_for_a_time_window_fails_every_matching_call_until_the_window_has_passed()
    {
        var fault = _faults.Fail(new StorageFault { For = TimeSpan.FromSeconds(10) });

        Assert.Same(fault, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Read));
        _clock.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Same(fault, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Clear));
        _clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        Assert.Equal(2, fault.Hits);
    }

    [Fact]
    public void A_fault_with_a_count_and_a_window_ends_at_whichever_comes_first()
    {
        _faults.Fail(new StorageFault { Times = 5, For = TimeSpan.FromSeconds(1) });
        Assert.NotNull(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));

        var counted = _faults.Fail(new StorageFault { Times = 1, For = TimeSpan.FromHours(1) });
        Assert.Same(counted, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
    }

    [Fact]
    public void A_fault_without_limits_lasts_until_its_handle_is_disposed_and_clear_ends_every_fault()
    {
        var fault = _faults.Fail(new StorageFault());
        _clock.Advance(TimeSpan.FromDays(1));
        for (var i = 0; i < 100; i++)
        {
            Assert.Same(fault, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        }

        fault.Dispose();
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));

        _faults.Fail(new StorageFault { Operations = StorageOperations.Read });
        _faults.Fail(new StorageFault { Operations = StorageOperations.Write });
        Assert.Equal(2, _faults.Active.Count);
        _faults.Clear();
        Assert.Empty(_faults.Active);
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Read));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
    }

    [Fact]
    public void A_fault_filtered_by_storage_grain_type_and_key_prefix_leaves_other_grains_alone()
    {
        var fault = _faults.Fail(new StorageFault { StorageName = StorageNames.Ledgers, GrainType = "ledger-points", KeyPrefix = "user-" });

        Assert.Null(_faults.Meet(StorageNames.Ledgers, OtherLedger, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Ledgers, GrainId.Create("ledger-coupon", "user-1"), StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Orders, Ledger, StorageOperations.Write));
        Assert.Null(_faults.Meet(StorageNames.Orders, Order, StorageOperations.Write));
        Assert.Same(fault, _faults.Meet(StorageNames.Ledgers, Ledger, StorageOperations.Write));
        Assert.Equal(1, fault.Hits);
    }

    [Fact]
    public void Faults_that_could_never_end_well_are_refused()
    {
        Assert.Throws<ArgumentException>(() => _faults.Fail(new StorageFault { Operations = StorageOperations.None }));
        Assert.Throws<ArgumentOutOfRangeException>(() => _faults.Fail(new StorageFault { Times = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => _faults.Fail(new StorageFault { For = TimeSpan.Zero }));
        Assert.Empty(_faults.Active);
    }

    [Fact]
    public async Task A_failing_call_throws_before_the_inner_storage_sees_it()
    {
        var inner = new RecordingStorage();
        var storage = new FaultInjectingGrainStorage(StorageNames.Ledgers, inner, _faults, ownsInner: true);
        _faults.Fail(new StorageFault { Operations = StorageOperations.Write, Times = 1 });

        var state = new GrainState<Box> { State = new Box { Value = 5 } };
        var error = await Assert.ThrowsAsync<StorageFaultException>(() => storage.WriteStateAsync("points", Ledger, state));

        Assert.Contains("Injected", error.Message);
        Assert.Equal((StorageNames.Ledgers, Ledger, StorageOperations.Write, StorageFaultMode.BeforeCall),
            (error.StorageName, error.GrainId, error.Operation, error.Mode));
        Assert.Equal(0, inner.Writes);
        Assert.Null(state.ETag);

        await storage.WriteStateAsync("points", Ledger, state);
        Assert.Equal(1, inner.Writes);
        Assert.NotNull(state.ETag);
    }

    [Fact]
    public async Task A_call_that_lands_then_fails_stores_the_write_and_leaves_the_callers_etag_as_it_was()
    {
        var inner = new RecordingStorage();
        var storage = new FaultInjectingGrainStorage(StorageNames.Ledgers, inner, _faults, ownsInner: true);
        _faults.Fail(new StorageFault { Operations = StorageOperations.Write, Times = 1, Mode = StorageFaultMode.AfterCall });

        var state = new GrainState<Box> { State = new Box { Value = 7 } };
        var error = await Assert.ThrowsAsync<StorageFaultException>(() => storage.WriteStateAsync("points", Ledger, state));

        Assert.Equal(StorageFaultMode.AfterCall, error.Mode);
        Assert.Equal(1, inner.Writes);
        Assert.Equal((null, false), (state.ETag, state.RecordExists));
        var reread = new GrainState<Box> { State = new Box() };
        await storage.ReadStateAsync("points", Ledger, reread);
        Assert.Equal((7, true), (reread.State.Value, reread.RecordExists));
    }

    [Fact]
    public void Fault_injection_wraps_every_grain_storage_registered_before_it_once_and_keeps_their_lifecycle()
    {
        var silo = new FakeSiloBuilder();
        silo.Services.AddLogging();
        silo.Services.AddGrainStorage(StorageNames.Orders, (_, _) => new RecordingStorage());
        silo.Services.AddGrainStorage(StorageNames.Ledgers, (_, _) => new RecordingStorage());
        silo.AddStorageFaultInjection().AddStorageFaultInjection();
        silo.Services.AddGrainStorage("late", (_, _) => new RecordingStorage());

        using var services = silo.Services.BuildServiceProvider();
        foreach (var name in new[] { StorageNames.Orders, StorageNames.Ledgers })
        {
            var storage = Assert.IsType<FaultInjectingGrainStorage>(services.GetRequiredKeyedService<IGrainStorage>(name));
            Assert.IsType<RecordingStorage>(storage.Inner);
        }

        Assert.IsType<RecordingStorage>(services.GetRequiredKeyedService<IGrainStorage>("late"));

        // Orleans resolves a storage that takes part in the silo lifecycle through its key and casts it: the wrapper
        // must pass that on to the storage it wraps.
        var participants = services.GetServices<ILifecycleParticipant<ISiloLifecycle>>().ToArray();
        Assert.Equal(3, participants.Length);
        foreach (var participant in participants)
        {
            participant.Participate(null!);
        }

        Assert.All(new[] { StorageNames.Orders, StorageNames.Ledgers, "late" }, name =>
        {
            var storage = services.GetRequiredKeyedService<IGrainStorage>(name);
            Assert.Equal(1, ((RecordingStorage)((storage as FaultInjectingGrainStorage)?.Inner ?? storage)).Participations);
        });
        Assert.Same(services.GetRequiredService<StorageFaults>(), services.GetRequiredService<StorageFaults>());
    }

    public sealed class Box
    {
        public int Value { get; set; }
    }

    /// <summary>A storage that keeps one record per grain in memory and counts what it was asked.</summary>
    private sealed class RecordingStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
    {
        private readonly Dictionary<GrainId, (object State, string ETag)> _records = [];

        public int Writes { get; private set; }

        public int Participations { get; private set; }

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (_records.TryGetValue(grainId, out var record))
            {
                (grainState.State, grainState.ETag, grainState.RecordExists) = ((T)record.State, record.ETag, true);
            }

            return Task.CompletedTask;
        }

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            Writes++;
            var etag = Guid.NewGuid().ToString("N");
            _records[grainId] = (grainState.State!, etag);
            (grainState.ETag, grainState.RecordExists) = (etag, true);
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            _records.Remove(grainId);
            (grainState.ETag, grainState.RecordExists) = (null, false);
            return Task.CompletedTask;
        }

        public void Participate(ISiloLifecycle lifecycle) => Participations++;
    }

    private sealed class FakeSiloBuilder : ISiloBuilder
    {
        public IServiceCollection Services { get; } = new ServiceCollection();

        public IConfiguration Configuration { get; } = new ConfigurationBuilder().Build();
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
