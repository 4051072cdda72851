using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
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
/// <para>
/// Records are Orleans' binary serialization of the state, written through a per-thread buffer (where
/// <c>OrleansGrainStorageSerializer</c> grows a fresh buffer by doubling for every write: 7 % of the silo's allocated
/// bytes under the brokers' workload) into one block of native memory of the record's exact size, headed by its
/// version and length.
/// </para>
/// <para>
/// Native, not managed: a record lives for the whole run while the record it replaces dies at once, which is the worst
/// case for a generational collector — every write made a byte array and a dictionary node that survived the young
/// collections, were promoted and copied, and then died old, and every young collection scanned the old nodes that
/// pointed at young records (docs/BENCHMARKS.md, "where the command tail waits"). Here a write allocates nothing on the
/// managed heap and stores no reference: the dictionary's value is the block's address, a number. The blocks' bytes are
/// counted (<see cref="NativeBytes"/>) so that memory per order still includes them. Each table is split into stripes,
/// each a plain dictionary under its own lock; a reader deserializes under the stripe's lock, so a concurrent writer
/// never frees a block while it is read.
/// </para>
/// </remarks>
public sealed class SiloLocalGrainStorage(Serializer serializer, IActivatorProvider activators) : IGrainStorage, IDisposable
{
    // A block: the version (8 bytes), the state's length (4), then the state's bytes.
    private const int HeaderBytes = 12;
    private const int Stripes = 64;

    // One table per state name and grain type, keyed by the grain's key alone (about ten records per order:
    // docs/BENCHMARKS.md, memory per order).
    private readonly ConcurrentDictionary<(string StateName, GrainType Type), Stripe[]> _tables = new();
    private long _version;
    private long _nativeBytes;
    private bool _disposed;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;

    /// <summary>Records held (each a block of version, length and state).</summary>
    public int Count => _tables.Values.Sum(stripes => stripes.Sum(stripe => stripe.Count));

    /// <summary>Bytes of native memory the records' blocks hold (headers included, the allocator's own overhead not).</summary>
    public long NativeBytes => Interlocked.Read(ref _nativeBytes);

    private Stripe[] TableFor(string stateName, GrainId grainId) =>
        _tables.GetOrAdd((stateName, grainId.Type), static _ => Enumerable.Range(0, Stripes).Select(_ => new Stripe()).ToArray());

    // Reads and clears make no table: a state name and grain type never written has none.
    private Stripe? ExistingStripe(string stateName, GrainId grainId) =>
        _tables.GetValueOrDefault((stateName, grainId.Type)) is { } stripes ? StripeOf(stripes, grainId.Key) : null;

    private static Stripe StripeOf(Stripe[] stripes, IdSpan key) => stripes[(int)((uint)key.GetHashCode() % Stripes)];

    /// <summary>
    /// What is stored, by state name and grain type: records, and the bytes of their states and of their grain keys (the
    /// bench's breakdown of memory per order). Each stripe is read under its lock, one after another: under writes the
    /// figures are approximate.
    /// </summary>
    public IReadOnlyList<(string StateName, string GrainType, int Records, long StateBytes, long KeyBytes)> Summarize()
    {
        var summary = new List<(string, string, int, long, long)>();
        foreach (var ((stateName, type), stripes) in _tables)
        {
            var (count, stateBytes, keyBytes) = (0, 0L, 0L);
            foreach (var stripe in stripes)
            {
                lock (stripe)
                {
                    foreach (var (key, block) in stripe.Records)
                    {
                        (count, stateBytes, keyBytes) = (count + 1, stateBytes + Block.Length(block), keyBytes + key.AsSpan().Length);
                    }
                }
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
        var (found, state, version) = (false, default(T), 0L);
        if (ExistingStripe(stateName, grainId) is { } stripe)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (stripe.Records.TryGetValue(grainId.Key, out var block))
                {
                    (found, state, version) = (true, serializer.Deserialize<T>(Block.State(block)), Block.Version(block));
                }
            }
        }

        grainState.State = found ? state! : activators.GetActivator<T>().Create();
        grainState.ETag = found ? ETagOf(version) : null;
        grainState.RecordExists = found;
        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        serializer.Serialize(grainState.State, buffer);
        var stripe = StripeOf(TableFor(stateName, grainId), grainId.Key);
        var version = Interlocked.Increment(ref _version);
        lock (stripe)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Checked against the record the caller last read: a concurrent or stale writer is refused, never lost.
            var exists = stripe.Records.TryGetValue(grainId.Key, out var current);
            EnsureSame(stateName, grainId, exists ? Block.Version(current) : null, grainState.ETag);
            stripe.Records[grainId.Key] = NewBlock(version, buffer.WrittenSpan);
            if (exists)
            {
                Free(current);
            }
        }

        if (buffer.Capacity > 1 << 20)
        {
            t_buffer = null; // one huge state does not keep its buffer on the thread for good
        }

        grainState.ETag = ETagOf(version);
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (ExistingStripe(stateName, grainId) is { } stripe)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var exists = stripe.Records.TryGetValue(grainId.Key, out var current);
                EnsureSame(stateName, grainId, exists ? Block.Version(current) : null, exists ? grainState.ETag : null);
                if (exists)
                {
                    stripe.Records.Remove(grainId.Key);
                    Free(current);
                }
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = activators.GetActivator<T>().Create();
        return Task.CompletedTask;
    }

    /// <summary>Frees every record's block; the storage refuses every call after it.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, true); // before the stripes' locks: a writer after this point refuses instead of leaking
        foreach (var stripe in _tables.Values.SelectMany(stripes => stripes))
        {
            lock (stripe)
            {
                foreach (var block in stripe.Records.Values)
                {
                    Free(block);
                }

                stripe.Records.Clear();
            }
        }
    }

    private unsafe nint NewBlock(long version, ReadOnlySpan<byte> state)
    {
        var size = HeaderBytes + state.Length;
        var block = (nint)NativeMemory.Alloc((nuint)size);
        var bytes = new Span<byte>((void*)block, size);
        BinaryPrimitives.WriteInt64LittleEndian(bytes, version);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], state.Length);
        state.CopyTo(bytes[HeaderBytes..]);
        Interlocked.Add(ref _nativeBytes, size);
        return block;
    }

    private unsafe void Free(nint block)
    {
        Interlocked.Add(ref _nativeBytes, -(HeaderBytes + Block.Length(block)));
        NativeMemory.Free((void*)block);
    }

    private static string ETagOf(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static void EnsureSame(string stateName, GrainId grainId, long? stored, string? expected)
    {
        var same = stored is { } version
            ? long.TryParse(expected, NumberStyles.None, CultureInfo.InvariantCulture, out var read) && read == version && expected![0] != '0' // its own spelling only, not "007"
            : expected is null;
        if (!same)
        {
            var storedETag = stored is { } v ? ETagOf(v) : null;
            throw new InconsistentStateException(
                $"{stateName} of {grainId}: the stored record's ETag is {storedETag ?? "none (no record)"}, the writer expected {expected ?? "none (a new record)"}",
                storedETag ?? "", expected ?? "");
        }
    }

    /// <summary>A part of a table: its records' block addresses by grain key, read and changed under its lock.</summary>
    private sealed class Stripe
    {
        public Dictionary<IdSpan, nint> Records { get; } = [];

        public int Count
        {
            get
            {
                lock (this)
                {
                    return Records.Count;
                }
            }
        }
    }

    /// <summary>Reads a block's header and state; the caller holds the lock of the block's stripe.</summary>
    private static unsafe class Block
    {
        public static long Version(nint block) => BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>((void*)block, 8));

        public static int Length(nint block) => BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>((void*)(block + 8), 4));

        public static ReadOnlySpan<byte> State(nint block) => new((void*)(block + HeaderBytes), Length(block));
    }
}
