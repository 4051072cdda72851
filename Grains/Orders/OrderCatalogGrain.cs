using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Orders;

[GenerateSerializer, Alias("catalog.CatalogHeadState.v1")]
public sealed class CatalogHeadState
{
    /// <summary>The shard's closed segments, numbered 0, 1, 2 …; the open segment is number <c>Closed.Count</c>.</summary>
    [Id(0)] public List<CatalogSegment> Closed { get; set; } = [];
}

/// <summary>
/// The head of one catalog shard (<see cref="IOrderCatalogGrain"/>, where the bounds are stated). It writes only when it
/// closes a segment: a new order is written to the open segment, and the head records the segment as closed — with
/// the count and times that segment reported — once it holds <see cref="OrderCatalogOptions.SegmentSize"/> entries.
/// If that write is lost, the open segment takes a few entries more and the next order closes it again.
/// </summary>
[GrainType("order-catalog")]
public sealed partial class OrderCatalogGrain(
    [PersistentState("catalog", StorageNames.Orders)] IPersistentState<CatalogHeadState> state,
    IOptions<OrderCatalogOptions> options,
    ILogger<OrderCatalogGrain> logger) : Grain, IOrderCatalogGrain
{
    private readonly GuardedState<CatalogHeadState> _state = new(state);

    private int Shard => (int)this.GetPrimaryKeyLong();

    private int OpenNumber => _state.State.Closed.Count;

    public async Task AddAsync(string orderId, DateTimeOffset createdAt)
    {
        if (Ids.Problem(orderId, "order id") is { } problem)
        {
            throw new ArgumentException(problem, nameof(orderId));
        }

        var open = await OpenSegment().AddAsync(new CatalogEntry(orderId, createdAt));
        if (open.Count < options.Value.SegmentSize)
        {
            return;
        }

        // The order is in the catalog already; closing the segment only keeps rows small. A failed write is logged, not
        // thrown: the next order finds the segment still full and closes it then.
        _state.State.Closed.Add(open with { Open = false });
        try
        {
            await _state.WriteOrReloadAsync(this);
            LogSegmentClosed(Shard, open.Number, open.Count);
        }
        catch (Exception ex)
        {
            LogCloseFailed(ex, Shard, open.Number);
        }
    }

    public async Task<IReadOnlyList<CatalogSegment>> GetSegmentsAsync()
    {
        var open = await OpenSegment().GetSummaryAsync();
        return [.. _state.State.Closed, open];
    }

    private IOrderCatalogSegmentGrain OpenSegment() =>
        GrainFactory.GetGrain<IOrderCatalogSegmentGrain>(IOrderCatalogSegmentGrain.KeyOf(Shard, OpenNumber));

    [LoggerMessage(Level = LogLevel.Information, Message = "Order catalog shard {Shard} closed segment {Segment} with {Count} orders")]
    private partial void LogSegmentClosed(int shard, int segment, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Order catalog shard {Shard} could not record segment {Segment} as closed; the next order tries again")]
    private partial void LogCloseFailed(Exception exception, int shard, int segment);
}
