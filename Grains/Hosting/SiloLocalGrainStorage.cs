using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Globalization;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Session;
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
/// Records are Orleans' binary serialization of the state, written into Orleans' pooled buffer (where
/// <c>OrleansGrainStorageSerializer</c> grows a fresh buffer by doubling for every write: 7 % of the silo's allocated
/// bytes under the brokers' workload) and copied once into native memory.
/// </para>
/// <para>
/// Native, not managed: a record lives for the whole run while the record it replaces dies at once, the worst case for
/// a generational collector (every write made a byte array and a dictionary node that survived the young collections
/// and then died old). Here a write allocates nothing on the managed heap and stores no reference: the dictionary's value
/// is a block's address, a number. The blocks' bytes are counted (<see cref="NativeBytes"/>), so that memory per order
/// still includes them.
/// </para>
/// <para>
/// One block per grain key — a row — holds every record stored under that key, whatever its store, state name and grain
/// type (one instance serves every store name, <see cref="ForStore"/>): an order's own record, its six subscriber
/// inboxes and its replica all have the order id as key, so they share one dictionary entry, one copy of the key and
/// one allocation (about 120 bytes per record otherwise; docs/BENCHMARKS.md, memory per deactivated order). A write
/// copies the row's other records into the new block, so a row holds only records of up to
/// <see cref="SharedRecordMaxBytes"/> bytes and at most <see cref="RowMaxBytes"/> in all; a larger record (a shard's
/// page) has a block of its own.
/// Rows are spread over stripes, each a plain dictionary under its own lock; a reader deserializes under the stripe's
/// lock, so a concurrent writer never frees a block while it is read.
/// </para>
/// </remarks>
public sealed class SiloLocalGrainStorage(Serializer serializer, SerializerSessionPool sessions, IActivatorProvider activators) : IGrainStorage, IDisposable
{
    // A row: its record count (2 bytes), then per record its table (2), version (8), state length (4) and state.
    private const int RowHeaderBytes = 2;
    private const int RecordHeaderBytes = 14;
    private const int Stripes = 64;

    // A record larger than SharedRecordMaxBytes, or one that would take its row past RowMaxBytes, has a block of its own
    // instead of a place in its key's row: a write copies the row's other records, so a row holds only small ones (an
    // order's record and inboxes) and a write never copies more than RowMaxBytes. Shard grains share integer keys and
    // hold pages of hundreds of entries: those live alone.
    private const int SharedRecordMaxBytes = 1024;
    private const int RowMaxBytes = 4096;

    // A table is a store, state name and grain type, numbered in the order first written (a few dozen: fixed by the code).
    private readonly ConcurrentDictionary<(string Store, string StateName, GrainType Type), ushort> _tableIds = new();
    private readonly List<(string Store, string StateName, GrainType Type)> _tables = [];
    private readonly Stripe[] _stripes = Enumerable.Range(0, Stripes).Select(_ => new Stripe()).ToArray();
    private long _version;
    private long _nativeBytes;
    private bool _disposed;

    /// <summary>Records held, in rows and in blocks of their own.</summary>
    public int Count => _stripes.Sum(stripe => stripe.Locked(s => s.Rows.Values.Sum(Row.Count) + s.Singles.Count));

    /// <summary>
    /// Bytes of native memory the blocks (rows, and records in blocks of their own) take: their headers and states, plus
    /// what the allocator adds to each block
    /// (<see cref="Footprint"/>).
    /// </summary>
    public long NativeBytes => Interlocked.Read(ref _nativeBytes);

    /// <summary>
    /// What a row holding records of these state lengths takes from the allocator: glibc's malloc (Linux, where this is
    /// measured) adds an 8-byte header, rounds up to 16 and takes at least 32; other allocators differ a little.
    /// </summary>
    public static long Footprint(IEnumerable<int> stateLengths) => Allocated(RowHeaderBytes + stateLengths.Sum(length => RecordHeaderBytes + length));

    private static long Allocated(int blockBytes) => Math.Max(32, (blockBytes + 8 + 15) & ~15L);

    private Stripe StripeOf(GrainId grainId)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        return _stripes[(int)((uint)grainId.Key.GetHashCode() % Stripes)];
    }

    private ushort? ExistingTable(string store, string stateName, GrainId grainId) =>
        _tableIds.TryGetValue((store, stateName, grainId.Type), out var table) ? table : null;

    private ushort TableFor(string store, string stateName, GrainId grainId)
    {
        if (ExistingTable(store, stateName, grainId) is { } existing)
        {
            return existing;
        }

        lock (_tables)
        {
            return _tableIds.GetOrAdd((store, stateName, grainId.Type), name =>
            {
                if (_tables.Count > ushort.MaxValue)
                {
                    throw new InvalidOperationException($"more than {ushort.MaxValue + 1} stores, state names and grain types stored");
                }

                _tables.Add(name);
                return (ushort)(_tables.Count - 1);
            });
        }
    }

    /// <summary>
    /// The grain storage of one store name (<c>StorageNames</c>), on these rows: an order's records in the orders,
    /// ledgers and subscribers stores share its row.
    /// </summary>
    public IGrainStorage ForStore(string store) => new StoreView(this, store);

    /// <summary>
    /// What is stored, by store, state name and grain type: records, and the bytes of their states and of their grain keys (the
    /// bench's breakdown of memory per order; a key that several records share is stored once and split among them).
    /// Each stripe is read under its lock, one after another: under writes the figures are approximate.
    /// </summary>
    public IReadOnlyList<(string Store, string StateName, string GrainType, int Records, long StateBytes, long KeyBytes)> Summarize()
    {
        var byTable = new Dictionary<ushort, (int Count, long StateBytes, double KeyBytes)>();
        foreach (var stripe in _stripes)
        {
            stripe.Locked(s =>
            {
                foreach (var ((key, table), single) in s.Singles)
                {
                    var (count, stateBytes, keyBytes) = byTable.GetValueOrDefault(table);
                    Row.TryFind(single, table, out _, out var state);
                    byTable[table] = (count + 1, stateBytes + state.Length, keyBytes + key.AsSpan().Length);
                }

                foreach (var (key, row) in s.Rows)
                {
                    var shareOfKey = (double)key.AsSpan().Length / Row.Count(row);
                    foreach (var record in Row.Records(row))
                    {
                        var (count, stateBytes, keyBytes) = byTable.GetValueOrDefault(record.Table);
                        byTable[record.Table] = (count + 1, stateBytes + record.State.Length, keyBytes + shareOfKey);
                    }
                }

                return 0;
            });
        }

        (string Store, string StateName, GrainType Type)[] names;
        lock (_tables)
        {
            names = [.. _tables];
        }

        return byTable.OrderBy(t => t.Key)
            .Select(t => (names[t.Key].Store, names[t.Key].StateName, names[t.Key].Type.ToString()!, t.Value.Count, t.Value.StateBytes, (long)Math.Round(t.Value.KeyBytes, MidpointRounding.AwayFromZero)))
            .ToList();
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Read("", stateName, grainId, grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Write("", stateName, grainId, grainState);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Clear("", stateName, grainId, grainState);

    private Task Read<T>(string store, string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var (found, state, version) = (false, default(T), 0L);
        var stripe = StripeOf(grainId);
        if (ExistingTable(store, stateName, grainId) is { } table)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (Locate(stripe, grainId.Key, table).Holder is not 0 and var holder && Row.TryFind(holder, table, out version, out var stored))
                {
                    (found, state) = (true, serializer.Deserialize<T>(stored));
                }
            }
        }

        grainState.State = found ? state! : activators.GetActivator<T>().Create();
        grainState.ETag = found ? ETagOf(version) : null;
        grainState.RecordExists = found;
        return Task.CompletedTask;
    }

    private Task Write<T>(string store, string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var (stripe, table) = (StripeOf(grainId), TableFor(store, stateName, grainId));
        var version = Interlocked.Increment(ref _version);
        using var session = sessions.GetSession();
        var writer = Writer.CreatePooled(session);
        try
        {
            serializer.Serialize(grainState.State, ref writer);
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                // Checked against the record the caller last read: a concurrent or stale writer is refused, never lost.
                var key = grainId.Key;
                var (row, holder) = Locate(stripe, key, table);
                var (inRow, single) = (holder != 0 && holder == row, holder != 0 && holder != row);
                EnsureSame(stateName, grainId, holder == 0 ? null : Row.VersionOf(holder, table), grainState.ETag);
                var rowBytes = row == 0 ? RowHeaderBytes : Row.SizeWithout(row, table);
                if (writer.Output.Length > SharedRecordMaxBytes || rowBytes + RecordHeaderBytes + writer.Output.Length > RowMaxBytes)
                {
                    // Both new blocks before any change: a failed allocation leaves the record where it was, and only there.
                    var rowWithout = inRow ? RowWithout(row, table) : 0;
                    nint block;
                    try
                    {
                        block = Rebuild(0, table, (version, writer.Output));
                    }
                    catch
                    {
                        if (rowWithout != 0)
                        {
                            Free(rowWithout);
                        }

                        throw;
                    }

                    stripe.Singles[(key, table)] = block;
                    if (inRow)
                    {
                        SetRow(stripe, key, rowWithout);
                    }

                    if (holder != 0)
                    {
                        Free(holder);
                    }
                }
                else
                {
                    stripe.Rows[key] = Rebuild(row, table, (version, writer.Output));
                    if (row != 0)
                    {
                        Free(row);
                    }

                    if (single)
                    {
                        stripe.Singles.Remove((key, table));
                        Free(holder);
                    }
                }
            }
        }
        finally
        {
            writer.Dispose();
        }

        grainState.ETag = ETagOf(version);
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    private Task Clear<T>(string store, string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var stripe = StripeOf(grainId);
        if (ExistingTable(store, stateName, grainId) is { } table)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (Locate(stripe, grainId.Key, table) is (var row, not 0 and var holder))
                {
                    EnsureSame(stateName, grainId, Row.VersionOf(holder, table), grainState.ETag);
                    if (holder == row)
                    {
                        SetRow(stripe, grainId.Key, RowWithout(row, table));
                    }
                    else
                    {
                        stripe.Singles.Remove((grainId.Key, table));
                    }

                    Free(holder);
                }
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = activators.GetActivator<T>().Create();
        return Task.CompletedTask;
    }

    /// <summary>Frees every block; the storage refuses every call after it.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, true); // before the stripes' locks: a writer after this point refuses instead of leaking
        foreach (var stripe in _stripes)
        {
            lock (stripe)
            {
                foreach (var block in stripe.Rows.Values.Concat(stripe.Singles.Values))
                {
                    Free(block);
                }

                stripe.Rows.Clear();
                stripe.Singles.Clear();
            }
        }
    }

    // Under the stripe's lock: the key's row (0: none), and the block that holds the table's record under the key — the
    // row, or a block of its own — (0: none).
    private static (nint Row, nint Holder) Locate(Stripe stripe, IdSpan key, ushort table)
    {
        stripe.Rows.TryGetValue(key, out var row);
        return row != 0 && Row.VersionOf(row, table) is not null ? (row, row) : (row, stripe.Singles.GetValueOrDefault((key, table)));
    }

    // The row without the table's record: a new block, or 0 when that record was the row's only one.
    private nint RowWithout(nint row, ushort table) => Row.Count(row) > 1 ? Rebuild(row, table, replacement: null) : 0;

    // Under the stripe's lock: the key's row is now this block (0: the key has no row any more).
    private static void SetRow(Stripe stripe, IdSpan key, nint row)
    {
        if (row == 0)
        {
            stripe.Rows.Remove(key);
        }
        else
        {
            stripe.Rows[key] = row;
        }
    }

    /// <summary>A new row: <paramref name="row"/>'s records (none if 0) without <paramref name="table"/>'s, and the replacement if any.</summary>
    private unsafe nint Rebuild(nint row, ushort table, (long Version, PooledBuffer State)? replacement)
    {
        var (kept, size) = (replacement is null ? 0 : 1, RowHeaderBytes + (replacement is { } r ? RecordHeaderBytes + r.State.Length : 0));
        foreach (var record in Row.Records(row))
        {
            if (record.Table != table)
            {
                (kept, size) = (kept + 1, size + RecordHeaderBytes + record.State.Length);
            }
        }

        var block = (nint)NativeMemory.Alloc((nuint)size);
        var bytes = new Span<byte>((void*)block, size);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)kept);
        var at = bytes[RowHeaderBytes..];
        foreach (var record in Row.Records(row))
        {
            if (record.Table != table)
            {
                WriteHeader(at, record.Table, record.Version, record.State.Length);
                record.State.CopyTo(at[RecordHeaderBytes..]);
                at = at[(RecordHeaderBytes + record.State.Length)..];
            }
        }

        if (replacement is { } written)
        {
            WriteHeader(at, table, written.Version, written.State.Length);
            written.State.CopyTo(at[RecordHeaderBytes..]); // the serializer's pooled segments, copied once
        }

        Interlocked.Add(ref _nativeBytes, Allocated(size));
        return block;
    }

    private static void WriteHeader(Span<byte> at, ushort table, long version, int stateLength)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(at, table);
        BinaryPrimitives.WriteInt64LittleEndian(at[2..], version);
        BinaryPrimitives.WriteInt32LittleEndian(at[10..], stateLength);
    }

    private unsafe void Free(nint row)
    {
        Interlocked.Add(ref _nativeBytes, -Allocated(Row.Size(row)));
        NativeMemory.Free((void*)row);
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

    private sealed class StoreView(SiloLocalGrainStorage rows, string store) : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => rows.Read(store, stateName, grainId, grainState);

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => rows.Write(store, stateName, grainId, grainState);

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => rows.Clear(store, stateName, grainId, grainState);
    }

    /// <summary>A part of the rows: their block addresses by grain key, read and changed under its lock.</summary>
    private sealed class Stripe
    {
        public Dictionary<IdSpan, nint> Rows { get; } = [];

        /// <summary>
        /// Records over <see cref="SharedRecordMaxBytes"/>, or that would take their row past <see cref="RowMaxBytes"/>,
        /// each in a block of its own (laid out as a row of one record).
        /// </summary>
        public Dictionary<(IdSpan Key, ushort Table), nint> Singles { get; } = [];

        public TResult Locked<TResult>(Func<Stripe, TResult> read)
        {
            lock (this)
            {
                return read(this);
            }
        }
    }

    /// <summary>Reads a row; the caller holds the lock of the row's stripe.</summary>
    private static unsafe class Row
    {
        public static int Count(nint row) => BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>((void*)row, 2));

        public static int Size(nint row) => SizeWithout(row, table: null);

        // The row's size without the table's record, if it holds one.
        public static int SizeWithout(nint row, ushort? table)
        {
            var size = RowHeaderBytes;
            foreach (var record in Records(row))
            {
                size += record.Table == table ? 0 : RecordHeaderBytes + record.State.Length;
            }

            return size;
        }

        public static bool TryFind(nint row, ushort table, out long version, out ReadOnlySpan<byte> state)
        {
            foreach (var record in Records(row))
            {
                if (record.Table == table)
                {
                    version = record.Version;
                    state = record.State;
                    return true;
                }
            }

            version = 0;
            state = default;
            return false;
        }

        public static long? VersionOf(nint row, ushort table) => TryFind(row, table, out var version, out _) ? version : null;

        public static RecordEnumerator Records(nint row) => new(row);
    }

    /// <summary>The records of a row (none for address 0), in place: table, version and a span over the state.</summary>
    private unsafe ref struct RecordEnumerator(nint row)
    {
        private int _left = row == 0 ? 0 : Row.Count(row);
        private byte* _next = (byte*)row + RowHeaderBytes;

        public RecordView Current { get; private set; }

        public readonly RecordEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_left == 0)
            {
                return false;
            }

            var header = new ReadOnlySpan<byte>(_next, RecordHeaderBytes);
            var length = BinaryPrimitives.ReadInt32LittleEndian(header[10..]);
            Current = new RecordView(BinaryPrimitives.ReadUInt16LittleEndian(header), BinaryPrimitives.ReadInt64LittleEndian(header[2..]),
                new ReadOnlySpan<byte>(_next + RecordHeaderBytes, length));
            _next += RecordHeaderBytes + length;
            _left--;
            return true;
        }
    }

    private readonly ref struct RecordView(ushort table, long version, ReadOnlySpan<byte> state)
    {
        public ushort Table { get; } = table;
        public long Version { get; } = version;
        public ReadOnlySpan<byte> State { get; } = state;
    }
}
