using OrderFlow.Client.Bench;

namespace OrderFlow.Tests;

/// <summary>
/// The durable bench's report: the pipeline's refusals and losses stay with the pipeline's rates, the memory phase's
/// with its own line, and the RESULT line and the exit status count both.
/// </summary>
public sealed class DurableReportTests
{
    [Theory]
    [InlineData(0, 0, null, null, 0, 0)]
    [InlineData(1, 0, null, null, 0, 1)]
    [InlineData(0, 2, null, null, 2, 0)]
    [InlineData(0, 0, 0, 3L, 3, 0)]
    [InlineData(1, 2, 4, 3L, 5, 5)]
    public void Losses_and_refusals_are_kept_per_phase_and_summed_for_the_verdict(
        int pipelineRefused, long pipelineLost, int? memoryRefused, long? memoryLost, long expectedLost, int expectedRefused)
    {
        var memory = memoryRefused is { } refused ? new DurableMemory(100, 12.5, 0, 1 << 20, refused, memoryLost!.Value) : null;
        var report = Report(pipelineRefused, pipelineLost, memory);

        // The pipeline's own figures, beside its rates; the memory phase's in its record.
        Assert.Equal((pipelineRefused, pipelineLost), (report.Refused, report.Lost));
        Assert.Equal((expectedRefused, expectedLost), (report.TotalRefused, report.TotalLost));
        Assert.EndsWith($" lost={expectedLost}", report.ResultLine());
    }

    private static DurableReport Report(int refused, long lost, DurableMemory? memory) => new(
        "run", DateTimeOffset.UnixEpoch, "settings", ["points"], Orders: 10, Events: 40, Deliveries: 240,
        CommandSeconds: 1, ApplySeconds: 2, WindowSeconds: 3, refused, lost,
        OrdersPerSecond: 5, EventsPerSecond: 20, DeliveriesPerSecond: 120, SiloCpuPercent: 50, new Dictionary<string, double>(),
        StorageOpsPerEvent: 6, AllRequestsPerEvent: 7, [], IdleRequestsPerSecond: 1, Raw: null, memory, TotalSeconds: 10);
}
