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
}
