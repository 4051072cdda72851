using System.Collections.Concurrent;
using System.Globalization;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Grain storage in this silo's memory, for the embedded profile's single silo. Same contract as Orleans'
/// <c>MemoryGrainStorage</c> — state serialized on write and deserialized on read (no shared references), an ETag per
/// record checked on every write and clear (<see cref="InconsistentStateException"/> on a mismatch), gone with the
/// process — without its cost: Orleans' memory storage keeps every record in one of ten <c>MemoryStorageGrain</c>s, so
/// each read and write is a grain call (a message, a deep copy of the bytes, and a turn of one of ten grains that
/// every grain of the silo queues behind). Measured under the brokers' workload, that path held 35 % of the silo's
/// allocated bytes (docs/BENCHMARKS.md, "The brokers' workload"). Its one loss: records are not shared between silos,
/// so it is for a one-silo cluster only (<c>./run.sh</c> and <c>./bench.sh</c> embedded); several silos in one cluster
/// (the TestClusters) keep Orleans' storage grains.
/// </summary>
/// <remarks>
/// Records are Orleans' binary serialization of the state, made with <see cref="Serializer.SerializeToArray{T}"/>: a
/// pooled buffer and one array of the record's exact size, where <c>OrleansGrainStorageSerializer</c> grows a fresh
/// buffer by doubling for every write (7 % of the silo's allocated bytes under the brokers' workload).
/// </remarks>
public sealed class SiloLocalGrainStorage(Serializer serializer, IActivatorProvider activators) : IGrainStorage
{
    // One table per state name and grain type, keyed by the grain's key alone: a node of 64 bytes instead of 88 with the
    // state name and grain type in every key (about ten records per order: docs/BENCHMARKS.md, memory per order).
    private readonly ConcurrentDictionary<(string StateName, GrainType Type), ConcurrentDictionary<IdSpan, Record>> _tables = new();
    private long _version;

    /// <summary>Records held (each a pair of bytes and version, the version's digits being the ETag).</summary>
    public int Count => _tables.Values.Sum(table => table.Count);

    // Many lock stripes: every grain of the silo writes here, and the default (one per core) made writers queue (perf, brokers workload).
    private ConcurrentDictionary<IdSpan, Record> TableFor(string stateName, GrainId grainId) =>
        _tables.GetOrAdd((stateName, grainId.Type), static _ => new ConcurrentDictionary<IdSpan, Record>(concurrencyLevel: 64, capacity: 1024));

    // Reads and clears make no table: a state name and grain type never written has none.
    private ConcurrentDictionary<IdSpan, Record>? ExistingTable(string stateName, GrainId grainId) =>
        _tables.GetValueOrDefault((stateName, grainId.Type));

    /// <summary>
    /// What is stored, by state name and grain type: records, and the bytes of their states and of their grain keys (the
    /// bench's breakdown of memory per order). One pass over each table, without blocking writers: under writes the
    /// figures are approximate.
    /// </summary>
    public IReadOnlyList<(string StateName, string GrainType, int Records, long StateBytes, long KeyBytes)> Summarize()
    {
        var summary = new List<(string, string, int, long, long)>();
        foreach (var ((stateName, type), records) in _tables)
        {
            var (count, stateBytes, keyBytes) = (0, 0L, 0L);
            foreach (var (key, record) in records)
            {
                (count, stateBytes, keyBytes) = (count + 1, stateBytes + record.Data.Length, keyBytes + key.AsSpan().Length);
            }

            if (count > 0)
            {
                summary.Add((stateName, type.ToString()!, count, stateBytes, keyBytes));
            }
        }

        return summary;
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (ExistingTable(stateName, grainId) is { } records && records.TryGetValue(grainId.Key, out var record))
        {
            grainState.State = serializer.Deserialize<T>(record.Data);
            grainState.ETag = record.ETag;
            grainState.RecordExists = true;
        }
        else
        {
            grainState.State = activators.GetActivator<T>().Create();
            grainState.ETag = null;
            grainState.RecordExists = false;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var (records, key) = (TableFor(stateName, grainId), grainId.Key);
        var written = new Record(serializer.SerializeToArray(grainState.State), Interlocked.Increment(ref _version));
        // Compare-and-swap on the record the caller last read: a concurrent or stale writer is refused, never lost.
        while (true)
        {
            if (records.TryGetValue(key, out var current))
            {
                EnsureSame(stateName, grainId, current, grainState.ETag);
                if (records.TryUpdate(key, written, current))
                {
                    break;
                }
            }
            else
            {
                EnsureSame(stateName, grainId, null, grainState.ETag);
                if (records.TryAdd(key, written))
                {
                    break;
                }
            }
        }

        grainState.ETag = written.ETag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var (records, key) = (ExistingTable(stateName, grainId), grainId.Key);
        while (records is not null && records.TryGetValue(key, out var current))
        {
            EnsureSame(stateName, grainId, current, grainState.ETag);
            if (records.TryRemove(KeyValuePair.Create(key, current)))
            {
                break;
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = activators.GetActivator<T>().Create();
        return Task.CompletedTask;
    }

    private static void EnsureSame(string stateName, GrainId grainId, Record? stored, string? expected)
    {
        var same = stored is { } record
            ? long.TryParse(expected, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version == record.Version && expected![0] != '0' // its own spelling only, not "007"
            : expected is null;
        if (!same)
        {
            var storedETag = stored?.ETag;
            throw new InconsistentStateException(
                $"{stateName} of {grainId}: the stored record's ETag is {storedETag ?? "none (no record)"}, the writer expected {expected ?? "none (a new record)"}",
                storedETag ?? "", expected ?? "");
        }
    }

    /// <summary>
    /// One stored record: a struct in the dictionary's node, and the ETag kept as a number and spelled only when asked.
    /// A record object and an ETag string each were ~70 bytes of every stored record's ~200 of overhead (a deactivated
    /// order keeps about nine records here: docs/BENCHMARKS.md, memory per deactivated order).
    /// </summary>
    private readonly record struct Record(byte[] Data, long Version)
    {
        public string ETag => Version.ToString(CultureInfo.InvariantCulture);
    }
}
