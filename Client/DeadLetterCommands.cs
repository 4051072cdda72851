using System.CommandLine;
using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>deadletters list|retry|skip</c>.</summary>
public static class DeadLetterCommands
{
    public static Command Create(CliContext cli)
    {
        var deadLetters = new Command("deadletters", "Lists parked orders, resumes them or skips their parked event");

        var only = CliValues.IdOption("--subscriber", "subscriber", "Only this subscriber's parked orders");
        var list = new Command("list", "Lists parked orders, with a count per subscriber") { only };
        list.SetAction(parse => cli.WithClientAsync(parse, client => ListAsync(client, parse.GetValue(only), cli.Output)));
        deadLetters.Subcommands.Add(list);

        var (retrySubscriber, retryOrder) = (SubscriberArgument(), OrderIdArgument());
        retryOrder.Arity = ArgumentArity.ZeroOrOne;
        var all = new Option<bool>("--all") { Description = "Resume every parked order of the subscriber (instead of ORDER)" };
        var since = CliValues.Single("--since", "TIME", "With --all: only orders whose first failure is at or after TIME (ISO 8601, e.g. 2026-11-27T10:00:00Z)", CliValues.Instant);
        var retry = new Command("retry", "Resumes a parked order from its parked event, or with --all every parked order of a subscriber")
        {
            retrySubscriber, retryOrder, all, since,
        };
        retry.Validators.Add(given =>
        {
            var (order, bulk, from) = (given.GetResult(retryOrder) is not null, given.GetValue(all), given.GetResult(since) is not null);
            if (bulk && order)
            {
                given.AddError("give either ORDER or --all, not both");
            }
            else if (!bulk && !order)
            {
                given.AddError("missing ORDER (or --all for every parked order of the subscriber)");
            }
            else if (from && !bulk)
            {
                given.AddError("--since goes with --all");
            }
        });
        retry.SetAction(parse => cli.WithClientAsync(parse, client => parse.GetValue(all)
            ? RetryAllAsync(client, parse.GetValue(retrySubscriber)!, parse.GetValue(since), cli.Output, cli.Error)
            : RetryAsync(client, parse.GetValue(retrySubscriber)!, parse.GetValue(retryOrder)!, cli.Output, cli.Error)));
        deadLetters.Subcommands.Add(retry);

        var (skipSubscriber, skipOrder) = (SubscriberArgument(), OrderIdArgument());
        var sequence = new Argument<long>("SEQ")
        {
            Description = "The parked event's sequence number (deadletters list shows it)",
            CustomParser = result => CliValues.Read(result, CliValues.Sequence),
        };
        var skip = new Command("skip", "Skips a parked order's parked event and goes on with the next") { skipSubscriber, skipOrder, sequence };
        skip.SetAction(parse => cli.WithClientAsync(parse, client =>
            SkipAsync(client, parse.GetValue(skipSubscriber)!, parse.GetValue(skipOrder)!, parse.GetValue(sequence), cli.Output, cli.Error)));
        deadLetters.Subcommands.Add(skip);
        return deadLetters;
    }

    private static Argument<string> SubscriberArgument() => CliValues.IdArgument("SUBSCRIBER", "subscriber", "The subscriber's name, e.g. points");

    private static Argument<string> OrderIdArgument() => CliValues.IdArgument("ORDER", "order id", "The parked order's id");

    public static async Task<int> ListAsync(IClusterClient client, string? subscriber, TextWriter output)
    {
        var ops = client.GetGrain<IOperationsGrain>(0);
        var known = await ops.GetSubscribersAsync();
        if (subscriber is not null && !known.Contains(subscriber, StringComparer.OrdinalIgnoreCase))
        {
            throw new UsageException($"no subscriber named '{subscriber}'; known: {string.Join(", ", known.Select(name => Ids.Printable(name)))}");
        }

        // The list first: it drops stale index entries, so the counts read afterwards agree with its rows.
        var letters = await ops.ListDeadLettersAsync(subscriber);
        var counts = await ops.CountDeadLettersAsync();
        output.WriteLine("parked orders per subscriber: " + string.Join(", ", counts.Select(c => $"{Ids.Printable(c.Key)}={c.Value}")));
        foreach (var letter in letters)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Ids.Printable(letter.Subscriber)} order={Ids.Printable(letter.OrderId, Ids.MaxLength)} seq={letter.Sequence} event={Ids.Printable(letter.EventKind)} attempts={letter.Attempts} " +
                $"first={letter.FirstFailureAt:u} last={letter.LastFailureAt:u} error={Ids.Printable(letter.Error, 500)}"));
        }

        return 0;
    }

    public static async Task<int> RetryAsync(IClusterClient client, string subscriber, string orderId, TextWriter output, TextWriter error) =>
        Report(await client.GetGrain<IOperationsGrain>(0).RetryAsync(subscriber, orderId), output, error);

    /// <summary>Resumes every parked order of <paramref name="subscriber"/> (first failure at or after <paramref name="since"/>).</summary>
    public static async Task<int> RetryAllAsync(IClusterClient client, string subscriber, DateTimeOffset? since, TextWriter output, TextWriter error)
    {
        var ops = client.GetGrain<IOperationsGrain>(0);
        var known = await ops.GetSubscribersAsync();
        if (!known.Contains(subscriber, StringComparer.OrdinalIgnoreCase))
        {
            throw new UsageException($"no subscriber named '{subscriber}'; known: {string.Join(", ", known.Select(name => Ids.Printable(name)))}");
        }

        var result = await ops.RetryAllAsync(subscriber, since);
        output.WriteLine($"{subscriber}: resumed {result.Resumed}, failed {result.Failed}, no longer parked {result.NotParked}");
        foreach (var failure in result.Failures)
        {
            error.WriteLine($"error: {Ids.Printable(failure, 500)}");
        }

        return result.Failed == 0 ? 0 : 1;
    }

    public static async Task<int> SkipAsync(IClusterClient client, string subscriber, string orderId, long sequence, TextWriter output, TextWriter error) =>
        Report(await client.GetGrain<IOperationsGrain>(0).SkipAsync(subscriber, orderId, sequence), output, error);

    private static int Report(DeadLetterActionResult result, TextWriter output, TextWriter error)
    {
        if (result.Outcome is DeadLetterActionOutcome.Resumed or DeadLetterActionOutcome.Skipped)
        {
            output.WriteLine(Ids.Printable(result.Message, 500));
            return 0;
        }

        var failure = ErrorCodes.For(result.Outcome)!;
        error.WriteLine($"error: {failure.Code}: {Ids.Printable(result.Message, 500)}");
        return failure.ExitCode!.Value;
    }
}
