namespace OrderFlow.Grains.Hosting;

/// <summary>
/// A grain storage call failed because a <see cref="StorageFault"/> said so — never a real storage error. Like a real
/// provider's error it reaches the grain wrapped in Orleans' "Error from storage provider" exception, and it is
/// serializable, so it crosses grain calls as the inner exception.
/// </summary>
[GenerateSerializer, Alias("hosting.StorageFaultException.v1")]
public sealed class StorageFaultException : Exception
{
    public StorageFaultException()
    {
    }

    public StorageFaultException(string message) : base(message)
    {
    }

    public StorageFaultException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public StorageFaultException(string storageName, GrainId grainId, StorageOperations operation, StorageFaultMode mode)
        : base(mode == StorageFaultMode.AfterCall
            ? $"Injected storage fault: {operation} of {grainId} in '{storageName}' landed, then failed (fault injection)"
            : $"Injected storage fault: {operation} of {grainId} in '{storageName}' failed before reaching storage (fault injection)")
    {
        StorageName = storageName;
        GrainId = grainId;
        Operation = operation;
        Mode = mode;
    }

    [Id(0)] public string? StorageName { get; private set; }

    [Id(1)] public GrainId GrainId { get; private set; }

    [Id(2)] public StorageOperations Operation { get; private set; }

    [Id(3)] public StorageFaultMode Mode { get; private set; }
}
