using System.Globalization;
using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary><c>deadletters list|retry|skip</c>.</summary>
public static class DeadLetterCommands
{
    public const string Usage = """
          deadletters list [--subscriber NAME]
          deadletters retry SUBSCRIBER ORDER
          deadletters skip SUBSCRIBER ORDER SEQ
        """;

    public static async Task<int> RunAsync(IClusterClient client, CliArguments args, TextWriter output)
    {
        var ops = client.GetGrain<IOperationsGrain>(0);
        var verb = args.Positional0(1, "deadletters verb (list, retry, skip)");
        switch (verb)
        {
            case "list":
                var subscriber = args.Optional("subscriber");
                args.EnsureAllUsed(2);
                var known = await ops.GetSubscribersAsync();
                if (subscriber is not null && !known.Contains(subscriber, StringComparer.OrdinalIgnoreCase))
                {
                    throw new UsageException($"no subscriber named '{subscriber}'; known: {string.Join(", ", known)}");
                }

                // The list first: it drops stale index entries, so the counts read afterwards agree with its rows.
                var letters = await ops.ListDeadLettersAsync(subscriber);
                var counts = await ops.CountDeadLettersAsync();
                output.WriteLine("parked orders per subscriber: " + string.Join(", ", counts.Select(c => $"{c.Key}={c.Value}")));
                foreach (var letter in letters)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{letter.Subscriber} order={letter.OrderId} seq={letter.Sequence} event={letter.EventKind} attempts={letter.Attempts} " +
                        $"first={letter.FirstFailureAt:u} last={letter.LastFailureAt:u} error={letter.Error}"));
                }

                return 0;

            case "retry":
                var retried = await ops.RetryAsync(args.Positional0(2, "subscriber"), args.Positional0(3, "order id"));
                args.EnsureAllUsed(4);
                return Report(retried, output);

            case "skip":
                var sequenceText = args.Positional0(4, "sequence");
                if (!long.TryParse(sequenceText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var sequence) || sequence < 1)
                {
                    throw new UsageException($"sequence must be a positive whole number, was '{sequenceText}'");
                }

                var skipped = await ops.SkipAsync(args.Positional0(2, "subscriber"), args.Positional0(3, "order id"), sequence);
                args.EnsureAllUsed(5);
                return Report(skipped, output);

            default:
                throw new UsageException($"unknown deadletters verb '{verb}' (list, retry, skip)");
        }
    }

    private static int Report(DeadLetterActionResult result, TextWriter output)
    {
        if (result.Outcome is DeadLetterActionOutcome.Resumed or DeadLetterActionOutcome.Skipped)
        {
            output.WriteLine(result.Message);
            return 0;
        }

        Console.Error.WriteLine($"error: {result.Outcome}: {result.Message}");
        return 1;
    }
}
