using System.CommandLine;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>subscribers status</c>: the lag an operator pages on; <c>subscribers backfill</c>: a new subscriber catches up on existing orders.</summary>
public static class SubscriberCommands
{
    /// <summary>How often a watched backfill's progress line is refreshed.</summary>
    public static readonly TimeSpan WatchInterval = TimeSpan.FromSeconds(1);

    /// <summary>The exit code when Ctrl+C stops the watching (128 + SIGINT, as shells report it); the job goes on.</summary>
    public const int StoppedWatching = 130;

    public static Command Create(CliContext cli)
    {
        var subscribers = new Command("subscribers", "Per-subscriber delivery status, and the backfill of a new subscriber");
        var status = new Command("status", "Per subscriber: orders the relay holds with undelivered work, orders parked for an operator, and the oldest undelivered one's age");
        status.SetAction(parse => cli.WithClientAsync(parse, client => StatusAsync(client, cli.Output)));
        subscribers.Subcommands.Add(status);
        subscribers.Subcommands.Add(Backfill(cli));
        return subscribers;
    }

    private static Command Backfill(CliContext cli)
    {
        var name = CliValues.IdArgument("NAME", "subscriber", "The subscriber to bring up to date, e.g. points");
        var since = CliValues.Single("--since", "TIME", "Only orders created at or after TIME (ISO 8601 with a zone, e.g. 2026-11-27T10:00:00Z); default: every order", CliValues.Instant);
        var includeFinished = new Option<bool>("--include-finished") { Description = "Also received and cancelled orders; without it only open orders are backfilled" };
        var detach = new Option<bool>("--detach") { Description = "Start the job and return at once; it runs in the cluster either way" };
        var attach = new Option<bool>("--attach") { Description = "Watch the subscriber's backfill (running or last) instead of starting one" };
        var backfill = new Command("backfill",
            "Applies every event of existing orders that the subscriber has not applied, in order, exactly once: a job in the cluster, " +
            "watched here until it is done (Ctrl+C stops watching, not the job)")
        {
            name, since, includeFinished, detach, attach,
        };
        backfill.Validators.Add(given =>
        {
            if (given.GetValue(attach) && (given.GetResult(since) is not null || given.GetValue(includeFinished) || given.GetValue(detach)))
            {
                given.AddError("--attach watches a job that runs: it takes no --since, --include-finished or --detach");
            }
        });
        backfill.SetAction((parse, cancellation) => cli.WithClientAsync(parse, client => parse.GetValue(attach)
            ? AttachAsync(client, parse.GetValue(name)!, cli.Output, cli.Error, WatchInterval, cancellation)
            : BackfillAsync(client, parse.GetValue(name)!, parse.GetValue(since), parse.GetValue(includeFinished), parse.GetValue(detach),
                cli.Output, cli.Error, WatchInterval, cancellation)));
        return backfill;
    }

    public static async Task<int> StatusAsync(IClusterClient client, TextWriter output)
    {
        var lag = await client.GetGrain<IOperationsGrain>(0).GetLagAsync();
        var now = DateTimeOffset.UtcNow;
        // A parked order waits for an operator (deadletters list), not for delivery: a column of its own.
        output.WriteLine($"{"subscriber",-16} {"undelivered",11} {"parked",7} oldest undelivered");
        foreach (var row in lag)
        {
            var name = row.Subscriber switch
            {
                "*" => "(not checked)",
                "outbox" => "(outbox)",
                var other => Ids.Printable(other),
            };
            var oldest = row.OldestSince is { } since
                ? string.Create(CultureInfo.InvariantCulture, $"{(now - since).TotalSeconds:0} s ago ({since:u})")
                : "-";
            output.WriteLine($"{name,-16} {row.Orders,11} {row.Parked,7} {oldest}");
        }

        return 0;
    }

    /// <summary>Starts (or re-attaches to) the subscriber's backfill, then watches it unless <paramref name="detach"/>.</summary>
    public static async Task<int> BackfillAsync(IClusterClient client, string subscriber, DateTimeOffset? since, bool includeFinished, bool detach,
        TextWriter output, TextWriter error, TimeSpan interval, CancellationToken cancellation)
    {
        var reply = await client.GetGrain<IOperationsGrain>(0).StartBackfillAsync(subscriber, since, includeFinished);
        switch (reply.Outcome)
        {
            case BackfillOutcome.UnknownSubscriber:
                throw new UsageException(reply.Message);
            case BackfillOutcome.Started or BackfillOutcome.Resumed or BackfillOutcome.Attached:
                output.WriteLine(Ids.Printable(reply.Message, 500));
                break;
            default:
                error.WriteLine($"error: {ErrorCodes.For(reply.Outcome)?.Code ?? reply.Outcome.ToString()}: {Ids.Printable(reply.Message, 500)}");
                return Cli.Refused;
        }

        if (detach)
        {
            output.WriteLine($"the job runs in the cluster; watch it with: subscribers backfill {reply.Progress!.Subscriber} --attach");
            return Cli.Ok;
        }

        return await WatchAsync(client, reply.Progress!.Subscriber, output, error, interval, cancellation);
    }

    /// <summary>Watches the subscriber's backfill: its running job until it ends, or the last one's result.</summary>
    public static async Task<int> AttachAsync(IClusterClient client, string subscriber, TextWriter output, TextWriter error, TimeSpan interval, CancellationToken cancellation)
    {
        var reply = await client.GetGrain<IOperationsGrain>(0).GetBackfillAsync(subscriber);
        switch (reply.Outcome)
        {
            case BackfillOutcome.UnknownSubscriber:
                throw new UsageException(reply.Message);
            case BackfillOutcome.NoJob:
                error.WriteLine($"error: {ErrorCodes.NoBackfill.Code}: {Ids.Printable(reply.Message, 500)}");
                return Cli.Refused;
        }

        return await WatchAsync(client, reply.Progress!.Subscriber, output, error, interval, cancellation);
    }

    /// <summary>
    /// A progress line every <paramref name="interval"/> until the job ends: exit 0 when it is done, 1 when it failed.
    /// Ctrl+C stops watching only (<see cref="StoppedWatching"/>). On a terminal the line is redrawn in place.
    /// </summary>
    private static async Task<int> WatchAsync(IClusterClient client, string subscriber, TextWriter output, TextWriter error, TimeSpan interval, CancellationToken cancellation)
    {
        var ops = client.GetGrain<IOperationsGrain>(0);
        var inPlace = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            stop.Cancel();
        }

        Console.CancelKeyPress += OnCancel;
        try
        {
            while (true)
            {
                var reply = await ops.GetBackfillAsync(subscriber);
                if (reply.Progress is not { } progress)
                {
                    // The silos no longer know the subscriber (or its job): nothing left to watch.
                    error.WriteLine($"error: {reply.Outcome}: {Ids.Printable(reply.Message, 500)}");
                    return Cli.Refused;
                }

                var line = ProgressLine(progress);
                output.Write(inPlace ? $"\r{line,-100}" : line + Environment.NewLine);
                if (progress.State != BackfillState.Running)
                {
                    if (inPlace)
                    {
                        output.WriteLine();
                    }

                    return Ended(progress, output, error);
                }

                try
                {
                    await Task.Delay(interval, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    output.WriteLine();
                    output.WriteLine($"stopped watching; the backfill goes on in the cluster: subscribers backfill {Ids.Printable(subscriber)} --attach");
                    return StoppedWatching;
                }
            }
        }
        finally
        {
            Console.CancelKeyPress -= OnCancel;
        }
    }

    private static int Ended(BackfillProgress p, TextWriter output, TextWriter error)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"backfill {p.Run} of {Ids.Printable(p.Subscriber)} {p.State.ToString().ToLowerInvariant()}: {p.Processed:N0} orders, {p.NeededWork:N0} needed work, " +
            $"{p.SkippedFinished:N0} finished and skipped, {p.Missing:N0} never written, {p.Behind:N0} behind, {p.Parked:N0} parked"));
        if (p.Behind > 0 || p.Parked > 0)
        {
            output.WriteLine("behind orders are retried by the subscriber itself; parked ones wait for an operator (deadletters list)");
        }

        if (p.State == BackfillState.Failed)
        {
            error.WriteLine($"error: the backfill failed: {Ids.Printable(p.Reason ?? "no reason recorded", 500)}");
            return Cli.Refused;
        }

        return Cli.Ok;
    }

    /// <summary><c>audit [########------------]  40%  400/1,000  95/s  ETA 6 s  needed work 380</c>.</summary>
    public static string ProgressLine(BackfillProgress p)
    {
        const int Width = 20;
        var fraction = p.Total > 0 ? Math.Clamp((double)p.Processed / p.Total, 0, 1) : p.State == BackfillState.Done ? 1 : 0;
        var filled = (int)Math.Round(fraction * Width);
        var eta = p.State != BackfillState.Running ? "" : p.Rate > 0 ? $"  ETA {Duration(Math.Max(0, p.Total - p.Processed) / p.Rate)}" : "  ETA -";
        var trouble = p.LastError is { } last ? $"  retrying: {Ids.Printable(last, 120)}" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{Ids.Printable(p.Subscriber)} [{new string('#', filled)}{new string('-', Width - filled)}] {fraction,4:P0}  {p.Processed:N0}/{p.Total:N0}  " +
            $"{p.Rate:0.#}/s{eta}  needed work {p.NeededWork:N0}{trouble}");
    }

    private static string Duration(double seconds) => seconds switch
    {
        < 90 => string.Create(CultureInfo.InvariantCulture, $"{seconds:0} s"),
        < 5400 => string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:0} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:0.#} h"),
    };
}
