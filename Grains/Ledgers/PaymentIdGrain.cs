using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Ledgers;

[GenerateSerializer, Alias("ledgers.PaymentIdState.v1")]
public sealed class PaymentIdState
{
    [Id(0)] public string? OrderId { get; set; }
    [Id(1)] public DateTimeOffset ClaimedAt { get; set; }
}

/// <summary>
/// One payment id (key = payment id) and the order it paid: the first claim is written and holds for good, so a payment
/// id pays one order only. A claim whose order's payment then fails to be written stays with that order (the same order
/// may pay with it again; no other can) — the payment provider's id belongs to that order either way.
/// </summary>
[GrainType("payment-id")]
public sealed class PaymentIdGrain([PersistentState("payment", StorageNames.Ledgers)] IPersistentState<PaymentIdState> claim)
    : Grain, IPaymentIdGrain
{
    private readonly GuardedState<PaymentIdState> _claim = new(claim);

    public async Task<string> ClaimAsync(string orderId)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        if (_claim.State.OrderId is { } owner)
        {
            // A repeat, or another order racing for the same payment: answered from memory, and the activation stays (for
            // Orleans' collection age) so that claims queued behind this one are answered here too.
            return owner;
        }

        try
        {
            _claim.State.OrderId = orderId;
            _claim.State.ClaimedAt = DateTimeOffset.UtcNow;
            await _claim.WriteOrReloadAsync(this);
            return orderId;
        }
        finally
        {
            // One claim per payment: nothing to keep in memory afterwards. Only after the first claim: deactivating after
            // every claim forwarded the claims queued behind it to a new activation each time, and Orleans rejects a
            // message forwarded more than twice, so concurrent claims of one payment id got a spurious 503 (red-team finding).
            DeactivateOnIdle();
        }
    }

    public Task<string?> GetOwnerAsync() => Task.FromResult(_claim.State.OrderId);
}
