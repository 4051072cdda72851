namespace OrderFlow.Grains.Hosting;

public static class PersistentStateExtensions
{
    /// <summary>
    /// Writes the state; if the write fails, reloads it before rethrowing. The write may or may not have landed, so the
    /// in-memory copy can no longer be trusted — every grain here follows this rule through this one method.
    /// </summary>
    public static async Task WriteOrReloadAsync<T>(this IPersistentState<T> state)
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            await state.ReadStateAsync();
            throw;
        }
    }
}
