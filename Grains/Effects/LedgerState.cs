namespace OrderFlow.Grains.Effects;

/// <summary>A balance and the processed keys that moved it, in one record so one write covers both (the strong check).</summary>
[GenerateSerializer, Alias("effects.LedgerState.v1")]
public sealed class LedgerState
{
    [Id(0)] public decimal Balance { get; set; }

    /// <summary>Processed key (order id + business scenario) → the amount it applied.</summary>
    [Id(1)] public Dictionary<string, decimal> Entries { get; set; } = [];
}
