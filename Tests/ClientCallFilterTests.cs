using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Contracts;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.Security;
using OrderFlow.Tests.Infrastructure;
using Orleans.TestingHost;

namespace OrderFlow.Tests;

/// <summary>An external client reaches only the client-callable interfaces; the silo's own calls reach everything.</summary>
[Collection(PipelineCollection.Name)]
public sealed class ClientCallFilterTests(PipelineFixture fixture)
{
    private IClusterClient External => fixture.Cluster.Client;

    [Fact]
    public async Task An_external_client_cannot_move_a_ledger_skip_an_inbox_or_edit_the_dead_letter_index()
    {
        var id = OrderDriver.NewId("filter-");
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IPointsAccountGrain>($"user-{id}").ApplyAsync($"{id}:forged", 1_000m));
        // Operators set and read stock and coupons (IStockGrain, ICouponGrain); reservations move only for orders.
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IStockReservationsGrain>($"sku-{id}").ReserveAsync(id, 0, 1));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<ICouponReservationsGrain>($"c-{id}").ReleaseAsync(id));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IPaymentIdGrain>($"pay-{id}").ClaimAsync(id));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IOrderPlacementGrain>(id).ResolvePlacementAsync(0, LedgerKind.Stock, "x", 1));
        Assert.False((await External.GetGrain<IStockGrain>($"sku-{id}").GetAsync()).Exists);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IOrderReplicaGrain>(id).GetAsync());
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IDeadLetterIndexGrain>("points").ResolveAsync(id));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<ISmsGatewayGrain>($"user-{id}").SendAsync(id, "paid", "hi"));
        // The catalog and the backfill job answer the cluster only: clients start a backfill through IOperationsGrain.
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IOrderCatalogGrain>(0).AddAsync(id, DateTimeOffset.UtcNow));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IOrderCatalogSegmentGrain>(IOrderCatalogSegmentGrain.KeyOf(0, 0)).ReadAsync(null, null, 10));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => External.GetGrain<IBackfillJobGrain>("points").StartAsync(null, true));

        // Nothing was written by the refused calls; the silo itself still reaches the ledger.
        Assert.False((await External.GetGrain<IStoredStateGrain>(0).ReadLedgersAsync(LedgerKind.Points, [$"user-{id}"]))[0].Exists);
        Assert.Equal(0m, (await fixture.Grains.GetGrain<IPointsAccountGrain>($"user-{id}").GetAsync()).Balance);
    }

    [Fact]
    public void A_silo_not_started_for_benchmarks_has_no_call_counter_in_its_call_path()
    {
        var filters = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetServices<IIncomingGrainCallFilter>();
        Assert.Contains(filters, f => f is ClientCallFilter);
        Assert.DoesNotContain(filters, f => f is BenchCallCounter);
    }

    [Fact]
    public async Task An_external_client_places_orders_and_operates_through_the_client_callable_interfaces()
    {
        var id = OrderDriver.NewId("filter-ok-");
        var orders = new OrderDriver(External);
        await orders.FullLifecycleAsync(id, $"user-{id}", OrderDriver.Items(($"sku-{id}", 1, 2m)));
        var report = await External.GetGrain<IOperationsGrain>(0).InspectAsync(id);
        Assert.Equal(OrderStatus.Received, report.Order.Status);
        var stored = await StoredProgress.WaitFinishedAsync(External, [id], OrderDriver.CatchUpTimeout);
        Assert.Equal(4, stored[0].LastSequence);
    }

    [Fact]
    public void A_silo_started_without_benchmarks_hosts_no_bench_grains()
    {
        var ex = Assert.ThrowsAny<Exception>(() => External.GetGrain<IBenchProducerGrain>("bench-x"));
        Assert.Contains("IBenchProducerGrain", ex.Message);
    }
}
