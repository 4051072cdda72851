namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// How many of an order's events each subscriber's handler runs for: every event of a kind it handles
/// (<c>[HandlesOnly]</c>), and the order's final one. Written out here, not read from the attributes, so that a
/// subscriber that stops being handed a kind it acts on fails the tests that count its runs. The order's events are
/// given by their kind letters in sequence (<c>"PASR"</c>: placed, paid, shipped, received; <c>C</c> cancelled).
/// </summary>
public static class Handed
{
    private static readonly IReadOnlyDictionary<string, string?> KindsByName = new Dictionary<string, string?>
    {
        ["activity-gmv"] = "AC",
        ["coupon"] = "AC",
        ["inventory"] = "AC",
        ["points"] = "AC",
        ["sms"] = "AS",
        ["order-sync"] = null, // every kind
        ["audit-trail"] = null, // the tests' own subscriber
    };

    public const string FullLifecycle = "PASR";

    public static long Runs(string subscriber, string orderKinds) =>
        orderKinds.Count(kind => KindsByName[subscriber] is not { } kinds || kinds.Contains(kind) || kind is 'R' or 'C');
}
