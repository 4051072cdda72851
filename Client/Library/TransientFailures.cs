using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Orleans.Storage;

namespace OrderFlow.Client;

/// <summary>
/// Which failures of a call to the cluster are worth retrying with the same command: the call may or may not have
/// reached its grain, and the order grain answers a repeated command id with its first result, so a retry is safe.
/// </summary>
public static class TransientFailures
{
    public static bool IsTransient(Exception ex) => ex switch
    {
        // The target silo was declared dead, or the message could not reach it (covers SiloUnavailableException).
        OrleansMessageRejectionException => true,
        // The connection to a gateway broke (the gateway's silo died).
        ConnectionFailedException => true,
        // No answer within the client's response timeout: the silo died with the call in flight, or it is overloaded.
        TimeoutException => true,
        // Two activations met on one record's ETag, or an activation whose failed write could not be re-read refused
        // the call while it deactivates: the next activation reads storage.
        InconsistentStateException => true,
        // The grain could not load its state (storage briefly down, or a silo tearing down): it never ran the command.
        OrleansException { Message: var message } when message.Contains("ReadStateAsync", StringComparison.Ordinal) => true,
        AggregateException { InnerExceptions: [var inner] } => IsTransient(inner),
        _ => false,
    };
}
