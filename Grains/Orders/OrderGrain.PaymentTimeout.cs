using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// The payment timeout (<see cref="OrderTimeoutOptions"/>): the order arms its deadline in its payment deadline shard
/// (<see cref="PaymentDeadlineShardGrain"/>) with the placement and disarms it with the payment or the cancellation. The
/// shard is durable where grain state is (Azure Table in the Azure profile), so the deadline holds after a restart of
/// every silo. When it comes, the shard asks the order (<see cref="PaymentDueAsync"/>), which decides: the cancellation
/// is an ordinary <see cref="CancelOrder"/> through <see cref="ExecuteAsync"/> with a fixed command id, so it is written
/// and published like any other and lands once; the grain is non-reentrant, so a payment and the timeout never
/// interleave — whichever runs first wins, and a payment that runs after the deadline loses even when the shard has not
/// asked yet (<see cref="OrderDecider.RefuseLatePayment"/>). Orders placed before the shards existed have an Orleans
/// reminder named <c>payment-timeout</c> instead; its ticks are handled the same way and remove it once the order waits
/// for nothing.
/// </summary>
public sealed partial class OrderGrain : IOrderPaymentDueGrain
{
    private const string PaymentTimeoutReminder = "payment-timeout";

    private OrderTimeoutOptions? _timeouts;

    // Resolved here rather than in the constructor, so the timeout stays in this file.
    private OrderTimeoutOptions Timeouts => _timeouts ??= ServiceProvider.GetRequiredService<IOptions<OrderTimeoutOptions>>().Value;

    private IPaymentDeadlineShardGrain Deadlines => GrainFactory.GetGrain<IPaymentDeadlineShardGrain>(IOrderRelayGrain.ShardOf(OrderId));

    /// <summary>
    /// Arms the order's payment deadline before the placement's write (as the relay mark is): if the silo dies between
    /// the write and this, an order would exist that never times out. A placement whose write then fails leaves a
    /// deadline that finds no order when it comes and is disarmed. False when the shard is full: the placement is then
    /// refused (<see cref="OrderErrorCode.TryLater"/>); if arming fails, the placement fails (nothing written) and the
    /// caller retries it.
    /// </summary>
    private Task<bool> ArmPaymentTimeoutAsync(OrderEvent evt) =>
        evt is OrderPlaced ? Deadlines.ArmAsync(OrderId, evt.OccurredAt + Timeouts.PaymentTimeout) : Task.FromResult(true);

    /// <summary>After a stored payment or cancellation the order waits for no payment any more. One-way: a lost disarm only
    /// makes the shard ask once more, and the answer disarms it again.</summary>
    private void DisarmPaymentTimeout(OrderEvent evt)
    {
        if (evt is OrderPaid or OrderCancelled && OrderDecider.PlacedAt(State) is { } placedAt)
        {
            Deadlines.DisarmAsync(OrderId, placedAt + Timeouts.PaymentTimeout).Ignore();
        }
    }

    /// <summary>
    /// The shard's ask: it comes when the deadline has passed, and again every <see cref="OrderTimeoutOptions.RetryPeriod"/>
    /// while the order stays armed (a cancellation whose write failed, or an ask that came early by the silos' clock
    /// difference). An order that waits for no payment (paid, cancelled, or never written) disarms.
    /// </summary>
    public async Task PaymentDueAsync(DateTimeOffset deadline)
    {
        if (State.Status != OrderStatus.Placed)
        {
            Deadlines.DisarmAsync(OrderId, deadline).Ignore();
            return;
        }

        await CancelIfOverdueAsync();
    }

    /// <summary>
    /// The payment decided against the deadline. Past it, the timeout wins even if its tick has not come yet: the order
    /// is cancelled first (as the tick would do a moment later), then a new payment is refused with
    /// <see cref="OrderErrorCode.PaymentTimedOut"/>. A repeat of an accepted payment still gets its first answer.
    /// </summary>
    private async Task<CommandResult> PayBeforeDeadlineAsync(PayOrder command)
    {
        if (OrderDecider.IsPaymentOverdue(State, clock.GetUtcNow(), Timeouts.PaymentTimeout))
        {
            await CancelForPaymentTimeoutAsync();
        }

        return OrderDecider.RefuseLatePayment(OrderId, State, command, Timeouts.PaymentTimeout) is { } refused
            ? Reject(refused.Code, refused.Message)
            : await ExecuteAsync(command);
    }

    /// <summary>
    /// A tick of a payment-timeout reminder registered before the deadline shards existed: handled like the shard's
    /// ask, and the reminder goes once the order waits for nothing.
    /// </summary>
    private async Task LegacyPaymentTimeoutDueAsync()
    {
        if (State.Status != OrderStatus.Placed)
        {
            await RemovePaymentTimeoutReminderAsync();
            return;
        }

        await CancelIfOverdueAsync();
    }

    private async Task CancelIfOverdueAsync()
    {
        if (OrderDecider.IsPaymentOverdue(State, clock.GetUtcNow(), Timeouts.PaymentTimeout))
        {
            await CancelForPaymentTimeoutAsync();
        }
        else
        {
            LogPaymentTimeoutEarly(OrderId, OrderDecider.PaymentDeadline(State, Timeouts.PaymentTimeout));
        }
    }

    private async Task CancelForPaymentTimeoutAsync()
    {
        var result = await ExecuteAsync(OrderDecider.PaymentTimeoutCancelFor(State), systemCommand: true);
        if (result.Accepted)
        {
            LogPaymentTimedOut(OrderId, Timeouts.PaymentTimeout, result.Sequence);
        }
        else
        {
            LogPaymentTimeoutRefused(OrderId, result.Error?.Code, result.Error?.Message);
        }
    }

    /// <summary>
    /// Best effort: a reminder that stays (storage down, or an ETag that changed) comes back, finds the order paid or
    /// cancelled, and tries again — it never cancels a paid order.
    /// </summary>
    private async Task RemovePaymentTimeoutReminderAsync()
    {
        try
        {
            if (await this.GetReminder(PaymentTimeoutReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }
        }
        catch (Exception ex)
        {
            LogPaymentTimeoutReminderNotRemoved(ex, OrderId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Order {OrderId} was not paid within {Timeout} of its placement: cancelled by the system (event {Sequence})")]
    private partial void LogPaymentTimedOut(string orderId, TimeSpan timeout, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: the payment timeout's cancellation was refused: {Code} {Reason}")]
    private partial void LogPaymentTimeoutRefused(string orderId, OrderErrorCode? code, string? reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Order {OrderId}: asked about its payment deadline before the deadline {Deadline}; the next ask cancels")]
    private partial void LogPaymentTimeoutEarly(string orderId, DateTimeOffset? deadline);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not remove its payment-timeout reminder; it fires later, finds nothing to time out and tries again")]
    private partial void LogPaymentTimeoutReminderNotRemoved(Exception exception, string orderId);
}
