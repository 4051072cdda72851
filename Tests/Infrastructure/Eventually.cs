namespace OrderFlow.Tests.Infrastructure;

/// <summary>Polls a condition with a bounded timeout; the failure message says what was expected and what was seen.</summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout, Func<T, string> describe)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var ticks = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
        var last = await read();
        while (!done(last))
        {
            try
            {
                await ticks.WaitForNextTickAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s: {describe(last)}");
            }

            last = await read();
        }

        return last;
    }

    /// <summary>
    /// Polls for <paramref name="period"/> and fails at the first read where <paramref name="holds"/> is false: for
    /// "nothing happens" claims, where the passing of time is the thing under test.
    /// </summary>
    public static async Task<T> Holds<T>(Func<Task<T>> read, Func<T, bool> holds, TimeSpan period, Func<T, string> describe)
    {
        using var ticks = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var last = await read();
            if (!holds(last))
            {
                throw new InvalidOperationException($"stopped holding after {clock.Elapsed.TotalSeconds:0.0} s: {describe(last)}");
            }

            if (clock.Elapsed >= period)
            {
                return last;
            }

            await ticks.WaitForNextTickAsync();
        }
    }
}
