using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests.Durable;

/// <summary>Hostile ids and sizes on the Azure profile, where Azure Table folds <c>/ \ # ?</c> in row keys to <c>_</c>.</summary>
[Collection(DurableCollection.Name)]
public sealed class HostileInputTests(DurableClusterFixture fixture)
{
    [Fact]
    public async Task Ids_that_would_share_an_Azure_Table_row_with_another_order_are_refused_and_the_other_order_is_untouched()
    {
        var stem = $"row-{Guid.NewGuid():N}"[..16];
        var orders = new OrderDriver(fixture.Grains);
        var total = await orders.PlaceAsync($"{stem}_1", $"user-{stem}", OrderDriver.Items(($"sku-{stem}", 1, 4m)));

        foreach (var twin in new[] { $"{stem}/1", $"{stem}\\1", $"{stem}#1", $"{stem}?1" })
        {
            // Before the alphabet, x/1 was answered from x_1's row: "already Placed" (IllegalTransition).
            var result = await orders.Order(twin).PlaceAsync(new PlaceOrder("p", $"user-{stem}", OrderDriver.Items(($"sku-{stem}", 1, 4m))));
            Assert.Equal(OrderErrorCode.InvalidCommand, result.Error?.Code);
            var pay = await orders.Order(twin).PayAsync(new PayOrder("pay", "payment", total));
            Assert.Equal(OrderErrorCode.InvalidCommand, pay.Error?.Code);
        }

        var userTwin = await orders.Order($"{stem}-u").PlaceAsync(new PlaceOrder("p", $"user/{stem}", OrderDriver.Items(($"sku-{stem}", 1, 4m))));
        Assert.Equal(OrderErrorCode.InvalidCommand, userTwin.Error?.Code);

        var stored = (await fixture.Grains.GetGrain<IStoredStateGrain>(0).ReadOrdersAsync([$"{stem}_1", $"{stem}-u"]));
        Assert.Equal((OrderStatus.Placed, 1L), (stored[0].Status, stored[0].LastSequence));
        Assert.False(stored[1].Exists);
    }

    [Fact]
    public async Task A_cancel_reason_too_big_for_a_queue_message_is_refused_before_the_write()
    {
        var id = $"reason-{Guid.NewGuid():N}"[..20];
        var orders = new OrderDriver(fixture.Grains);
        await orders.PlaceAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 4m)));

        // Before the bound, this was accepted, written, and never published: no subscriber ever saw the cancellation.
        var refused = await orders.Order(id).CancelAsync(new CancelOrder("cancel", new string('r', 60_000)));
        Assert.Equal(OrderErrorCode.InvalidCommand, refused.Error?.Code);

        Assert.True((await orders.Order(id).CancelAsync(new CancelOrder("cancel-2", "changed my mind"))).Accepted);
        var done = await StoredProgress.WaitFinishedAsync(fixture.Grains, [id], TimeSpan.FromSeconds(90));
        Assert.Equal((OrderStatus.Cancelled, 2L), (done[0].Status, done[0].LastSequence));
    }
}
