using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>
/// <c>bench --profile azure</c>: the cost of durability, on one silo of the Azure profile (<c>./bench.sh --profile
/// azure</c> starts Azurite and the silo). Counts every request the silo sends to storage (the silo's
/// <c>StorageOperationCounter</c>, at the HTTP pipeline of the clients the grain storage and queue adapter use) while
/// a batch of orders goes through its whole life, and divides by the events: a number that does not depend on the
/// machine. Background requests (idle queue polls, membership heartbeats) are measured alone first and reported
/// apart. Durable throughput is reported next to the emulator's own raw capacity, measured in the same run from this
/// process, because on this machine the emulator (one Node.js thread per service) is the bound.
/// </summary>
public static class DurableBench
{
    /// <summary>Tables whose requests are the cluster's upkeep, paid per second and per silo, not per event.</summary>
    private static readonly HashSet<string> ClusterTables = new(StringComparer.Ordinal) { "OrleansSiloInstances" };

    /// <summary>Seconds after which an idle pooled HTTP connection is closed (SocketsHttpHandler's default of 1 minute), and a little more.</summary>
    private const int PooledConnectionIdleSeconds = 65;

    /// <summary>The azure profile's settings (<c>bench --profile azure</c>).</summary>
    public sealed record Settings(int Orders, int Concurrency, int IdleSeconds, int BaselineSeconds, string? Connection,
        Dictionary<string, int> EmulatorPids, string OutDir, TimeSpan DrainTimeout, int MemoryOrders = 0)
    {
        public static Settings Read(SymbolResult given, BenchOptions o)
        {
            o.EnsureOnly(given, BenchOptions.Azure, o.Orders, o.Concurrency, o.IdleSeconds, o.BaselineSeconds, o.AzureStorage, o.EmulatorPids,
                o.Out, o.DrainTimeoutSeconds, o.MemoryOrders);
            return new Settings(
                BenchOptions.Number(given, o.Orders, 200, 10, 100_000),
                BenchOptions.Number(given, o.Concurrency, 16, 1, 1024),
                BenchOptions.Number(given, o.IdleSeconds, 10, 1, 600),
                BenchOptions.Number(given, o.BaselineSeconds, 5, 1, 600),
                given.GetValue(o.AzureStorage),
                ParsePids(given.GetValue(o.EmulatorPids) ?? []),
                given.GetValue(o.Out) ?? "artifacts",
                TimeSpan.FromSeconds(BenchOptions.Number(given, o.DrainTimeoutSeconds, 600, 1, 3600)),
                BenchOptions.Number(given, o.MemoryOrders, 0, 0, 100_000));
        }
    }

    public static async Task<int> RunAsync(IClusterClient client, Settings args, TextWriter output)
    {
        var (orders, concurrency, idleSeconds, baselineSeconds, connection, emulatorPids, outDir, drainTimeout, memoryOrders) = args;

        var total = Stopwatch.StartNew();
        var runId = $"d{DateTime.UtcNow:HHmmss}{Random.Shared.Next(100):00}";
        var probe = new SiloProbe(client);
        if (await probe.FirstSampleAsync() is null)
        {
            return 1;
        }

        if ((await probe.Control.GetStorageOperationsAsync()).Count == 0)
        {
            Console.Error.WriteLine("error: the silo has sent no request to Azure Storage: it does not run the Azure profile (Silo:Profile=Azure); ./bench.sh --profile azure starts one that does");
            return 1;
        }

        var subscribers = await client.GetGrain<IOperationsGrain>(0).GetSubscribersAsync();
        var settings = $"orders={orders} concurrency={concurrency} idle_seconds={idleSeconds} baseline_seconds={baselineSeconds} memory_orders={memoryOrders}";
        output.WriteLine($"bench {runId} (profile azure): {settings}");
        output.WriteLine($"  machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; load average {BenchCommand.LoadAverage()}");
        output.WriteLine($"  subscribers: {string.Join(", ", subscribers)}");

        output.WriteLine("  warm-up (tables, queues, first activations) ...");
        var warmPlans = BenchOrders.Create($"{runId}-w", Math.Min(20, orders));
        var warmBefore = await probe.SampleAsync();
        await InventoryNeeds.For(warmPlans).ApplyAsync(client, concurrency);
        var warmOps = await probe.Control.GetStorageOperationsAsync();
        await BenchChecks.RunOrdersAsync(client, warmPlans, concurrency);
        await probe.WaitAppliedAsync("warm-up", warmBefore, warmPlans, subscribers.Count, drainTimeout);
        await WaitDeletedAsync(probe, warmOps, drainTimeout);

        var phases = memoryOrders > 0 ? 4 : 3;
        output.WriteLine($"  1/{phases} background: {idleSeconds} s with no work ...");
        var idleStart = await probe.Control.GetStorageOperationsAsync();
        var idleClock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        var idle = Delta(idleStart, await probe.Control.GetStorageOperationsAsync());
        var idleElapsed = idleClock.Elapsed.TotalSeconds;

        RawBaseline? raw = null;
        if (connection is not null)
        {
            output.WriteLine($"  2/{phases} raw emulator baseline: {baselineSeconds} s of table upserts, then of queue put+get+delete, {concurrency} callers ...");
            raw = await RawBaseline.MeasureAsync(connection, runId, concurrency, TimeSpan.FromSeconds(baselineSeconds));
        }

        output.WriteLine($"  3/{phases} pipeline: {orders} orders x place, pay, ship, receive; {concurrency} callers ...");
        var plans = BenchOrders.Create($"{runId}-p", orders);
        // The stock and coupons the orders reserve, outside the measured window.
        await InventoryNeeds.For(plans).ApplyAsync(client, concurrency);
        var before = await probe.SampleAsync();
        var opsBefore = await probe.Control.GetStorageOperationsAsync();
        var emulatorBefore = emulatorPids.ToDictionary(p => p.Key, p => ProcessCpu.Seconds(p.Value));
        var clock = Stopwatch.StartNew();
        var refused = await BenchChecks.RunOrdersAsync(client, plans, concurrency);
        var commandSeconds = clock.Elapsed.TotalSeconds;
        var after = await probe.WaitAppliedAsync("pipeline", before, plans, subscribers.Count, drainTimeout);
        var applySeconds = clock.Elapsed.TotalSeconds;
        var emulatorCpu = emulatorPids.ToDictionary(p => p.Key, p => 100 * (ProcessCpu.Seconds(p.Value) - emulatorBefore[p.Key]) / applySeconds);
        // The queue messages are deleted after delivery: wait until every message put in the window is deleted.
        var opsAfter = await WaitDeletedAsync(probe, opsBefore, drainTimeout);
        var windowSeconds = clock.Elapsed.TotalSeconds;
        var lost = await BenchChecks.CountLostAsync(client, plans);

        DurableMemory? memory = null;
        if (memoryOrders > 0)
        {
            // What the silo keeps per order once every grain of it is deactivated: the Azure profile's state is in the
            // tables, so this is Orleans' own bookkeeping (the embedded bench's figure includes its in-silo store).
            // Measured on orders of their own after the storage window, once the pipeline's orders have grown the
            // silo's bounded caches (the grain directory's, the catalog's): a fresh silo's first orders pay that once.
            // Each sample waits until the storage clients' pooled HTTP connections have closed (a minute idle, .NET's
            // default): the pool is sized by the run's peak of concurrent requests (hundreds of connections of ~10 KB
            // each against the emulator), not by its orders, and would otherwise be counted as theirs.
            var rest = TimeSpan.FromSeconds(Math.Max(idleSeconds, PooledConnectionIdleSeconds));
            output.WriteLine($"  4/{phases} memory: {memoryOrders} more orders, deactivated; the silo's heap after a full GC before and after, {rest.TotalSeconds:0} s idle each ...");
            var memoryPlans = BenchOrders.Create($"{runId}-m", memoryOrders);
            await InventoryNeeds.For(memoryPlans).ApplyAsync(client, concurrency);
            await probe.DeactivateIdleAsync();
            await Task.Delay(rest);
            var empty = await probe.SampleAsync(fullGc: true);
            var memoryRefused = await BenchChecks.RunOrdersAsync(client, memoryPlans, concurrency);
            await probe.WaitAppliedAsync("memory", empty, memoryPlans, subscribers.Count, drainTimeout);
            var memoryLost = await BenchChecks.CountLostAsync(client, memoryPlans);
            var activationsLeft = await probe.DeactivateIdleAsync();
            await Task.Delay(rest);
            var rested = await probe.SampleAsync(fullGc: true);
            memory = new DurableMemory(memoryOrders, (double)(rested.HeldBytes - empty.HeldBytes) / memoryOrders, activationsLeft, rested.HeldBytes,
                memoryRefused, memoryLost);
        }

        var events = BenchOrders.Events(plans);
        var window = Delta(opsBefore, opsAfter);
        var rows = window.Select(c => new StorageRow(c.Service, c.Resource, c.Operation, c.Requests, c.Failed, c.Messages,
                (double)c.Requests / events, IsBackground(c), Rate(idle, c, idleElapsed) * windowSeconds))
            .ToList();
        var perEvent = rows.Where(r => !r.Background).Sum(r => r.Requests) / (double)events;
        var report = new DurableReport(runId, DateTimeOffset.UtcNow - total.Elapsed, settings, subscribers, orders, events,
            events * subscribers.Count, commandSeconds, applySeconds, windowSeconds, refused, lost,
            orders / applySeconds, events / applySeconds, events * subscribers.Count / applySeconds,
            100 * (after.CpuSeconds - before.CpuSeconds) / applySeconds, emulatorCpu,
            perEvent, rows.Sum(r => r.Requests) / (double)events, rows, idle.Sum(c => c.Requests) / idleElapsed, raw, memory, total.Elapsed.TotalSeconds);

        Write(report, output);
        var path = await BenchChecks.WriteJsonAsync(report, outDir, "bench-azure");
        output.WriteLine($"  json: {path}; load average now {BenchCommand.LoadAverage()}");
        output.WriteLine(report.ResultLine());
        return report.TotalLost == 0 && report.TotalRefused == 0 ? 0 : 1;
    }

    /// <summary>Idle queue polls and membership upkeep: requests paid per second, whatever the load.</summary>
    private static bool IsBackground(StorageOperationCount c) =>
        c.Operation == "get (empty)" || ClusterTables.Contains(c.Resource);

    private static double Rate(IReadOnlyList<StorageOperationCount> idle, StorageOperationCount row, double seconds) =>
        idle.Where(i => i.Service == row.Service && i.Resource == row.Resource && i.Operation == row.Operation).Sum(i => i.Requests) / seconds;

    private static Dictionary<string, int> ParsePids(IReadOnlyList<string> values)
    {
        var pids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            var eq = value.IndexOf('=');
            if (eq <= 0 || !int.TryParse(value[(eq + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || !ProcessCpu.Exists(pid))
            {
                throw new UsageException($"--emulator-pid must be SERVICE=PID of a running process, was '{value}'");
            }

            pids[value[..eq]] = pid;
        }

        return pids;
    }

    /// <summary>Waits until the queue deletes since <paramref name="from"/> caught up with the puts; returns the counters then.</summary>
    private static async Task<IReadOnlyList<StorageOperationCount>> WaitDeletedAsync(SiloProbe probe, IReadOnlyList<StorageOperationCount> from, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var now = await probe.Control.GetStorageOperationsAsync();
            var delta = Delta(from, now);
            long Count(string operation) => delta.Where(c => c.Service == "queue" && c.Operation == operation).Sum(c => c.Requests - c.Failed);
            if (Count("delete") >= Count("put"))
            {
                return now;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"queue deletes: {Count("delete")} of {Count("put")} messages deleted after {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }

    private static IReadOnlyList<StorageOperationCount> Delta(IReadOnlyList<StorageOperationCount> before, IReadOnlyList<StorageOperationCount> after)
    {
        var start = before.ToDictionary(c => (c.Service, c.Resource, c.Operation));
        return after
            .Select(c => start.TryGetValue((c.Service, c.Resource, c.Operation), out var b)
                ? c with { Requests = c.Requests - b.Requests, Failed = c.Failed - b.Failed, Messages = c.Messages - b.Messages }
                : c)
            .Where(c => c.Requests > 0)
            .ToArray();
    }

    private static void Write(DurableReport r, TextWriter o)
    {
        o.WriteLine();
        o.WriteLine($"storage requests while {r.Orders:N0} orders ({r.Events:N0} events, {r.Deliveries:N0} deliveries) went through, {r.WindowSeconds:0.0} s window:");
        o.WriteLine($"{"service",-7} {"resource",-22} {"operation",-14} {"requests",9} {"failed",7} {"per event",10} {"idle rate x window",19}");
        o.WriteLine(new string('-', 94));
        foreach (var row in r.Storage.OrderBy(x => x.Background).ThenBy(x => x.Service, StringComparer.Ordinal).ThenByDescending(x => x.Requests))
        {
            var name = row.Operation + (row.Messages > 0 ? $" ({row.Messages} msgs)" : "");
            o.WriteLine($"{row.Service,-7} {row.Resource,-22} {name,-14} {row.Requests,9:N0} {row.Failed,7:N0} {row.PerEvent,10:0.00} {row.IdleExpectation,19:0}{(row.Background ? "  background" : "")}");
        }

        o.WriteLine($"  storage operations per event: {r.StorageOpsPerEvent:0.00} (background excluded), {r.AllRequestsPerEvent:0.00} with everything in the window; idle: {r.IdleRequestsPerSecond:0.0} requests/s");
        o.WriteLine();
        o.WriteLine($"durable throughput: {r.OrdersPerSecond:0.0} orders/s, {r.EventsPerSecond:0.0} events/s, {r.DeliveriesPerSecond:0} deliveries/s " +
                    $"(commands {r.CommandSeconds:0.0} s, all applied {r.ApplySeconds:0.0} s); refused {r.Refused}, lost {r.Lost}");
        o.WriteLine($"  CPU during the run: silo {r.SiloCpuPercent:0} %{string.Concat(r.EmulatorCpuPercent.Select(e => $", emulator {e.Key} {e.Value:0} %"))} (100 % = one core)");
        if (r.Raw is { } raw)
        {
            o.WriteLine($"  raw emulator, same callers, no Orleans: {raw.TableUpsertsPerSecond:0} table upserts/s, {raw.QueueRequestsPerSecond:0} queue requests/s " +
                        $"-> bound {r.EmulatorBoundEventsPerSecond:0} events/s at {r.PerEvent("table"):0.00} table + {r.PerEvent("queue"):0.00} queue requests per event");
        }

        if (r.Memory is { } m)
        {
            o.WriteLine($"silo memory per deactivated full order ({m.Orders:N0} orders; managed heap after a full GC, against the idle silo before them): " +
                        $"{m.BytesPerOrder:0} B ({m.ActivationsLeft} activations left, heap {m.HeapBytes / 1048576.0:0.0} MB); refused {m.Refused}, lost {m.Lost}");
        }

        o.WriteLine($"  total {r.TotalSeconds:0} s");
    }

    /// <summary>CPU time of another process from /proc (Linux), for the emulator's share of the machine.</summary>
    private static class ProcessCpu
    {
        public static bool Exists(int pid) => File.Exists($"/proc/{pid}/stat");

        public static double Seconds(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // Fields 14 and 15 of stat (utime, stime), counted from the state field (3rd) here; clock ticks of 1/100 s.
                return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
            }
            catch (IOException)
            {
                return double.NaN;
            }
        }
    }
}

/// <summary>
/// The memory phase (<c>--memory-orders</c>): the silo's managed heap per order after its orders were deactivated and the
/// silo idled; its own orders, so its refusals and losses are its own too.
/// </summary>
public sealed record DurableMemory(int Orders, double BytesPerOrder, int ActivationsLeft, long HeapBytes, int Refused, long Lost);

/// <summary>One (service, resource, operation) row of the durable bench's window.</summary>
public sealed record StorageRow(string Service, string Resource, string Operation, long Requests, long Failed, long Messages,
    double PerEvent, bool Background, double IdleExpectation);

/// <summary>The emulator's capacity without Orleans: the same callers writing rows and queue messages directly.</summary>
public sealed record RawBaseline(double TableUpsertsPerSecond, double QueueRequestsPerSecond)
{
    public static async Task<RawBaseline> MeasureAsync(string connection, string runId, int concurrency, TimeSpan duration)
    {
        var table = new TableServiceClient(connection).GetTableClient($"BenchRaw{runId}");
        await table.CreateIfNotExistsAsync();
        var payload = new string('x', 200);
        long upserts = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
        {
            for (var i = 0; clock.Elapsed < duration; i++)
            {
                await table.UpsertEntityAsync(new TableEntity($"p{worker}", $"r{i % 50}") { ["Data"] = payload });
                Interlocked.Increment(ref upserts);
            }
        }));
        var tableRate = upserts / clock.Elapsed.TotalSeconds;
        await table.DeleteAsync();

        var queue = new QueueServiceClient(connection).GetQueueClient($"bench-raw-{runId}");
        await queue.CreateIfNotExistsAsync();
        long requests = 0;
        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (clock.Elapsed < duration)
            {
                await queue.SendMessageAsync(payload);
                var received = await queue.ReceiveMessagesAsync(1);
                Interlocked.Add(ref requests, 2);
                foreach (var message in received.Value)
                {
                    await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt);
                    Interlocked.Increment(ref requests);
                }
            }
        }));
        var queueRate = requests / clock.Elapsed.TotalSeconds;
        await queue.DeleteAsync();
        return new RawBaseline(tableRate, queueRate);
    }
}

/// <summary>Everything one durable bench run measured.</summary>
public sealed record DurableReport(
    string RunId, DateTimeOffset StartedAt, string Settings, IReadOnlyList<string> Subscribers, int Orders, long Events, long Deliveries,
    double CommandSeconds, double ApplySeconds, double WindowSeconds, int Refused, long Lost,
    double OrdersPerSecond, double EventsPerSecond, double DeliveriesPerSecond, double SiloCpuPercent, IReadOnlyDictionary<string, double> EmulatorCpuPercent,
    double StorageOpsPerEvent, double AllRequestsPerEvent, IReadOnlyList<StorageRow> Storage, double IdleRequestsPerSecond, RawBaseline? Raw,
    DurableMemory? Memory, double TotalSeconds)
{
    /// <summary>Orders lost in every phase: the pipeline's (<see cref="Lost"/>, whose rates the report gives) and the memory phase's.</summary>
    public long TotalLost => Lost + (Memory?.Lost ?? 0);

    /// <summary>Commands refused in every phase.</summary>
    public int TotalRefused => Refused + (Memory?.Refused ?? 0);

    /// <summary>Requests of one service ("table" or "queue") per event, background excluded.</summary>
    public double PerEvent(string service) => Storage.Where(x => x.Service == service && !x.Background).Sum(x => x.Requests) / (double)Events;

    /// <summary>
    /// Events/s the emulator could take at this run's requests per event, from its raw rates: each service is its own
    /// process, so the slower one bounds it. NaN without a raw baseline.
    /// </summary>
    public double EmulatorBoundEventsPerSecond
    {
        get
        {
            if (Raw is null)
            {
                return double.NaN;
            }

            var table = PerEvent("table");
            var queue = PerEvent("queue");
            return Math.Min(table > 0 ? Raw.TableUpsertsPerSecond / table : double.PositiveInfinity,
                queue > 0 ? Raw.QueueRequestsPerSecond / queue : double.PositiveInfinity);
        }
    }

    public string ResultLine()
    {
        static string F(double value, string format) => BenchReport.F(value, format);
        return "RESULT profile=azure " +
               $"orders_per_s={F(OrdersPerSecond, "0.0")} storage_ops_per_event={F(StorageOpsPerEvent, "0.00")} " +
               $"table_ops_per_event={F(PerEvent("table"), "0.00")} queue_ops_per_event={F(PerEvent("queue"), "0.00")} " +
               $"events_per_s={F(EventsPerSecond, "0.0")} emulator_bound_events_per_s={(Raw is null ? "n/a" : F(EmulatorBoundEventsPerSecond, "0"))} " +
               $"idle_requests_per_s={F(IdleRequestsPerSecond, "0.0")} bytes_per_order={(Memory is null ? "n/a" : F(Memory.BytesPerOrder, "0"))} lost={TotalLost}";
    }
}
