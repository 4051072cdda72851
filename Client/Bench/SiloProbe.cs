using System.Diagnostics;
using OrderFlow.Contracts;

namespace OrderFlow.Client.Bench;

/// <summary>Reads the silo's counters through the bench control grain and waits for a counter to reach a target.</summary>
public sealed class SiloProbe(IClusterClient client)
{
    private static readonly TimeSpan PollPeriod = TimeSpan.FromMilliseconds(20);

    private IBenchControlGrain? _control;

    /// <summary>
    /// The bench control grain. A silo without <c>Benchmarks:Enabled=true</c> does not host the bench grains at all, so
    /// the cluster knows no implementation of it: that is reported as the same one-line refusal as a disabled grain.
    /// </summary>
    public IBenchControlGrain Control
    {
        get
        {
            try
            {
                return _control ??= client.GetGrain<IBenchControlGrain>(0);
            }
            catch (ArgumentException ex)
            {
                throw new InvalidOperationException(
                    "the silo hosts no bench grains; start it with Benchmarks:Enabled=true (./bench.sh does)", ex);
            }
        }
    }

    public Task<SiloSample> SampleAsync(bool fullGc = false) => Control.SampleAsync(fullGc);

    /// <summary>
    /// A run's first sample, or null with the reason on stderr when the silo does not host the bench grains (it was not
    /// started with <c>Benchmarks:Enabled=true</c>).
    /// </summary>
    public async Task<SiloSample?> FirstSampleAsync()
    {
        try
        {
            return await SampleAsync();
        }
        catch (InvalidOperationException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return null;
        }
    }

    /// <summary>
    /// Waits until the subscribers are done with every event of <paramref name="plans"/> since <paramref name="before"/>:
    /// applied, or left out as having nothing to do for it (<c>HandlesOnly</c>).
    /// </summary>
    public Task<SiloSample> WaitAppliedAsync(string what, SiloSample before, IReadOnlyList<OrderPlan> plans, int subscriberCount, TimeSpan timeout) =>
        WaitForAsync($"{what}: subscriber applications", s => s.SubscriberDone,
            before.SubscriberDone + BenchOrders.Events(plans) * subscriberCount, timeout);

    /// <summary>
    /// Runs the activation collector for everything idle for a second, then waits until the activation count stops
    /// falling (order grains write their outbox mark while they deactivate); returns the count then.
    /// </summary>
    public async Task<int> DeactivateIdleAsync()
    {
        var management = client.GetGrain<IManagementGrain>(0);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await management.ForceActivationCollection(TimeSpan.FromSeconds(1));
        var last = await management.GetTotalActivationCount();
        for (var i = 0; i < 60; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500));
            var now = await management.GetTotalActivationCount();
            if (now >= last)
            {
                return now;
            }

            last = now;
        }

        return last;
    }

    /// <summary>
    /// Polls until <paramref name="counter"/> reaches <paramref name="target"/>; returns the sample that first did,
    /// or throws when <paramref name="timeout"/> passes (naming the counter, target and last value).
    /// </summary>
    public async Task<SiloSample> WaitForAsync(string what, Func<SiloSample, long> counter, long target, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var sample = await Control.SampleAsync(false);
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
