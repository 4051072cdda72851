using System.Diagnostics;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>Reads the silo's counters through the bench control grain and waits for a counter to reach a target.</summary>
public sealed class SiloProbe(IClusterClient client)
{
    private static readonly TimeSpan PollPeriod = TimeSpan.FromMilliseconds(20);

    private readonly IBenchControlGrain _control = client.GetGrain<IBenchControlGrain>(0);

    public IBenchControlGrain Control => _control;

    public Task<SiloSample> SampleAsync(bool fullGc = false) => _control.SampleAsync(fullGc);

    /// <summary>Waits until the subscribers applied every event of <paramref name="plans"/> since <paramref name="before"/>.</summary>
    public Task<SiloSample> WaitAppliedAsync(string what, SiloSample before, IReadOnlyList<OrderPlan> plans, int subscriberCount, TimeSpan timeout) =>
        WaitForAsync($"{what}: subscriber applications", s => s.SubscriberApplied,
            before.SubscriberApplied + BenchOrders.Events(plans) * subscriberCount, timeout);

    /// <summary>
    /// Polls until <paramref name="counter"/> reaches <paramref name="target"/>; returns the sample that first did,
    /// or throws when <paramref name="timeout"/> passes (naming the counter, target and last value).
    /// </summary>
    public async Task<SiloSample> WaitForAsync(string what, Func<SiloSample, long> counter, long target, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var sample = await _control.SampleAsync(false);
            if (counter(sample) >= target)
            {
                return sample;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{what}: reached {counter(sample)} of {target} after {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(PollPeriod);
        }
    }
}
