using System.ComponentModel.DataAnnotations;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Hosting;

/// <summary>The order catalog (section <c>OrderCatalog</c>): how many orders one segment row holds.</summary>
public sealed class OrderCatalogOptions
{
    public const string SectionName = "OrderCatalog";

    /// <summary>
    /// Entries per catalog segment before its shard opens the next one. A segment is one storage row, read whole by
    /// each backfill page and written whole by each new order, so larger means fewer segments but heavier writes; the
    /// upper bound keeps a row of the longest ids far below 1 MB. Changing it is safe: the head records each closed
    /// segment's count. Default 500 (<see cref="IOrderCatalogGrain.DefaultSegmentSize"/>, where the trade is stated).
    /// </summary>
    [Range(2, IOrderCatalogGrain.MaxSegmentSize)]
    public int SegmentSize { get; set; } = IOrderCatalogGrain.DefaultSegmentSize;
}
