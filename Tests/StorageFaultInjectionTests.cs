using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>The fault-injecting storage inside a silo: a command meets the fault, and works once it is gone.</summary>
[Collection(PipelineCollection.Name)]
public sealed class StorageFaultInjectionTests(PipelineFixture fixture)
{
    [Fact]
    public async Task An_order_command_fails_while_its_storage_fails_and_is_accepted_once_the_fault_is_cleared()
    {
        var id = OrderDriver.NewId("faulty-");
        var order = fixture.Grains.GetGrain<IOrderGrain>(id);
        var place = new PlaceOrder($"{id}-place", $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 10m)));
        await Inventory.EnsureAsync(fixture.Grains, place.Items, null);

        using (var fault = fixture.Faults.Fail(new StorageFault
               {
                   StorageName = StorageNames.Orders, Operations = StorageOperations.Write, GrainType = "order", KeyPrefix = id,
               }))
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => order.PlaceAsync(place));
            Assert.Contains(error.Chain(), e => e is StorageFaultException { Operation: StorageOperations.Write });
            error = await Assert.ThrowsAnyAsync<Exception>(() => order.PlaceAsync(place));
            Assert.Contains(error.Chain(), e => e is StorageFaultException);
            // Each try meets the fault twice: the placement's write, then the fence the order writes before it gives its
            // reservations back (that fails too: they stay pending at the SKU, for its check-back or the next try).
            Assert.Equal(4, fault.Hits);
            // The write never landed (the re-read after it said so): the order does not exist.
            Assert.Equal((OrderStatus.None, 0L), ((await order.GetAsync()).Status, (await order.GetAsync()).LastSequence));
        }

        var result = await order.PlaceAsync(place);
        Assert.Equal((true, 1L, false, OrderStatus.Placed), (result.Accepted, result.Sequence, result.Repeated, result.Status));
        // The failed tries gave back (or replaced) what they reserved: the order holds its one unit, once.
        var stock = await fixture.Grains.GetGrain<IStockGrain>($"sku-{id}").GetAsync();
        Assert.Equal((1L, 0L, OrderDriver.StockPerSku - 1), (stock.Reserved, stock.Sold, stock.Available));
    }
}
