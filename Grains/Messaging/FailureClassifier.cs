using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Azure;
using OrderFlow.Grains.Hosting;
using Orleans.Runtime.Messaging;
using Orleans.Serialization;
using Orleans.Storage;

namespace OrderFlow.Grains.Messaging;

/// <summary>What a failed handler attempt says about the event.</summary>
public enum FailureKind
{
    /// <summary>The handler failed on this event: counts as an attempt, and after the last one the order parks.</summary>
    Handler = 1,

    /// <summary>
    /// Infrastructure the handler depends on was unavailable (storage down or busy, a silo unreachable, a call timed
    /// out, an ETag race): says nothing about the event, so it is retried on its own clock and not counted as an attempt
    /// until <see cref="Hosting.TransientRetryOptions.GiveUpAfter"/>.
    /// </summary>
    Transient = 2,
}

/// <summary>A classified failure: its kind, and the exception in the chain that decided it.</summary>
public readonly record struct ClassifiedFailure(FailureKind Kind, Exception Cause, string Description)
{
    public bool IsTransient => Kind == FailureKind.Transient;
}

/// <summary>
/// Tells transient infrastructure failures from handler failures. The rule looks at the exception and every exception
/// inside it (inner exceptions, and each of an <see cref="AggregateException"/>'s), because that is how infrastructure
/// errors reach a handler: a ledger grain's failed <c>WriteStateAsync</c> throws Orleans' <see cref="OrleansException"/>
/// "Error from storage provider …" with the provider's exception inside (Orleans' <c>StateStorageBridge</c> wraps every
/// provider error that is not already an <see cref="OrleansException"/>), the ledger rethrows it after its re-read, and
/// the grain call carries the pair to the subscriber unchanged (the storage error as the inner exception).
/// <para>
/// Transient when any exception in the chain is one of: <see cref="StorageFaultException"/> (the injected outage);
/// <see cref="RequestFailedException"/> with status 408, 429 or 5xx, or with no status (no response: network);
/// <see cref="TimeoutException"/> (also Orleans' response timeout); <see cref="OrleansMessageRejectionException"/>
/// (<see cref="SiloUnavailableException"/> is one); <see cref="ConnectionFailedException"/>;
/// <see cref="InconsistentStateException"/> (an ETag race: the writer re-read, a retry is right);
/// <see cref="System.Net.Http.HttpRequestException"/> and <see cref="SocketException"/> (the network below a request).
/// Everything else is a handler failure — also a storage error that is not in that list (a 400 or 413 from the table
/// service, a state that does not serialize), which no amount of waiting fixes — and a drill's injected failure
/// (<see cref="DrillFailureException"/>) is always one, wherever it sits in the chain.
/// </para>
/// </summary>
public static partial class FailureClassifier
{
    /// <summary>Longest error text kept in an inbox or a dead letter: the dead-letter index holds thousands per row.</summary>
    public const int MaxErrorLength = 300;

    // Guards against a pathological chain; real ones are two or three deep.
    private const int MaxLinks = 32;

    // Exception types that are transient whatever they say, by full name: the same check for an exception that
    // crossed a silo whose receiver could not rebuild its type (Orleans then hands over an
    // UnavailableExceptionFallbackException that names the type).
    private static readonly HashSet<string> TransientTypeNames = new(StringComparer.Ordinal)
    {
        typeof(StorageFaultException).FullName!,
        typeof(TimeoutException).FullName!,
        typeof(OrleansMessageRejectionException).FullName!,
        typeof(SiloUnavailableException).FullName!,
        typeof(ConnectionFailedException).FullName!,
        typeof(InconsistentStateException).FullName!,
        typeof(System.Net.Http.HttpRequestException).FullName!,
        typeof(SocketException).FullName!,
        "Orleans.Storage.TableStorageUpdateConditionNotSatisfiedException",
    };

    public static ClassifiedFailure Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Exception? transient = null;
        foreach (var link in Links(exception))
        {
            if (link is DrillFailureException)
            {
                return new ClassifiedFailure(FailureKind.Handler, link, Describe(exception, link));
            }

            if (transient is null && IsTransient(link))
            {
                transient = link;
            }
        }

        return transient is null
            ? new ClassifiedFailure(FailureKind.Handler, exception, Describe(exception, exception))
            : new ClassifiedFailure(FailureKind.Transient, transient, Describe(exception, transient));
    }

    /// <summary>Whether this one exception, on its own, is a transient infrastructure failure (its inner exceptions aside).</summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        StorageFaultException => true,
        RequestFailedException request => IsTransientStatus(StatusOf(request)),
        TimeoutException => true,
        OrleansMessageRejectionException => true,
        ConnectionFailedException => true,
        InconsistentStateException => true,
        System.Net.Http.HttpRequestException => true,
        SocketException => true,
        UnavailableExceptionFallbackException fallback => fallback.ExceptionType is { } name
            && (TransientTypeNames.Contains(name)
                || (name == typeof(RequestFailedException).FullName && IsTransientStatus(StatusInMessage(fallback.Message)))),
        _ => false,
    };

    /// <summary>No response (0: the network), a request timeout (408), throttling (429) or a server error (5xx).</summary>
    public static bool IsTransientStatus(int status) => status is 0 or 408 or 429 or >= 500;

    /// <summary>
    /// The HTTP status of a storage request. <see cref="RequestFailedException.Status"/> does not survive a grain call
    /// between silos (Orleans' exception codec carries message, stack, inner exceptions and data, not the type's own
    /// properties), but the SDK's message of a failed response says <c>Status: 503 (Service Unavailable)</c>.
    /// </summary>
    public static int StatusOf(RequestFailedException exception) =>
        exception.Status != 0 ? exception.Status : StatusInMessage(exception.Message);

    /// <summary>The chain "outer &gt; … &gt; cause: first line of the cause's message", at most <see cref="MaxErrorLength"/> characters.</summary>
    public static string Describe(Exception exception, Exception cause)
    {
        var types = new List<string>();
        foreach (var link in Links(exception))
        {
            types.Add(link.GetType().Name);
            if (ReferenceEquals(link, cause))
            {
                break;
            }
        }

        var message = cause.Message.AsSpan();
        var lineEnd = message.IndexOfAny('\r', '\n');
        var text = $"{string.Join(" > ", types)}: {(lineEnd >= 0 ? message[..lineEnd] : message).Trim()}";
        return Truncate(text);
    }

    /// <summary>The error of an event whose transient failures outlasted <c>GiveUpAfter</c> and now count as attempts.</summary>
    public static string GaveUpWaiting(TimeSpan failingFor, string lastTransientError) =>
        Truncate($"transient failures for {Duration(failingFor)}: {lastTransientError}");

    /// <summary>A duration as an operator reads it: 450 ms, 12 s, 30 min, 2 h 5 min.</summary>
    public static string Duration(TimeSpan span) => span switch
    {
        { TotalSeconds: < 1 } => $"{(int)span.TotalMilliseconds} ms",
        { TotalMinutes: < 1 } => $"{(int)span.TotalSeconds} s",
        { TotalHours: < 1 } => $"{(int)span.TotalMinutes} min",
        _ => span.Minutes == 0 ? $"{(int)span.TotalHours} h" : $"{(int)span.TotalHours} h {span.Minutes} min",
    };

    /// <summary>Cuts an error text to <see cref="MaxErrorLength"/> characters.</summary>
    public static string Truncate(string text) => text.Length <= MaxErrorLength ? text : string.Concat(text.AsSpan(0, MaxErrorLength - 1), "…");

    /// <summary>The exception and every exception inside it, outermost first, depth first.</summary>
    private static IEnumerable<Exception> Links(Exception exception)
    {
        var pending = new Stack<Exception>();
        pending.Push(exception);
        var seen = 0;
        while (pending.Count > 0 && seen++ < MaxLinks)
        {
            var link = pending.Pop();
            yield return link;
            if (link is AggregateException aggregate)
            {
                for (var i = aggregate.InnerExceptions.Count - 1; i >= 0; i--)
                {
                    pending.Push(aggregate.InnerExceptions[i]);
                }
            }
            else if (link.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static int StatusInMessage(string message) =>
        StatusLine().Match(message) is { Success: true } match && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var status)
            ? status
            : 0;

    [GeneratedRegex(@"^Status: (\d{3})\b", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex StatusLine();
}
