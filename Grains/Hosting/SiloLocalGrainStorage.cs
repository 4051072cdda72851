using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Globalization;
using System.IO.Hashing;
using OrderFlow.Contracts;
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
/// inboxes and its replica all have the order id as key, so they share one table slot, one copy of the key and
/// one allocation (about 120 bytes per record otherwise; docs/BENCHMARKS.md, memory per deactivated order); so do the
/// order's ledger entries, keyed <c>{ledger}~{order}</c>, each under a subkey (<see cref="RowKey"/>). A write
/// copies the row's other records into the new block, so a row holds only records of up to
/// <see cref="SharedRecordMaxBytes"/> bytes and at most <see cref="RowMaxBytes"/> in all; a larger record (a shard's
/// page) has a block of its own.
/// </para>
/// <para>
/// The key is in its row too, and the rows are found through native hash tables (open addressing, one per stripe,
/// <see cref="RowTable"/>): the silo's managed heap holds nothing per key. A managed dictionary entry and a byte array
/// for the key cost ~100 bytes per row, six rows per order (docs/BENCHMARKS.md, session 32). A row's and a record's
/// headers are varints: a record's table, version and length take 3–6 bytes, not 14.
/// Rows are spread over stripes, each under its own lock; a reader deserializes under the stripe's lock, so a concurrent
/// writer never frees a block while it is read.
/// </para>
/// <para>
/// Records never leave this process, so the types every order record names (its events, its lines) are given to each
/// session before it writes or reads a record (<see cref="PresetTypes"/>): the record names each by a number instead of
/// its alias (~25 bytes per event), which Orleans' serializer does anyway from a type's second occurrence on.
/// </para>
/// </remarks>
public sealed class SiloLocalGrainStorage(Serializer serializer, SerializerSessionPool sessions, IActivatorProvider activators,
    int sharedStateMaxBytes = SiloLocalGrainStorage.DefaultSharedStateMaxBytes) : IGrainStorage, IDisposable
{
    // A row: its key's length and bytes, its record count, then per record: its table (table << 1, | 1 when a subkey
    // follows: its length and bytes), version and a tag (each a varint), and the state: inline (tag = length << 1), or
    // the address of a shared state (tag = length << 1 | 1, 8 bytes). A record in a block of its own is laid out as a
    // row of one record.
    private const int Stripes = 64;

    /// <summary>
    /// States of up to this many bytes are shared between records once the same bytes have been written twice: a
    /// finished order's six inboxes hold the same few states as every other finished order's.
    /// </summary>
    public const int DefaultSharedStateMaxBytes = 64;

    private const int SeenSlots = 4096;

    // A record larger than SharedRecordMaxBytes, or one that would take its row past RowMaxBytes, has a block of its own
    // instead of a place in its key's row: a write copies the row's other records, so a row holds only small ones (an
    // order's record and inboxes) and a write never copies more than RowMaxBytes. Shard grains share integer keys and
    // hold pages of hundreds of entries: those live alone.
    private const int SharedRecordMaxBytes = 1024;
    private const int RowMaxBytes = 4096;

    /// <summary>
    /// The types an order's record names, given to every session of this store in this order before it writes or reads
    /// (numbers 1, 2, …): each record then names them by number. Any fixed list works, because the records are read only
    /// by this process.
    /// </summary>
    internal static readonly Type[] PresetTypes =
    [
        .. typeof(OrderEvent).Assembly.GetTypes()
            .Where(type => type.IsSubclassOf(typeof(OrderEvent)) && !type.IsAbstract)
            .OrderBy(type => type.FullName, StringComparer.Ordinal),
        typeof(OrderLine[]),
        typeof(List<OrderLine>),
    ];

    // A table is a store, state name and grain type, numbered in the order first written (a few dozen: fixed by the code).
    private readonly ConcurrentDictionary<(string Store, string StateName, GrainType Type), ushort> _tableIds = new();
    private readonly List<(string Store, string StateName, GrainType Type)> _tables = [];
    private readonly Stripe[] _stripes = Enumerable.Range(0, Stripes).Select(_ => new Stripe()).ToArray();
    private long _version;
    private long _nativeBytes;
    private bool _disposed;

    // Shared states (a block each: reference count, length, bytes) by the hash of their bytes, under their own lock; and
    // the hashes of small states written once, by slot: a state is shared from its second sighting on, so a state no
    // other record has (a ledger entry naming its order) stays inline.
    private readonly Lock _sharedLock = new();
    private readonly Dictionary<ulong, nint> _shared = [];
    private readonly ulong[] _seenOnce = new ulong[SeenSlots];
    private long _sharedBytes;

    /// <summary>Native blocks held: rows, and records in blocks of their own.</summary>
    public int Blocks => _stripes.Sum(stripe => stripe.Locked(s => s.Rows.Count + s.Singles.Count));

    /// <summary>Records held, in rows and in blocks of their own.</summary>
    public int Count => _stripes.Sum(stripe => stripe.Locked(s => s.Rows.ToList().Sum(Row.Count) + s.Singles.Count));

    /// <summary>
    /// Bytes of native memory the store takes: its blocks (rows, and records in blocks of their own: keys, headers and
    /// states, plus what the allocator adds to each, <see cref="Footprint"/>) and its hash tables (<see cref="IndexBytes"/>).
    /// </summary>
    public long NativeBytes => Interlocked.Read(ref _nativeBytes);

    /// <summary>Shared states held, and the native bytes of their blocks (part of <see cref="NativeBytes"/>).</summary>
    public (int Count, long Bytes) SharedStates
    {
        get
        {
            lock (_sharedLock)
            {
                return (_shared.Count, _sharedBytes);
            }
        }
    }

    /// <summary>Bytes of native memory the stripes' hash tables take (part of <see cref="NativeBytes"/>).</summary>
    public long IndexBytes => _stripes.Sum(stripe => stripe.Locked(s => Allocated(s.Rows.Bytes)));

    /// <summary>
    /// What a block holding records under a key of <paramref name="keyBytes"/> bytes takes from the allocator (a shared
    /// record holds its state's address; the state is counted once, in <see cref="SharedStates"/>): glibc's malloc
    /// (Linux, where this is measured) adds an 8-byte header, rounds up to 16 and takes at least 32; other allocators
    /// differ a little.
    /// </summary>
    public static long Footprint(int keyBytes, IEnumerable<(int Table, long Version, int StateBytes, bool Shared)> records) =>
        Allocated(HeaderBytes(keyBytes, records.Count()) + records.Sum(r => RecordBytes(r.Table, 0, r.Version, r.StateBytes, r.Shared)));

    private static long Allocated(long blockBytes) => blockBytes == 0 ? 0 : Math.Max(32, (blockBytes + 8 + 15) & ~15L);

    private static int HeaderBytes(int keyBytes, int count) => Varint.Size((ulong)keyBytes) + keyBytes + Varint.Size((ulong)count);

    private static int RecordBytes(int table, int subkeyBytes, long version, int stateBytes, bool shared) =>
        Varint.Size(((ulong)table << 1) | 1) + (subkeyBytes == 0 ? 0 : Varint.Size((ulong)subkeyBytes) + subkeyBytes)
        + Varint.Size((ulong)version) + Varint.Size(((ulong)stateBytes << 1) | 1) + (shared ? sizeof(long) : stateBytes);

    private readonly int _sharedStateMaxBytes = sharedStateMaxBytes is >= 0 and <= SharedRecordMaxBytes
        ? sharedStateMaxBytes
        : throw new ArgumentOutOfRangeException(nameof(sharedStateMaxBytes), sharedStateMaxBytes, $"0 (no sharing) to {SharedRecordMaxBytes}");

    // The top bits of the row key's hash pick the stripe; the table's slots use the low bits.
    private Stripe StripeOf(RowKey key)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        return _stripes[(int)(key.Hash >> 58)];
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
                foreach (var (key, table) in s.Singles.Keys)
                {
                    var (count, stateBytes, keyBytes) = byTable.GetValueOrDefault(table);
                    foreach (var record in Row.Records(s.Singles[(key, table)]))
                    {
                        byTable[table] = (count + 1, stateBytes + record.HeldBytes, keyBytes + key.AsSpan().Length);
                    }
                }

                foreach (var row in s.Rows.ToList())
                {
                    var shareOfKey = (double)Row.Key(row).Length / Row.Count(row);
                    foreach (var record in Row.Records(row))
                    {
                        var (count, stateBytes, keyBytes) = byTable.GetValueOrDefault(record.Table);
                        byTable[record.Table] = (count + 1, stateBytes + record.HeldBytes, keyBytes + shareOfKey + record.Subkey.Length);
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

        var groups = byTable.OrderBy(t => t.Key)
            .Select(t => (names[t.Key].Store, names[t.Key].StateName, names[t.Key].Type.ToString()!, t.Value.Count, t.Value.StateBytes, (long)Math.Round(t.Value.KeyBytes, MidpointRounding.AwayFromZero)))
            .ToList();
        if (SharedStates is { Count: > 0 } shared)
        {
            // A shared record's state counts as its address above; the states themselves, once each, here.
            groups.Add(("", SharedStatesName, "", shared.Count, shared.Bytes, 0));
        }

        return groups;
    }

    /// <summary>The state name under which <see cref="Summarize"/> reports the shared states (their blocks' bytes).</summary>
    public const string SharedStatesName = "(shared states)";

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Read("", stateName, grainId, grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Write("", stateName, grainId, grainState);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Clear("", stateName, grainId, grainState);

    private Task Read<T>(string store, string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var (found, state, version) = (false, default(T), 0L);
        var key = new RowKey(grainId);
        var stripe = StripeOf(key);
        if (ExistingTable(store, stateName, grainId) is { } table)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (Locate(stripe, grainId, key, table).Holder is not 0 and var holder && Row.TryFind(holder, table, key, out version, out var stored))
                {
                    using var session = sessions.GetSession();
                    foreach (var type in PresetTypes)
                    {
                        session.ReferencedTypes.RecordReferencedType(type);
                    }

                    (found, state) = (true, serializer.Deserialize<T>(stored, session));
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
        var key = new RowKey(grainId);
        var (stripe, table) = (StripeOf(key), TableFor(store, stateName, grainId));
        var version = Interlocked.Increment(ref _version);
        using var session = sessions.GetSession();
        foreach (var type in PresetTypes)
        {
            session.ReferencedTypes.GetOrAddTypeReference(type);
        }

        var writer = Writer.CreatePooled(session);
        var shared = (nint)0; // a reference to a shared state, held until a block owns it
        try
        {
            serializer.Serialize(grainState.State, ref writer);
            shared = Share(writer.Output);
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                // Checked against the record the caller last read: a concurrent or stale writer is refused, never lost.
                var (row, holder) = Locate(stripe, grainId, key, table);
                var (inRow, single) = (holder != 0 && holder == row, holder != 0 && holder != row);
                EnsureSame(stateName, grainId, holder == 0 ? null : Row.VersionOf(holder, table, key), grainState.ETag);
                var recordBytes = RecordBytes(table, key.SubkeyLength, version, writer.Output.Length, shared != 0);
                var others = row == 0 ? (Count: 0, Bytes: 0) : Row.Without(row, table, key);
                if (writer.Output.Length > SharedRecordMaxBytes || HeaderBytes(key.Bytes.Length, others.Count + 1) + others.Bytes + recordBytes > RowMaxBytes)
                {
                    // Both new blocks before any change: a failed allocation leaves the record where it was, and only there.
                    var rowWithout = inRow ? RowWithout(key, row, table) : 0;
                    nint block;
                    try
                    {
                        block = Rebuild(key, 0, table, (version, writer.Output, shared));
                        shared = 0;
                    }
                    catch
                    {
                        if (rowWithout != 0)
                        {
                            Free(rowWithout);
                        }

                        throw;
                    }

                    if (inRow)
                    {
                        SetRow(stripe, key, rowWithout); // a replacement or a removal: allocates nothing that can fail
                    }

                    stripe.Singles[(grainId.Key, table)] = block;

                    if (holder != 0)
                    {
                        Free(holder);
                    }
                }
                else
                {
                    var rebuilt = Rebuild(key, row, table, (version, writer.Output, shared), others);
                    shared = 0; // the new block holds that reference now
                    try
                    {
                        SetRow(stripe, key, rebuilt); // a new key may grow the table
                    }
                    catch
                    {
                        Free(rebuilt);
                        throw;
                    }
                    if (row != 0)
                    {
                        Free(row);
                    }

                    if (single)
                    {
                        stripe.Singles.Remove((grainId.Key, table));
                        Free(holder);
                    }
                }
            }
        }
        finally
        {
            writer.Dispose();
            if (shared != 0)
            {
                Release(shared); // the write was refused: no block took it
            }
        }

        grainState.ETag = ETagOf(version);
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    private Task Clear<T>(string store, string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = new RowKey(grainId);
        var stripe = StripeOf(key);
        if (ExistingTable(store, stateName, grainId) is { } table)
        {
            lock (stripe)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (Locate(stripe, grainId, key, table) is (var row, not 0 and var holder))
                {
                    EnsureSame(stateName, grainId, Row.VersionOf(holder, table, key), grainState.ETag);
                    if (holder == row)
                    {
                        SetRow(stripe, key, RowWithout(key, row, table));
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

    /// <summary>Frees every block and table; the storage refuses every call after it.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposed, true); // before the stripes' locks: a writer after this point refuses instead of leaking
        foreach (var stripe in _stripes)
        {
            lock (stripe)
            {
                foreach (var block in stripe.Rows.ToList().Concat(stripe.Singles.Values))
                {
                    Free(block);
                }

                Interlocked.Add(ref _nativeBytes, -Allocated(stripe.Rows.Bytes));
                stripe.Rows.Dispose();
                stripe.Singles.Clear();
            }
        }
    }

    // Under the stripe's lock: the key's row (0: none), and the block that holds the table's record under the key — the
    // row, or a block of its own — (0: none).
    private static (nint Row, nint Holder) Locate(Stripe stripe, GrainId grainId, RowKey key, ushort table)
    {
        var row = stripe.Rows.Find(key);
        return row != 0 && Row.VersionOf(row, table, key) is not null
            ? (row, row)
            : (row, stripe.Singles.Count == 0 ? 0 : stripe.Singles.GetValueOrDefault((grainId.Key, table)));
    }

    // The row without the table's record: a new block, or 0 when that record was the row's only one.
    private nint RowWithout(RowKey key, nint row, ushort table) => Row.Count(row) > 1 ? Rebuild(key, row, table, replacement: null) : 0;

    // Under the stripe's lock: the key's row is now this block (0: the key has no row any more).
    private void SetRow(Stripe stripe, RowKey key, nint row)
    {
        var before = stripe.Rows.Bytes;
        if (row == 0)
        {
            stripe.Rows.Remove(key);
        }
        else
        {
            stripe.Rows.Set(key, row);
        }

        if (stripe.Rows.Bytes != before)
        {
            Interlocked.Add(ref _nativeBytes, Allocated(stripe.Rows.Bytes) - Allocated(before));
        }
    }

    /// <summary>A new block for the key: <paramref name="row"/>'s records (none if 0) without <paramref name="table"/>'s, and the replacement if any.</summary>
    /// <remarks>
    /// Every block owns one reference to each shared state it holds: the copies of <paramref name="row"/>'s records take
    /// one more each (the old block gives its own back when it is freed), and the replacement's shared state, if any,
    /// comes with the reference its caller took.
    /// </remarks>
    private unsafe nint Rebuild(RowKey key, nint row, ushort table, (long Version, PooledBuffer State, nint Shared)? replacement,
        (int Count, int Bytes)? others = null)
    {
        var (kept, bytes) = others ?? (row == 0 ? (0, 0) : Row.Without(row, table, key)); // the caller's count, if it made one
        var written = replacement is { } r ? RecordBytes(table, key.SubkeyLength, r.Version, r.State.Length, r.Shared != 0) : 0;
        var count = kept + (replacement is null ? 0 : 1);
        var size = HeaderBytes(key.Bytes.Length, count) + bytes + written;

        var block = (nint)NativeMemory.Alloc((nuint)size);
        var at = new Span<byte>((void*)block, size);
        at = at[Varint.Write(at, (ulong)key.Bytes.Length)..];
        key.Bytes.CopyTo(at);
        at = at[key.Bytes.Length..];
        at = at[Varint.Write(at, (ulong)count)..];
        var copiedShared = 0;
        foreach (var record in Row.Records(row))
        {
            if (!record.Is(table, key))
            {
                at = WriteRecord(at, record.Table, record.Subkey, default, record.Version, record.State.Length, record.Shared);
                if (record.Shared == 0)
                {
                    record.State.CopyTo(at);
                    at = at[record.State.Length..];
                }
                else
                {
                    at = at[sizeof(long)..];
                    copiedShared++;
                }
            }
        }

        if (replacement is { } replacing)
        {
            at = WriteRecord(at, table, key.Prefix, key.Suffix, replacing.Version, replacing.State.Length, replacing.Shared);
            if (replacing.Shared == 0)
            {
                replacing.State.CopyTo(at); // the serializer's pooled segments, copied once
            }
        }

        if (copiedShared > 0)
        {
            lock (_sharedLock)
            {
                foreach (var record in Row.Records(row))
                {
                    if (!record.Is(table, key) && record.Shared != 0)
                    {
                        SharedBlock.References(record.Shared)++;
                    }
                }
            }
        }

        Interlocked.Add(ref _nativeBytes, Allocated(size));
        return block;
    }

    // A record's header: its table (with a flag: a subkey follows), its subkey in two parts, version and length tag.
    private static unsafe Span<byte> WriteRecord(Span<byte> at, ushort table, ReadOnlySpan<byte> subkey, ReadOnlySpan<byte> subkeyEnd, long version, int stateLength, nint shared)
    {
        var subkeyLength = subkey.Length + subkeyEnd.Length;
        at = at[Varint.Write(at, ((ulong)table << 1) | (subkeyLength == 0 ? 0UL : 1UL))..];
        if (subkeyLength > 0)
        {
            at = at[Varint.Write(at, (ulong)subkeyLength)..];
            subkey.CopyTo(at);
            subkeyEnd.CopyTo(at[subkey.Length..]);
            at = at[subkeyLength..];
        }

        at = at[Varint.Write(at, (ulong)version)..];
        at = at[Varint.Write(at, ((ulong)stateLength << 1) | (shared == 0 ? 0UL : 1UL))..];
        if (shared != 0)
        {
            BinaryPrimitives.WriteInt64LittleEndian(at, shared);
        }

        return at;
    }

    private unsafe void Free(nint block)
    {
        var hasShared = false;
        foreach (var record in Row.Records(block))
        {
            hasShared |= record.Shared != 0;
        }

        if (hasShared)
        {
            lock (_sharedLock)
            {
                foreach (var record in Row.Records(block))
                {
                    if (record.Shared != 0)
                    {
                        ReleaseLocked(record.Shared);
                    }
                }
            }
        }

        Interlocked.Add(ref _nativeBytes, -Allocated(Row.Size(block)));
        NativeMemory.Free((void*)block);
    }

    /// <summary>
    /// A shared state holding these bytes, with a reference for the caller; or 0: keep them inline (too large, seen for
    /// the first time, or a 64-bit hash that another state's bytes already have).
    /// </summary>
    private unsafe nint Share(PooledBuffer state)
    {
        if (state.Length > _sharedStateMaxBytes)
        {
            return 0;
        }

        Span<byte> bytes = stackalloc byte[state.Length];
        state.CopyTo(bytes);
        var hash = XxHash3.HashToUInt64(bytes);
        lock (_sharedLock)
        {
            if (_shared.TryGetValue(hash, out var existing))
            {
                if (!SharedBlock.State(existing).SequenceEqual(bytes))
                {
                    return 0;
                }

                SharedBlock.References(existing)++;
                return existing;
            }

            ref var seen = ref _seenOnce[hash % SeenSlots];
            if (seen != hash)
            {
                seen = hash;
                return 0;
            }

            var block = (nint)NativeMemory.Alloc((nuint)(SharedBlock.HeaderBytes + bytes.Length));
            SharedBlock.References(block) = 1;
            SharedBlock.Length(block) = bytes.Length;
            bytes.CopyTo(new Span<byte>((byte*)block + SharedBlock.HeaderBytes, bytes.Length));
            _shared.Add(hash, block);
            var allocated = Allocated(SharedBlock.HeaderBytes + bytes.Length);
            _sharedBytes += allocated;
            Interlocked.Add(ref _nativeBytes, allocated);
            return block;
        }
    }

    private void Release(nint shared)
    {
        lock (_sharedLock)
        {
            ReleaseLocked(shared);
        }
    }

    // Under the shared states' lock: a block gives back its reference; the last one frees the state.
    private unsafe void ReleaseLocked(nint shared)
    {
        if (--SharedBlock.References(shared) > 0)
        {
            return;
        }

        var state = SharedBlock.State(shared);
        _shared.Remove(XxHash3.HashToUInt64(state));
        var allocated = Allocated(SharedBlock.HeaderBytes + state.Length);
        _sharedBytes -= allocated;
        Interlocked.Add(ref _nativeBytes, -allocated);
        NativeMemory.Free((void*)shared);
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

    /// <summary>
    /// Where a grain's records live: the key of their row and their subkey in it. A ledger entry (grain type
    /// <c>{ledger}.entry</c>, key <c>{ledger}~{order}</c> or <c>{ledger}~{order}:{scenario}</c>: <c>LedgerEntryStore.IdOf</c>)
    /// lives in the row of <c>{order}</c>, under the subkey <c>{ledger}~</c> or <c>{ledger}~:{scenario}</c>: an order's
    /// stock, coupon, points and GMV entries share its row (ids hold neither <c>~</c> nor <c>:</c>, Contracts' <c>Ids</c>).
    /// Any other grain (a flash sale's shard head <c>{sale}~{shard}</c> too) is its own row, with no subkey. The hash is
    /// the row key's (the stripe and the table's slot).
    /// </summary>
    private readonly ref struct RowKey
    {
        public RowKey(GrainId grainId)
            : this(grainId.Key.AsSpan(), grainId.Type.Value.AsSpan().EndsWith(".entry"u8))
        {
        }

        public RowKey(ReadOnlySpan<byte> key, bool entry)
        {
            var tilde = entry ? key.LastIndexOf((byte)'~') : -1;
            var rest = tilde < 0 ? default : key[(tilde + 1)..];
            var rowLength = rest.IndexOf((byte)':') is >= 0 and var colon ? colon : rest.Length;
            if (rowLength == 0)
            {
                Bytes = key; // no '~', or nothing after it: the key is its own row
            }
            else
            {
                Bytes = rest[..rowLength];
                Prefix = key[..(tilde + 1)];
                Suffix = rest[rowLength..];
            }

            Hash = XxHash3.HashToUInt64(Bytes);
        }

        public ReadOnlySpan<byte> Bytes { get; }

        /// <summary>The subkey, in two parts: before and after the row key.</summary>
        public ReadOnlySpan<byte> Prefix { get; }

        public ReadOnlySpan<byte> Suffix { get; }

        public int SubkeyLength => Prefix.Length + Suffix.Length;

        public ulong Hash { get; }

        public bool IsSubkey(ReadOnlySpan<byte> subkey) =>
            subkey.Length == SubkeyLength && subkey.StartsWith(Prefix) && subkey[Prefix.Length..].SequenceEqual(Suffix);
    }

    /// <summary>A part of the rows: their table, and the records in blocks of their own, read and changed under its lock.</summary>
    private sealed class Stripe
    {
        public RowTable Rows { get; } = new();

        /// <summary>
        /// Records over <see cref="SharedRecordMaxBytes"/>, or that would take their row past <see cref="RowMaxBytes"/>,
        /// each in a block of its own (laid out as a row of one record). Few: shards' pages.
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

    /// <summary>
    /// A stripe's rows by key: a native array of block addresses, open addressing with linear probing, at most 3/4 full;
    /// it doubles when it fills and halves when under 1/8 full. The key of a slot is read from its row.
    /// </summary>
    private sealed unsafe class RowTable : IDisposable
    {
        private const int MinimumSlots = 16;
        private nint* _slots;
        private int _capacity;

        public int Count { get; private set; }

        /// <summary>Bytes of the slot array.</summary>
        public long Bytes => (long)_capacity * sizeof(nint);

        public nint Find(RowKey key)
        {
            if (Count == 0)
            {
                return 0;
            }

            for (var i = Home(key.Hash); ; i = Next(i))
            {
                var row = _slots[i];
                if (row == 0 || Row.Key(row).SequenceEqual(key.Bytes))
                {
                    return row;
                }
            }
        }

        /// <summary>Puts the row in the key's slot, replacing the key's row if it has one.</summary>
        public void Set(RowKey key, nint row)
        {
            if (Count > 0)
            {
                var i = Home(key.Hash);
                while (_slots[i] != 0)
                {
                    if (Row.Key(_slots[i]).SequenceEqual(key.Bytes))
                    {
                        _slots[i] = row; // a replacement allocates nothing
                        return;
                    }

                    i = Next(i);
                }
            }

            if ((Count + 1) * 4L > _capacity * 3L)
            {
                Resize(Math.Max(MinimumSlots, _capacity * 2)); // before any change: a failed growth changes nothing
            }

            var slot = Home(key.Hash);
            while (_slots[slot] != 0)
            {
                slot = Next(slot);
            }

            _slots[slot] = row;
            Count++;
        }

        public void Remove(RowKey key)
        {
            if (Count == 0)
            {
                return;
            }

            var i = Home(key.Hash);
            while (_slots[i] != 0 && !Row.Key(_slots[i]).SequenceEqual(key.Bytes))
            {
                i = Next(i);
            }

            if (_slots[i] == 0)
            {
                return;
            }

            // Backward-shift deletion: move up every later row of the run that may sit in the freed slot, so that no
            // probe ever stops early at it.
            for (var j = Next(i); _slots[j] != 0; j = Next(j))
            {
                var home = Home(XxHash3.HashToUInt64(Row.Key(_slots[j])));
                if (i <= j ? home <= i || home > j : home <= i && home > j)
                {
                    _slots[i] = _slots[j];
                    i = j;
                }
            }

            _slots[i] = 0;
            Count--;
            if (Count == 0 || (_capacity > MinimumSlots && Count * 8L < _capacity))
            {
                try
                {
                    Resize(Count == 0 ? 0 : _capacity / 2);
                }
                catch (OutOfMemoryException)
                {
                    // The row is removed already; the larger table stays until a later removal shrinks it.
                }
            }
        }

        private int Home(ulong hash) => (int)(hash & (ulong)(_capacity - 1));

        private int Next(int i) => (i + 1) & (_capacity - 1);

        private void Resize(int capacity)
        {
            var old = _slots;
            var oldCapacity = _capacity;
            var slots = capacity == 0 ? null : (nint*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(nint)); // may throw: nothing changed yet
            _slots = slots;
            _capacity = capacity;
            for (var k = 0; k < oldCapacity; k++)
            {
                if (old[k] is not 0 and var row)
                {
                    var i = Home(XxHash3.HashToUInt64(Row.Key(row)));
                    while (_slots[i] != 0)
                    {
                        i = Next(i);
                    }

                    _slots[i] = row;
                }
            }

            NativeMemory.Free(old);
        }

        /// <summary>The rows, copied out (for counts, summaries and disposal).</summary>
        public List<nint> ToList()
        {
            var rows = new List<nint>(Count);
            for (var k = 0; k < _capacity; k++)
            {
                if (_slots[k] != 0)
                {
                    rows.Add(_slots[k]);
                }
            }

            return rows;
        }

        public void Dispose()
        {
            NativeMemory.Free(_slots);
            _slots = null;
            _capacity = 0;
            Count = 0;
        }
    }

    /// <summary>Unsigned LEB128: seven bits a byte, low first, the high bit set on every byte but the last.</summary>
    private static class Varint
    {
        public static int Size(ulong value)
        {
            var size = 1;
            while (value >= 0x80)
            {
                value >>= 7;
                size++;
            }

            return size;
        }

        public static int Write(Span<byte> at, ulong value)
        {
            var i = 0;
            while (value >= 0x80)
            {
                at[i++] = (byte)(value | 0x80);
                value >>= 7;
            }

            at[i++] = (byte)value;
            return i;
        }

        public static unsafe ulong Read(ref byte* at)
        {
            var (value, shift) = (0UL, 0);
            while (true)
            {
                var b = *at++;
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }

                shift += 7;
            }
        }
    }

    /// <summary>Reads a block; the caller holds the lock of the block's stripe.</summary>
    private static unsafe class Row
    {
        public static ReadOnlySpan<byte> Key(nint row)
        {
            var at = (byte*)row;
            var length = (int)Varint.Read(ref at);
            return new ReadOnlySpan<byte>(at, length);
        }

        public static int Count(nint row)
        {
            var at = RecordCountAt(row);
            return (int)Varint.Read(ref at);
        }

        public static int Size(nint row)
        {
            var at = RecordCountAt(row);
            var count = (int)Varint.Read(ref at);
            for (var i = 0; i < count; i++)
            {
                if ((Varint.Read(ref at) & 1) == 1)
                {
                    var subkeyLength = (int)Varint.Read(ref at); // read before the add, as below
                    at += subkeyLength;
                }

                Varint.Read(ref at);
                var tag = Varint.Read(ref at); // read before the add: `at += Read(ref at)` would add to the old `at`
                at += (tag & 1) == 0 ? (int)(tag >> 1) : sizeof(long);
            }

            return (int)(at - (byte*)row);
        }

        /// <summary>The records other than the table's: how many, and their bytes with their headers.</summary>
        public static (int Count, int Bytes) Without(nint row, ushort table, RowKey key)
        {
            var (count, bytes) = (0, 0);
            foreach (var record in Records(row))
            {
                if (!record.Is(table, key))
                {
                    (count, bytes) = (count + 1, bytes + RecordBytes(record.Table, record.Subkey.Length, record.Version, record.State.Length, record.Shared != 0));
                }
            }

            return (count, bytes);
        }

        public static bool TryFind(nint row, ushort table, RowKey key, out long version, out ReadOnlySpan<byte> state)
        {
            foreach (var record in Records(row))
            {
                if (record.Is(table, key))
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

        public static long? VersionOf(nint row, ushort table, RowKey key) => TryFind(row, table, key, out var version, out _) ? version : null;

        public static RecordEnumerator Records(nint row) => new(row);

        public static byte* RecordCountAt(nint row)
        {
            var at = (byte*)row;
            var keyLength = (int)Varint.Read(ref at);
            return at + keyLength;
        }
    }

    /// <summary>The records of a block (none for address 0), in place: table, version and a span over the state.</summary>
    private unsafe ref struct RecordEnumerator
    {
        private int _left;
        private byte* _next;

        public RecordEnumerator(nint row)
        {
            if (row != 0)
            {
                _next = Row.RecordCountAt(row);
                _left = (int)Varint.Read(ref _next);
            }
        }

        public RecordView Current { get; private set; }

        public readonly RecordEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_left == 0)
            {
                return false;
            }

            var tableTag = Varint.Read(ref _next);
            var subkey = ReadOnlySpan<byte>.Empty;
            if ((tableTag & 1) == 1)
            {
                var subkeyLength = (int)Varint.Read(ref _next);
                subkey = new ReadOnlySpan<byte>(_next, subkeyLength);
                _next += subkeyLength;
            }

            var table = (ushort)(tableTag >> 1);
            var version = (long)Varint.Read(ref _next);
            var tag = Varint.Read(ref _next);
            if ((tag & 1) == 0)
            {
                Current = new RecordView(table, subkey, version, new ReadOnlySpan<byte>(_next, (int)(tag >> 1)), 0);
                _next += (int)(tag >> 1);
            }
            else
            {
                var shared = (nint)BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(_next, sizeof(long)));
                Current = new RecordView(table, subkey, version, SharedBlock.State(shared), shared);
                _next += sizeof(long);
            }

            _left--;
            return true;
        }
    }

    /// <summary>A record: its table, version and state (in its block, or shared: <see cref="Shared"/> is then the shared state's address).</summary>
    private readonly ref struct RecordView(ushort table, ReadOnlySpan<byte> subkey, long version, ReadOnlySpan<byte> state, nint shared)
    {
        public ushort Table { get; } = table;

        /// <summary>Empty unless the record's grain key lives in another key's row (<see cref="RowKey"/>).</summary>
        public ReadOnlySpan<byte> Subkey { get; } = subkey;

        public bool Is(ushort table, RowKey key) => Table == table && key.IsSubkey(Subkey);

        /// <summary>The state's bytes in this block: the state, or a shared state's address.</summary>
        public int HeldBytes => Shared == 0 ? State.Length : sizeof(long);
        public long Version { get; } = version;
        public ReadOnlySpan<byte> State { get; } = state;
        public nint Shared { get; } = shared;
    }

    /// <summary>A shared state's block: its reference count and length (4 bytes each), then the state.</summary>
    private static unsafe class SharedBlock
    {
        public const int HeaderBytes = 8;

        public static ref int References(nint block) => ref *(int*)block;

        public static ref int Length(nint block) => ref *((int*)block + 1);

        public static ReadOnlySpan<byte> State(nint block) => new((byte*)block + HeaderBytes, Length(block));
    }
}
