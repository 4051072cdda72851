using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>How long and how often <see cref="ResilientCaller"/> retries. Defaults suit a silo failover (seconds).</summary>
public sealed record ResilienceOptions
{
    /// <summary>First delay before a retry; doubles per retry up to <see cref="MaxBackoff"/>, half of it random. Default 100 ms.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest delay between two tries. Default 2 s.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>After this long since the first try, the last transient error is thrown. Default 2 min.</summary>
    public TimeSpan GiveUpAfter { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>
/// Calls the cluster and retries transient failures (<see cref="TransientFailures"/>) with bounded, jittered backoff.
/// Retry the SAME command object: its command id makes the retry safe — the order grain answers a repeated id with
/// its first result, so a command whose first try landed before the failure is never applied twice. Any other error,
/// and a refused command (a <see cref="CommandResult"/> that is not accepted), is returned or thrown at once.
/// Thread-safe; one instance can serve a whole service.
/// </summary>
public sealed class ResilientCaller(ResilienceOptions? options = null, TimeProvider? clock = null)
{
    private readonly ResilienceOptions _options = options ?? new ResilienceOptions();
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _retries;

    /// <summary>Called before each retry with the error, the retry number (1, 2 …) and the delay before it.</summary>
    public event Action<Exception, int, TimeSpan>? Retrying;

    /// <summary>Retries made so far, over every call.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    public async Task<T> ExecuteAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        var started = _clock.GetTimestamp();
        for (var retry = 1; ; retry++)
        {
            try
            {
                return await call();
            }
            catch (Exception ex) when (TransientFailures.IsTransient(ex) && _clock.GetElapsedTime(started) < _options.GiveUpAfter)
            {
                var raw = Math.Min(_options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(retry - 1, 20)), _options.MaxBackoff.TotalMilliseconds);
                var delay = TimeSpan.FromMilliseconds(raw / 2 + Random.Shared.NextDouble() * raw / 2);
                Interlocked.Increment(ref _retries);
                Retrying?.Invoke(ex, retry, delay);
                await Task.Delay(delay, _clock, cancellationToken);
            }
        }
    }
}

/// <summary>
/// The order commands through a <see cref="ResilientCaller"/>: each command is sent again, unchanged, after a
/// transient failure, so a caller rides through a silo dying with its command in flight.
/// </summary>
public sealed class ResilientOrderClient(IGrainFactory grains, ResilientCaller? caller = null)
{
    public ResilientCaller Caller { get; } = caller ?? new ResilientCaller();

    public Task<CommandResult> PlaceAsync(string orderId, PlaceOrder command, CancellationToken cancellationToken = default) =>
        Caller.ExecuteAsync(() => Order(orderId).PlaceAsync(command), cancellationToken);

    public Task<CommandResult> PayAsync(string orderId, PayOrder command, CancellationToken cancellationToken = default) =>
        Caller.ExecuteAsync(() => Order(orderId).PayAsync(command), cancellationToken);

    public Task<CommandResult> ShipAsync(string orderId, ShipOrder command, CancellationToken cancellationToken = default) =>
        Caller.ExecuteAsync(() => Order(orderId).ShipAsync(command), cancellationToken);

    public Task<CommandResult> ConfirmReceiptAsync(string orderId, ConfirmReceipt command, CancellationToken cancellationToken = default) =>
        Caller.ExecuteAsync(() => Order(orderId).ConfirmReceiptAsync(command), cancellationToken);

    public Task<CommandResult> CancelAsync(string orderId, CancelOrder command, CancellationToken cancellationToken = default) =>
        Caller.ExecuteAsync(() => Order(orderId).CancelAsync(command), cancellationToken);

    private IOrderGrain Order(string orderId) => grains.GetGrain<IOrderGrain>(orderId);
}
