using System.Collections.Concurrent;
using System.Diagnostics;
using OrderFlow.Contracts;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Orleans.Storage;

namespace OrderFlow.Tests.Durable;

/// <summary>
/// Sends order commands the way a careful client does during a failover: a retriable error (the silo or gateway is
/// gone, the call timed out, two activations met on an ETag) is retried with the same command, so the same command
/// id — safe, because the order grain answers a repeated id with its first result. Every error is logged with its
/// time; anything else is not retried and is reported as a failure of the test.
/// </summary>
public sealed class RetryingCaller(Stopwatch clock, TimeSpan giveUpAfter)
{
    public ConcurrentQueue<(TimeSpan At, string Type, string Message)> Errors { get; } = new();

    public ConcurrentQueue<string> Failures { get; } = new();

    public static bool IsRetriable(Exception ex) => ex switch
    {
        // The target silo was declared dead, or the message could not reach it (covers SiloUnavailableException).
        OrleansMessageRejectionException => true,
        ConnectionFailedException => true,
        // The call went to a silo that died before answering; the client gave up after ResponseTimeout.
        TimeoutException => true,
        // A stale activation and a new one wrote the same record: the loser re-read its state and threw.
        InconsistentStateException => true,
        // The grain could not load its state, so it never ran the command. Seen when the call lands on the silo
        // being killed: TestCluster's in-process kill closes the storage providers under activations that are
        // still starting (a real process kill cannot do that). Nothing was written, so a retry is safe.
        OrleansException { Message: var message } when message.Contains("during ReadStateAsync", StringComparison.Ordinal) => true,
        _ => false,
    };

    public async Task<CommandResult?> SendAsync(string what, Func<Task<CommandResult>> call)
    {
        var giveUpAt = clock.Elapsed + giveUpAfter;
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception ex) when (IsRetriable(ex))
            {
                Errors.Enqueue((clock.Elapsed, ex.GetType().Name, ex.Message));
                if (clock.Elapsed > giveUpAt)
                {
                    Failures.Enqueue($"{what}: still failing after {giveUpAfter.TotalSeconds:0} s: {ex.GetType().Name}: {ex.Message}");
                    return null;
                }
            }
            catch (Exception ex)
            {
                Errors.Enqueue((clock.Elapsed, ex.GetType().Name, ex.Message));
                Failures.Enqueue($"{what}: non-retriable {ex.GetType().Name}: {ex.Message}");
                return null;
            }
        }
    }
}
