using OrderFlow.Contracts;
using OrderFlow.Tests.Infrastructure;

namespace OrderFlow.Tests;

/// <summary>The operators' stock and coupon commands answer an external client (their generic result crosses the wire).</summary>
[Collection(PipelineCollection.Name)]
public sealed class InventoryWireTests(PipelineFixture fixture)
{
    [Fact]
    public async Task Stock_and_coupon_commands_answer_an_external_client()
    {
        var id = OrderDriver.NewId("wire-");
        var stock = await fixture.Cluster.Client.GetGrain<IStockGrain>($"sku-{id}").SetAvailableAsync(7);
        Assert.Equal((true, 7L), (stock.Accepted, stock.Level.Available));
        var coupon = await fixture.Cluster.Client.GetGrain<ICouponGrain>($"coupon-{id}").IssueAsync(3);
        Assert.Equal((true, 3L), (coupon.Accepted, coupon.Level.Issued));
        var refused = await fixture.Cluster.Client.GetGrain<IStockGrain>($"sku-{id}").SetAvailableAsync(-1);
        Assert.Equal((false, OrderErrorCode.InvalidCommand), (refused.Accepted, refused.Code));
    }
}
