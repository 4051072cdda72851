using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

/// <summary>
/// The payment timeout (<see cref="OrderTimeoutOptions"/>): one Orleans reminder per unpaid order, registered with the
/// placement and removed by the payment or the cancellation. It is durable where reminders are (Azure Table in the
/// Azure profile), so it fires after a restart of every silo. The cancellation is an ordinary <see cref="CancelOrder"/>
/// through <see cref="ExecuteAsync"/> with a fixed command id, so it is written and published like any other and lands
/// once; the grain is non-reentrant, so a payment and the timeout never interleave — whichever runs first wins, and a
/// payment that runs after the deadline loses even when the tick has not come yet (<see cref="OrderDecider.RefuseLatePayment"/>).
/// </summary>
public sealed partial class OrderGrain
{
    private const string PaymentTimeoutReminder = "payment-timeout";

    // The registration's handle: removing the reminder with it is one storage request (a delete) instead of a read and a
    // delete. Only this activation has it; a later one looks the reminder up.
    private IGrainReminder? _paymentTimeoutReminder;
    private OrderTimeoutOptions? _timeouts;

    // Resolved here rather than in the constructor, so the timeout stays in this file.
    private OrderTimeoutOptions Timeouts => _timeouts ??= ServiceProvider.GetRequiredService<IOptions<OrderTimeoutOptions>>().Value;

    /// <summary>
    /// Registers the order's payment-timeout reminder, before the placement's write (as the relay mark is): if the
    /// silo dies between the write and this, an order would exist that never times out. A placement whose write then
    /// fails leaves a reminder that finds no order and removes itself. If registering fails, the placement fails
    /// (nothing written) and the caller retries it.
    /// </summary>
    private async Task ArmPaymentTimeoutAsync(OrderEvent evt)
    {
        if (evt is OrderPlaced)
        {
            _paymentTimeoutReminder = await this.RegisterOrUpdateReminder(PaymentTimeoutReminder, Timeouts.PaymentTimeout, Timeouts.RetryPeriod);
        }
    }

    /// <summary>After a stored payment or cancellation: the order waits for no payment any more, its reminder goes.</summary>
    private Task DisarmPaymentTimeoutAsync(OrderEvent evt) =>
        evt is OrderPaid or OrderCancelled ? RemovePaymentTimeoutReminderAsync() : Task.CompletedTask;

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
    /// A tick of the reminder. It first comes when the timeout has passed since the placement, and again every
    /// <see cref="OrderTimeoutOptions.RetryPeriod"/> while the order stays unpaid and uncancelled (a cancellation whose
    /// write failed, or a tick that came early by the silos' clock difference). An exception leaves the reminder for the
    /// next tick.
    /// </summary>
    private async Task PaymentTimeoutDueAsync()
    {
        if (State.Status != OrderStatus.Placed)
        {
            // Paid or cancelled with a removal that failed, or never stored (the placement's write failed after the
            // reminder was registered): nothing waits for a payment.
            await RemovePaymentTimeoutReminderAsync();
            return;
        }

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
        var result = await ExecuteAsync(OrderDecider.PaymentTimeoutCancel);
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
            var reminder = _paymentTimeoutReminder ?? await this.GetReminder(PaymentTimeoutReminder);
            if (reminder is not null)
            {
                await this.UnregisterReminder(reminder);
            }

            _paymentTimeoutReminder = null;
        }
        catch (Exception ex)
        {
            _paymentTimeoutReminder = null;
            LogPaymentTimeoutReminderNotRemoved(ex, OrderId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Order {OrderId} was not paid within {Timeout} of its placement: cancelled by the system (event {Sequence})")]
    private partial void LogPaymentTimedOut(string orderId, TimeSpan timeout, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId}: the payment timeout's cancellation was refused: {Code} {Reason}")]
    private partial void LogPaymentTimeoutRefused(string orderId, OrderErrorCode? code, string? reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Order {OrderId}: the payment timeout's reminder came before the deadline {Deadline}; the next tick cancels")]
    private partial void LogPaymentTimeoutEarly(string orderId, DateTimeOffset? deadline);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order {OrderId} could not remove its payment-timeout reminder; it fires later, finds nothing to time out and tries again")]
    private partial void LogPaymentTimeoutReminderNotRemoved(Exception exception, string orderId);
}
