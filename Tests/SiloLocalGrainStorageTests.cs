using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Serialization.Session;
using Orleans.Storage;

namespace OrderFlow.Tests;

/// <summary>
/// The embedded single silo's grain storage keeps Orleans' memory storage contract: copies, not shared references;
/// every write and clear checked against the ETag its writer read; of racing writers from one read, exactly one wins.
/// (The single-silo app, <c>SiloApp</c>, runs on it: the HTTP, live-page and dashboard suites exercise it end to end.)
/// </summary>
public sealed class SiloLocalGrainStorageTests
{
    private static readonly GrainId Grain = GrainId.Create("points", "o-1");

    private static readonly Serializer Serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

    // Shared states off unless asked for: most of these tests count each record's bytes in its own block.
    private static SiloLocalGrainStorage NewStorage(int sharedStateMaxBytes = 0)
    {
        var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        return new SiloLocalGrainStorage(services.GetRequiredService<Serializer>(),
            services.GetRequiredService<SerializerSessionPool>(), services.GetRequiredService<IActivatorProvider>(), sharedStateMaxBytes);
    }

    private static async Task<GrainState<SubscriberState>> ReadAsync(IGrainStorage storage)
    {
        var state = new GrainState<SubscriberState>(new SubscriberState());
        await storage.ReadStateAsync("points", Grain, state);
        return state;
    }

    [Fact]
    public async Task A_record_reads_back_as_written_and_as_a_copy()
    {
        var storage = NewStorage();
        var missing = await ReadAsync(storage);
        Assert.False(missing.RecordExists);
        Assert.Null(missing.ETag);

        missing.State!.AppliedSequence = 3;
        await storage.WriteStateAsync("points", Grain, missing);
        Assert.True(missing.RecordExists);
        missing.State!.AppliedSequence = 99; // the writer's object changes after the write: the record does not

        var read = await ReadAsync(storage);
        Assert.Equal((true, 3L, missing.ETag), (read.RecordExists, read.State!.AppliedSequence, read.ETag));
        Assert.NotSame(missing.State, read.State);
        Assert.Equal(0, (await ReadAsyncOf(storage, "coupon")).State!.AppliedSequence); // another state name is another record
    }

    [Fact]
    public async Task The_summary_counts_records_and_their_bytes_by_state_name_and_grain_type()
    {
        var storage = NewStorage();
        var states = new[] { new SubscriberState { AppliedSequence = 1 }, new SubscriberState { AppliedSequence = 1_000_000 } };
        await storage.WriteStateAsync("points", GrainId.Create("points", "o-1"), new GrainState<SubscriberState>(states[0]));
        await storage.WriteStateAsync("points", GrainId.Create("points", "order-22"), new GrainState<SubscriberState>(states[1]));
        await storage.WriteStateAsync("sms", GrainId.Create("sms", "o-1"), new GrainState<SubscriberState>(states[0]));

        var summary = storage.Summarize().OrderBy(g => g.StateName).ToArray();

        var (one, other) = (Serializer.SerializeToArray(states[0]).Length, Serializer.SerializeToArray(states[1]).Length);
        Assert.NotEqual(one, other);
        // "o-1" is stored once, in the row its two records share, and split between them: 1.5 bytes each, rounded.
        Assert.Equal(
            [("", "points", "points", 2, (long)(one + other), (long)Math.Round("o-1".Length / 2.0 + "order-22".Length, MidpointRounding.AwayFromZero)),
             ("", "sms", "sms", 1, one, (long)Math.Round("o-1".Length / 2.0, MidpointRounding.AwayFromZero))],
            summary);
    }

    [Fact]
    public async Task A_stale_or_blind_write_and_a_stale_clear_are_refused_and_change_nothing()
    {
        var storage = NewStorage();
        var first = await ReadAsync(storage);
        first.State!.AppliedSequence = 1;
        await storage.WriteStateAsync("points", Grain, first);

        var stale = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 7 }) { ETag = "0" };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", Grain, stale));
        foreach (var respelled in new[] { "0" + first.ETag, " " + first.ETag, "+" + first.ETag, first.ETag + "x" })
        {
            // The stored version's number, spelled otherwise: still not the ETag the store handed out.
            var other = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 9 }) { ETag = respelled };
            await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", Grain, other));
        }

        var blind = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 8 });
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", Grain, blind));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync("points", Grain, stale));
        Assert.Equal(1, (await ReadAsync(storage)).State!.AppliedSequence);

        await storage.ClearStateAsync("points", Grain, first);
        Assert.False((await ReadAsync(storage)).RecordExists);
        Assert.Equal(0, storage.Count);
    }

    [Fact]
    public async Task Of_writers_racing_from_one_read_exactly_one_wins_every_round()
    {
        // Four threads released together by a barrier (the storage answers synchronously, so the race is real on two
        // cores), 200 rounds: each round exactly one write lands and the stored value is the winner's.
        const int Writers = 4;
        var storage = NewStorage();
        var seed = await ReadAsync(storage);
        await storage.WriteStateAsync("points", Grain, seed);
        using var barrier = new Barrier(Writers);
        for (var round = 1; round <= 200; round++)
        {
            var etag = (await ReadAsync(storage)).ETag;
            var won = new int[Writers];
            var threads = Enumerable.Range(0, Writers).Select(w => new Thread(() =>
            {
                var writer = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = round * 10 + w }) { ETag = etag, RecordExists = true };
                barrier.SignalAndWait();
                try
                {
                    storage.WriteStateAsync("points", Grain, writer).GetAwaiter().GetResult();
                    won[w] = 1;
                }
                catch (InconsistentStateException)
                {
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());

            Assert.Equal(1, won.Sum());
            Assert.Equal(round * 10 + Array.IndexOf(won, 1), (await ReadAsync(storage)).State!.AppliedSequence);
        }
    }

    [Fact]
    public async Task A_write_that_expects_a_record_which_does_not_exist_is_refused()
    {
        var storage = NewStorage();
        var expectsOne = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 2 }) { ETag = "5", RecordExists = true };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", Grain, expectsOne));
        Assert.False((await ReadAsync(storage)).RecordExists);
    }

    [Fact]
    public async Task The_records_native_bytes_follow_writes_and_clears_and_are_freed_when_the_storage_is_disposed()
    {
        var storage = NewStorage();
        var (small, large) = (new SubscriberState { AppliedSequence = 1 }, new SubscriberState { AppliedSequence = long.MaxValue });
        var (smallBytes, largeBytes) = (Serializer.SerializeToArray(small).Length, Serializer.SerializeToArray(large).Length);
        Assert.True(largeBytes > smallBytes);

        var record = new GrainState<SubscriberState>(small);
        await storage.WriteStateAsync("points", Grain, record);
        var other = new GrainState<SubscriberState>(small);
        await storage.WriteStateAsync("sms", Grain, other);
        // Both records have the grain's key: one row holds them, one block (which these sizes tell from two).
        Assert.True(Footprint([smallBytes]) >= "o-1".Length + smallBytes); // at least the row's key and the record's state
        Assert.NotEqual(2 * Footprint([smallBytes]), Footprint([smallBytes, smallBytes]));
        Assert.Equal(Footprint([smallBytes, smallBytes]), Blocks(storage));

        record.State = large; // the row is written anew and its old block freed
        await storage.WriteStateAsync("points", Grain, record);
        Assert.Equal(Footprint([largeBytes, smallBytes]), Blocks(storage));

        await storage.WriteStateAsync("points", GrainId.Create("points", "o-2"), new GrainState<SubscriberState>(small)); // another key, another row
        Assert.Equal(Footprint([largeBytes, smallBytes]) + Footprint([smallBytes]), Blocks(storage));

        await storage.ClearStateAsync("points", Grain, record);
        Assert.Equal(2 * Footprint([smallBytes]), Blocks(storage));

        storage.Dispose();
        Assert.Equal(0, storage.NativeBytes);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => ReadAsyncOf(storage, "sms"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => ReadAsyncOf(storage, "never-written"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => storage.WriteStateAsync("sms", Grain, other));
        Assert.Equal(0, storage.NativeBytes); // a write refused after disposal leaves nothing behind
    }

    [Fact]
    public async Task Records_that_share_a_grain_key_are_read_written_and_cleared_each_on_its_own()
    {
        // The order's own record, its inboxes and its replica have one key and share a row: each keeps its own state and ETag.
        var storage = NewStorage();
        var ids = new[] { GrainId.Create("points", "o-1"), GrainId.Create("sms", "o-1"), GrainId.Create("points", "o-1") };
        var names = new[] { "points", "sms", "other-state" };
        var written = new List<GrainState<SubscriberState>>();
        for (var i = 0; i < ids.Length; i++)
        {
            var record = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 10 + i });
            await storage.WriteStateAsync(names[i], ids[i], record);
            written.Add(record);
        }

        written[1].State!.AppliedSequence = 21; // the middle record of the row changes: the others keep theirs
        await storage.WriteStateAsync(names[1], ids[1], written[1]);
        var stale = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 99 }) { ETag = written[1].ETag };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(names[0], ids[0], stale)); // another record's ETag
        await storage.ClearStateAsync(names[0], ids[0], written[0]);

        var read = new List<GrainState<SubscriberState>>();
        for (var i = 0; i < ids.Length; i++)
        {
            var record = new GrainState<SubscriberState>(new SubscriberState());
            await storage.ReadStateAsync(names[i], ids[i], record);
            read.Add(record);
        }

        Assert.Equal([(false, 0L, null), (true, 21L, written[1].ETag), (true, 12L, written[2].ETag)],
            read.Select(r => (r.RecordExists, r.State!.AppliedSequence, r.ETag)));
        Assert.Equal(2, storage.Count);
        Assert.NotEqual(written[1].ETag, written[2].ETag);

        // Another store's view: the same state name and grain type there is another record, in the same row.
        var orders = storage.ForStore("orders");
        var inOrders = new GrainState<SubscriberState>(new SubscriberState());
        await orders.ReadStateAsync(names[1], ids[1], inOrders);
        Assert.False(inOrders.RecordExists);
        inOrders.State!.AppliedSequence = 31;
        await orders.WriteStateAsync(names[1], ids[1], inOrders);
        var again = new GrainState<SubscriberState>(new SubscriberState());
        await storage.ReadStateAsync(names[1], ids[1], again);
        Assert.Equal((3, 21L, 1), (storage.Count, again.State!.AppliedSequence, storage.Summarize().Count(g => g.Store == "orders")));
    }

    [Fact]
    public async Task A_large_record_has_a_block_of_its_own_and_joins_its_row_again_when_it_shrinks()
    {
        // A write copies its row's other records: a large one (a shard's page) lives alone, so writing a small record of
        // the same key never copies it.
        var storage = NewStorage();
        var (small, large) = (new SubscriberState { AppliedSequence = 1 }, new SubscriberState { LastError = new string('x', 2_000) });
        var (smallBytes, largeBytes) = (Serializer.SerializeToArray(small).Length, Serializer.SerializeToArray(large).Length);

        var alone = Footprint([largeBytes]) + Footprint([smallBytes]);
        Assert.NotEqual(Footprint([largeBytes, smallBytes]), alone); // these sizes tell one block from two

        var big = new GrainState<SubscriberState>(large);
        await storage.WriteStateAsync("relay.1", Grain, big);
        await storage.WriteStateAsync("relay.1", Grain, big); // a block of its own, replaced by another
        var other = new GrainState<SubscriberState>(small);
        await storage.WriteStateAsync("relay", Grain, other);
        Assert.Equal(alone, Blocks(storage));
        await storage.WriteStateAsync("relay", Grain, other);
        Assert.Equal(alone, Blocks(storage));

        big.State = small; // small again: it moves into the row, and its block of its own is freed
        await storage.WriteStateAsync("relay.1", Grain, big);
        Assert.Equal(Footprint([smallBytes, smallBytes]), Blocks(storage));
        big.State = large; // and out again, with its ETag checked wherever it was
        var stale = new GrainState<SubscriberState>(large) { ETag = other.ETag };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("relay.1", Grain, stale));
        await storage.WriteStateAsync("relay.1", Grain, big);
        Assert.Equal(alone, Blocks(storage));

        var read = await ReadAsyncOf(storage, "relay.1");
        Assert.Equal((true, 2_000, big.ETag), (read.RecordExists, read.State!.LastError!.Length, read.ETag));
        Assert.Equal(2, storage.Count);
        Assert.Equal([1, 1], storage.Summarize().OrderBy(g => g.StateName).Select(g => g.Records));

        await storage.ClearStateAsync("relay.1", Grain, big);
        await storage.ClearStateAsync("relay", Grain, other);
        Assert.Equal((0, 0L), (storage.Count, storage.NativeBytes));

        // The last record of a row moving to a block of its own takes the row with it; dispose frees both kinds of block.
        var moving = new GrainState<SubscriberState>(small);
        await storage.WriteStateAsync("relay.2", Grain, moving);
        moving.State = large;
        await storage.WriteStateAsync("relay.2", Grain, moving);
        Assert.Equal((1, Footprint([largeBytes])), (storage.Count, Blocks(storage)));
        await storage.WriteStateAsync("relay", Grain, new GrainState<SubscriberState>(small));
        storage.Dispose();
        Assert.Equal(0, storage.NativeBytes);
    }

    [Fact]
    public async Task A_row_never_grows_past_its_bound_however_many_small_records_share_the_key()
    {
        // 100 records of ~700 bytes under one key: the row takes what fits in 4 KB, the rest live alone.
        var storage = NewStorage();
        var state = new SubscriberState { LastError = new string('y', 700) };
        for (var page = 0; page < 100; page++)
        {
            await storage.WriteStateAsync($"page.{page}", Grain, new GrainState<SubscriberState>(state));
        }

        var bytes = Serializer.SerializeToArray(state).Length;
        // The row: the key's length, the key and the record count (5 bytes); each record: table, version, length (4) and state.
        var inRow = (4096 - (1 + "o-1".Length + 1)) / (1 + 1 + 2 + bytes);
        Assert.Equal(Footprint([.. Enumerable.Repeat(bytes, inRow)]) + (100 - inRow) * Footprint([bytes]),
            Blocks(storage));
        Assert.Equal(100, storage.Count);
    }

    [Fact]
    public async Task Thousands_of_keys_are_found_replaced_and_cleared_and_the_tables_give_their_memory_back()
    {
        // The rows are found through native hash tables that grow, shrink and shift rows up on removal: every key must
        // stay findable through all of it, and an emptied storage holds no native bytes.
        var storage = NewStorage();
        var keys = Enumerable.Range(0, 5_000).Select(i => GrainId.Create("points", $"order-{i}")).ToArray();
        var records = new Dictionary<GrainId, GrainState<SubscriberState>>();
        foreach (var (key, i) in keys.Select((key, i) => (key, i)))
        {
            records[key] = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = i });
            await storage.WriteStateAsync("points", key, records[key]);
        }

        var grown = storage.IndexBytes;
        Assert.True(grown >= 5_000 * 8 * 4 / 3, $"{grown} bytes of tables for 5,000 rows"); // at most 3/4 full
        foreach (var key in keys.Where((_, i) => i % 3 != 0))
        {
            await storage.ClearStateAsync("points", key, records[key]);
        }

        foreach (var key in keys.Where((_, i) => i % 3 == 0))
        {
            records[key].State!.HandlerRuns = 7; // replaced in place, after the removals shifted rows
            await storage.WriteStateAsync("points", key, records[key]);
        }

        for (var i = 0; i < keys.Length; i++)
        {
            var read = new GrainState<SubscriberState>(new SubscriberState());
            await storage.ReadStateAsync("points", keys[i], read);
            Assert.Equal(i % 3 == 0 ? (true, i, 7L) : (false, 0L, 0L), (read.RecordExists, read.State!.AppliedSequence, read.State.HandlerRuns));
        }

        Assert.Equal(1_667, storage.Count);
        Assert.True(storage.IndexBytes < grown, $"{storage.IndexBytes} bytes of tables after two thirds were cleared, {grown} before");
        foreach (var key in keys.Where((_, i) => i % 3 == 0))
        {
            await storage.ClearStateAsync("points", key, records[key]);
        }

        Assert.Equal((0, 0L), (storage.Count, storage.NativeBytes));
    }

    [Fact]
    public async Task An_order_record_names_its_event_types_by_number_and_reads_back_whole()
    {
        // The store's sessions know the order's event and line types in advance: the record is smaller than Orleans'
        // own encoding, which names each type in full at its first occurrence, and reads back the same.
        var storage = NewStorage();
        var state = new OrderFlow.Grains.Orders.OrderState();
        OrderLine[] lines = [new("sku-1", 1, 2.5m)];
        OrderEvent[] events =
        [
            new OrderPlaced(Guid.NewGuid(), "o-1", 1, DateTimeOffset.UnixEpoch, "u-1", lines, 2.5m, null, null),
            new OrderPaid(Guid.NewGuid(), "o-1", 2, DateTimeOffset.UnixEpoch, "u-1", "pay-1", 2.5m, lines, null, null),
            new OrderShipped(Guid.NewGuid(), "o-1", 3, DateTimeOffset.UnixEpoch, "u-1"),
        ];
        state.Events.AddRange(events);
        var order = GrainId.Create("order", "o-1");
        await storage.WriteStateAsync("order", order, new GrainState<OrderFlow.Grains.Orders.OrderState>(state));

        var stored = storage.Summarize().Single().StateBytes;
        var plain = Serializer.SerializeToArray(state).Length;
        Assert.True(stored < plain - 3 * "orders.OrderPaid.v1".Length, $"{stored} bytes stored, {plain} in Orleans' own encoding");
        var read = new GrainState<OrderFlow.Grains.Orders.OrderState>(new());
        await storage.ReadStateAsync("order", order, read);
        Assert.Equal(events.Select(e => (e.GetType(), e.EventId, e.Sequence)), read.State!.Events.Select(e => (e.GetType(), e.EventId, e.Sequence)));
        Assert.Equal(lines, ((OrderPlaced)read.State.Events[0]).Items);
        Assert.Equal(lines, ((OrderPaid)read.State.Events[1]).Items);
    }

    [Fact]
    public async Task A_small_state_written_again_is_shared_and_freed_with_its_last_record()
    {
        var storage = NewStorage(SiloLocalGrainStorage.DefaultSharedStateMaxBytes);
        var finished = new SubscriberState { AppliedSequence = 4, HandlerRuns = 2, Finished = true };
        var length = Serializer.SerializeToArray(finished).Length;
        Assert.True(length <= SiloLocalGrainStorage.DefaultSharedStateMaxBytes);
        var orders = Enumerable.Range(1, 3).Select(i => GrainId.Create("points", $"o-{i}")).ToArray();
        var records = orders.Select(_ => new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 4, HandlerRuns = 2, Finished = true })).ToArray();
        for (var i = 0; i < orders.Length; i++)
        {
            await storage.WriteStateAsync("points", orders[i], records[i]);
        }

        // Seen once: inline in o-1's row. From the second sighting on, one shared block that o-2's and o-3's rows point to.
        var (count, bytes) = storage.SharedStates;
        Assert.Equal(1, count);
        Assert.True(bytes >= 8 + length);
        var inline = SiloLocalGrainStorage.Footprint(3, [(0, 1, length, false)]);
        var pointing = SiloLocalGrainStorage.Footprint(3, [(0, 2, length, true)]);
        Assert.True(pointing < inline);
        Assert.Equal(inline + 2 * pointing + bytes, storage.NativeBytes - storage.IndexBytes);
        Assert.Contains(storage.Summarize(), g => g.StateName == SiloLocalGrainStorage.SharedStatesName && g.Records == 1 && g.StateBytes == bytes);

        // Another record joining o-2's row copies the row: the shared state is still held once, and reads back whole.
        await storage.WriteStateAsync("sms", orders[1], new GrainState<SubscriberState>(new SubscriberState { LastError = new string('e', 100) }));
        Assert.Equal(1, storage.SharedStates.Count);
        foreach (var order in orders)
        {
            var read = new GrainState<SubscriberState>(new SubscriberState());
            await storage.ReadStateAsync("points", order, read);
            Assert.Equal((true, 4L, 2L, true), (read.RecordExists, read.State!.AppliedSequence, read.State.HandlerRuns, read.State.Finished));
        }

        // A refused write takes no reference; a changed record lets its reference go; the last one frees the state.
        var stale = new GrainState<SubscriberState>(finished) { ETag = "1" };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", orders[2], stale));
        records[1].State!.HandlerRuns = 3;
        await storage.WriteStateAsync("points", orders[1], records[1]);
        Assert.Equal(1, storage.SharedStates.Count); // still o-3's
        await storage.ClearStateAsync("points", orders[2], records[2]);
        Assert.Equal((0, 0L), storage.SharedStates);

        // A state over the bound is never shared.
        var large = new SubscriberState { LastError = new string('x', SiloLocalGrainStorage.DefaultSharedStateMaxBytes) };
        for (var i = 0; i < 3; i++)
        {
            await storage.WriteStateAsync("coupon", orders[i], new GrainState<SubscriberState>(large));
        }

        Assert.Equal((0, 0L), storage.SharedStates);
        storage.Dispose();
        Assert.Equal(0, storage.NativeBytes);
    }

    [Fact]
    public async Task An_orders_ledger_entries_live_in_its_row_each_under_its_own_subkey()
    {
        // Ledger entries (type {ledger}.entry) are keyed {ledger}~{order} or {ledger}~{order}:{scenario}: they share the
        // order's row (one block, one key), and each stays a record of its own, with its own ETag. Other grains' keys
        // with a '~' (a flash sale's shard head, {sale}~{shard}) are rows of their own.
        var storage = NewStorage();
        var keys = new[]
        {
            GrainId.Create("points", "o-1"), GrainId.Create("stock.entry", "sku-1~o-1"), GrainId.Create("stock.entry", "sku-2~o-1"),
            GrainId.Create("ledger-points.entry", "u-1~o-1:award"), GrainId.Create("ledger-points.entry", "u-1~o-1:revoke"),
            GrainId.Create("payment-id", "pay-1"), GrainId.Create("stock.entry", "a~"), GrainId.Create("stock.entry", "a~:x"),
            GrainId.Create("stock.entry", "sku-1~o-12"), GrainId.Create("flashsale-shard", "sale-a~3"), GrainId.Create("flashsale-shard", "sale-b~3"),
        };
        var records = keys.Select((_, i) => new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 100 + i })).ToArray();
        for (var i = 0; i < keys.Length; i++)
        {
            await storage.WriteStateAsync("points", keys[i], records[i]);
        }

        // Rows: o-1 (five records), pay-1, a~, a~:x, o-12, sale-a~3, sale-b~3.
        Assert.Equal((11, 7), (storage.Count, storage.Blocks));
        records[2].State!.HandlerRuns = 7;
        await storage.WriteStateAsync("points", keys[2], records[2]);
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("points", keys[1],
            new GrainState<SubscriberState>(new SubscriberState()) { ETag = records[2].ETag })); // a neighbour's ETag
        await storage.ClearStateAsync("points", keys[3], records[3]);
        for (var i = 0; i < keys.Length; i++)
        {
            var read = new GrainState<SubscriberState>(new SubscriberState());
            await storage.ReadStateAsync("points", keys[i], read);
            Assert.Equal(i == 3 ? (false, 0L, 0L, null) : (true, 100L + i, i == 2 ? 7L : 0L, records[i].ETag),
                (read.RecordExists, read.State!.AppliedSequence, read.State.HandlerRuns, read.ETag));
        }

        // The summary splits the row's key among its records (rounded per table, so within a byte or two) and counts
        // each subkey with its record.
        var keyBytes = "o-1".Length + "sku-1~".Length + "sku-2~".Length + "u-1~:revoke".Length + "pay-1".Length + "a~".Length + "a~:x".Length
            + "o-12".Length + "sku-1~".Length + "sale-a~3".Length + "sale-b~3".Length;
        Assert.InRange(storage.Summarize().Sum(g => g.KeyBytes), keyBytes - 2, keyBytes + 2);
        foreach (var i in new[] { 0, 1, 2, 4, 5, 6, 7, 8, 9, 10 })
        {
            await storage.ClearStateAsync("points", keys[i], records[i]);
        }

        Assert.Equal((0, 0, 0L), (storage.Count, storage.Blocks, storage.NativeBytes));
    }

    [Fact]
    public async Task An_entry_too_large_for_its_orders_row_lives_alone_under_its_full_key_and_rejoins_the_row()
    {
        var storage = NewStorage();
        var (order, entry) = (GrainId.Create("points", "o-1"), GrainId.Create("stock.entry", "sku-1~o-1"));
        await storage.WriteStateAsync("points", order, new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 1 }));
        var record = new GrainState<SubscriberState>(new SubscriberState { LastError = new string('x', 2_000) });
        await storage.WriteStateAsync("points", entry, record); // alone
        Assert.Equal((2, 2), (storage.Count, storage.Blocks));
        Assert.Equal("o-1".Length + "sku-1~o-1".Length, storage.Summarize().Sum(g => g.KeyBytes));
        record.State = new SubscriberState { AppliedSequence = 2 };
        await storage.WriteStateAsync("points", entry, record); // back in the order's row
        Assert.Equal((2, 1), (storage.Count, storage.Blocks));
        var read = new GrainState<SubscriberState>(new SubscriberState());
        await storage.ReadStateAsync("points", entry, read);
        Assert.Equal((2L, record.ETag), (read.State!.AppliedSequence, read.ETag));
        await storage.ClearStateAsync("points", entry, record);
        Assert.Equal((1, 1), (storage.Count, storage.Blocks));
    }

    [Fact]
    public async Task A_shared_state_moves_between_a_full_row_and_a_block_of_its_own_and_is_freed_with_it()
    {
        var storage = NewStorage(SiloLocalGrainStorage.DefaultSharedStateMaxBytes);
        var big = new SubscriberState { LastError = new string('y', 700) };
        for (var i = 0; i < 5; i++)
        {
            await storage.WriteStateAsync($"page.{i}", Grain, new GrainState<SubscriberState>(big)); // the row is full
        }

        var small = new SubscriberState { AppliedSequence = 5, Finished = true };
        await storage.WriteStateAsync("points", GrainId.Create("points", "o-2"), new GrainState<SubscriberState>(small)); // seen once
        var record = new GrainState<SubscriberState>(small);
        await storage.WriteStateAsync("points", Grain, record); // shared, in a block of its own
        Assert.Equal(1, storage.SharedStates.Count);
        // o-2's record holds its state, Grain's the shared state's address: the summary counts what each block holds.
        Assert.Equal(Serializer.SerializeToArray(small).Length + sizeof(long), storage.Summarize().Single(g => g.StateName == "points").StateBytes);
        Assert.Equal(5, (await ReadAsyncOf(storage, "points")).State!.AppliedSequence);

        for (var i = 0; i < 5; i++)
        {
            await storage.ClearStateAsync($"page.{i}", Grain, await ReadAsyncOf(storage, $"page.{i}"));
        }

        record.State = new SubscriberState { AppliedSequence = 5, Finished = true }; // back into the row, still shared
        await storage.WriteStateAsync("points", Grain, record);
        Assert.Equal(1, storage.SharedStates.Count);
        await storage.ClearStateAsync("points", Grain, record);
        Assert.Equal(1, storage.Count);
        storage.Dispose();
        Assert.Equal((0, 0L, 0L), (storage.SharedStates.Count, storage.SharedStates.Bytes, storage.NativeBytes));
    }

    [Fact]
    public async Task Many_threads_writing_clearing_and_reading_leave_nothing_behind_once_everything_is_cleared()
    {
        // Rows, blocks of their own and shared states all in use at once; the accounting must come back to zero.
        var storage = NewStorage(SiloLocalGrainStorage.DefaultSharedStateMaxBytes);
        var keys = Enumerable.Range(0, 300).Select(i => GrainId.Create("points", $"order-{i}")).ToArray();
        string[] names = ["a", "b", "c", "d", "e", "f"];
        var errors = new List<string>();
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            var random = new Random(t);
            for (var n = 0; n < 10_000; n++)
            {
                var (key, name) = (keys[random.Next(keys.Length)], names[random.Next(names.Length)]);
                var record = new GrainState<SubscriberState>(new SubscriberState());
                try
                {
                    storage.ReadStateAsync(name, key, record).GetAwaiter().GetResult();
                    if (record.RecordExists && record.State!.AppliedSequence != record.State.HandlerRuns)
                    {
                        lock (errors)
                        {
                            errors.Add("torn");
                        }
                    }

                    var op = random.Next(10);
                    if (op == 0)
                    {
                        storage.ClearStateAsync(name, key, record).GetAwaiter().GetResult();
                    }
                    else
                    {
                        var value = random.Next(4);
                        record.State = new SubscriberState
                        {
                            AppliedSequence = value,
                            HandlerRuns = value,
                            LastError = op == 1 ? new string('x', 1_500) : op == 2 ? new string('z', 900) : null,
                        };
                        storage.WriteStateAsync(name, key, record).GetAwaiter().GetResult();
                    }
                }
                catch (InconsistentStateException)
                {
                    // another thread wrote the record since this one read it
                }
                catch (Exception e)
                {
                    lock (errors)
                    {
                        errors.Add(e.ToString());
                    }
                }
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        Assert.True(threads.All(thread => thread.Join(TimeSpan.FromMinutes(2))), "the threads did not finish");
        Assert.Empty(errors);
        foreach (var key in keys)
        {
            foreach (var name in names)
            {
                var record = new GrainState<SubscriberState>(new SubscriberState());
                await storage.ReadStateAsync(name, key, record);
                await storage.ClearStateAsync(name, key, record);
            }
        }

        Assert.Equal((0, 0, 0L, 0L), (storage.Count, storage.SharedStates.Count, storage.SharedStates.Bytes, storage.NativeBytes));
    }

    [Fact]
    public async Task Shared_states_read_while_other_rows_let_them_go_are_always_whole()
    {
        // Two states shared by many rows; a writer keeps moving rows from one to the other (freeing a state whenever its
        // last row leaves it) while a reader reads them: every read must be one of the two states.
        var storage = NewStorage(SiloLocalGrainStorage.DefaultSharedStateMaxBytes);
        SubscriberState State(int which) => new() { AppliedSequence = which, HandlerRuns = which, Finished = true };
        var orders = Enumerable.Range(0, 8).Select(i => GrainId.Create("points", $"o-{i}")).ToArray();
        var records = orders.Select(_ => new GrainState<SubscriberState>(State(1))).ToArray();
        for (var i = 0; i < orders.Length; i++)
        {
            await storage.WriteStateAsync("points", orders[i], records[i]);
        }

        using var stop = new CancellationTokenSource();
        var (reads, torn) = (0L, new List<string>());
        var reader = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var order in orders)
                {
                    var read = new GrainState<SubscriberState>(new SubscriberState());
                    try
                    {
                        storage.ReadStateAsync("points", order, read).GetAwaiter().GetResult();
                        if (read.State!.AppliedSequence != read.State.HandlerRuns || read.State.AppliedSequence is not (1 or 2))
                        {
                            torn.Add($"{read.State.AppliedSequence}/{read.State.HandlerRuns}");
                        }
                    }
                    catch (Exception e)
                    {
                        torn.Add(e.GetType().Name);
                    }
                }

                Interlocked.Increment(ref reads);
            }
        });
        reader.Start();
        SpinWait.SpinUntil(() => Interlocked.Read(ref reads) > 0);
        for (var round = 0; round < 2_000 || (Interlocked.Read(ref reads) < 200 && round < 200_000); round++)
        {
            var i = round % orders.Length;
            records[i].State = State(round / orders.Length % 2 == 0 ? 2 : 1);
            await storage.WriteStateAsync("points", orders[i], records[i]);
        }

        stop.Cancel();
        reader.Join();
        Assert.Empty(torn);
        Assert.InRange(storage.SharedStates.Count, 1, 2);
        storage.Dispose();
        Assert.Equal(0, storage.NativeBytes);
    }

    [Fact]
    public async Task A_record_read_while_its_writer_keeps_replacing_it_is_always_one_that_was_written()
    {
        // Each write frees the block it replaces: a reader on another thread must never see a freed or half-written one.
        var storage = NewStorage();
        var writer = new GrainState<SubscriberState>(new SubscriberState { AppliedSequence = 1, HandlerRuns = 1 });
        await storage.WriteStateAsync("points", Grain, writer);
        using var stop = new CancellationTokenSource();
        var (reads, torn) = (0L, new List<string>());
        var reader = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var read = ReadAsync(storage).GetAwaiter().GetResult().State!;
                    if (read.AppliedSequence != read.HandlerRuns || read.AppliedSequence < 1)
                    {
                        torn.Add($"{read.AppliedSequence}/{read.HandlerRuns}"); // written together, so read together
                    }
                }
                catch (Exception e)
                {
                    torn.Add(e.GetType().Name);
                }

                Interlocked.Increment(ref reads);
            }
        });
        reader.Start();
        SpinWait.SpinUntil(() => Interlocked.Read(ref reads) > 0); // the reader runs before the writes begin
        // At least 20,000 replacements, and on until the reader has read 1,000 times meanwhile (bounded: 2,000,000).
        var last = 1;
        while (last < 20_000 || (Interlocked.Read(ref reads) < 1_000 && last < 2_000_000))
        {
            last++;
            writer.State = new SubscriberState { AppliedSequence = last, HandlerRuns = last };
            await storage.WriteStateAsync("points", Grain, writer);
        }

        stop.Cancel();
        reader.Join();
        Assert.Empty(torn);
        Assert.True(Interlocked.Read(ref reads) >= 1_000);
        Assert.Equal(last, (await ReadAsync(storage)).State!.AppliedSequence);
    }

    // The blocks' bytes, without the stripes' hash tables.
    private static long Blocks(SiloLocalGrainStorage storage) => storage.NativeBytes - storage.IndexBytes;

    // A block under the tests' key "o-1": every table number and version in these tests is under 128, one byte each.
    private static long Footprint(int[] stateBytes) => SiloLocalGrainStorage.Footprint("o-1".Length, stateBytes.Select(b => (0, 1L, b, false)));

    private static async Task<GrainState<SubscriberState>> ReadAsyncOf(IGrainStorage storage, string stateName)
    {
        var state = new GrainState<SubscriberState>(new SubscriberState());
        await storage.ReadStateAsync(stateName, Grain, state);
        return state;
    }
}
