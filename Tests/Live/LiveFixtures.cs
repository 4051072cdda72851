using OrderFlow.Tests.Http;

namespace OrderFlow.Tests.Live;

/// <summary>
/// The silo's app with an API key and the dashboard on (its default), and a drill that parks at <c>points</c> every
/// <c>OrderPaid</c> of orders whose id starts with <see cref="ParkPrefix"/>, after one attempt.
/// </summary>
public sealed class LiveSiloFixture : HttpSiloFixture
{
    public const string Key = "live-key-0123456789abcdef";
    public const string ParkPrefix = "live-park-";

    protected override string? ApiKey => Key;

    protected override IEnumerable<string> Settings => ParkingDrill(ParkPrefix);
}

[CollectionDefinition(Name)]
public sealed class LiveSiloCollection : ICollectionFixture<LiveSiloFixture>
{
    public const string Name = "live-silo";
}

/// <summary>The silo's app with <c>Dashboard:Enabled=false</c> and no key.</summary>
public sealed class DashboardOffFixture : HttpSiloFixture
{
    protected override IEnumerable<string> Settings => ["--Dashboard:Enabled=false"];
}

[CollectionDefinition(Name)]
public sealed class DashboardOffCollection : ICollectionFixture<DashboardOffFixture>
{
    public const string Name = "dashboard-off";
}
