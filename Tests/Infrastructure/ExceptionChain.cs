namespace OrderFlow.Tests.Infrastructure;

public static class ExceptionChain
{
    /// <summary>The exception and every inner exception below it, outermost first.</summary>
    public static IEnumerable<Exception> Chain(this Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}
