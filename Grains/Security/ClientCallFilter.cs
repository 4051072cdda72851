using System.Collections.Concurrent;
using System.Reflection;
using OrderFlow.Contracts;

namespace OrderFlow.Grains.Security;

/// <summary>
/// Refuses calls from external clients to OrderFlow's internal grain interfaces: only interfaces marked
/// <see cref="ClientCallableAttribute"/> answer a client. Calls between grains, from the silo's own hosted client and
/// from Orleans' system targets (stream agents, reminders) pass untouched; so do interfaces of other assemblies
/// (Orleans' own management grain, an application's own grains).
/// <para>
/// On by default. <see cref="SettingKey"/> = <c>false</c> leaves it out, only for a gateway port that nothing untrusted
/// can reach: as shipped the gateway listens on 127.0.0.1 only, so "untrusted" means other processes and users on the
/// host; a deployment that binds it elsewhere needs a firewall too. The gateway has no authentication,
/// <c>Http:ApiKey</c> does not cover it, and without this filter any client that connects can call any grain (the silo
/// logs a warning at every start). What it
/// buys: with no incoming call filter at all — the dashboard and tracing off too, each of which adds its own — Orleans
/// calls grain methods without its filter path, 11–13 % less silo CPU per delivery (docs/BENCHMARKS.md).
/// </para>
/// </summary>
public sealed class ClientCallFilter : IIncomingGrainCallFilter
{
    /// <summary>The setting that keeps this filter in the silo (default true).</summary>
    public const string SettingKey = "Security:RefuseClientCallsToInternalGrains";

    private static readonly Assembly[] OwnAssemblies = [typeof(IOrderGrain).Assembly, typeof(ClientCallFilter).Assembly];
    private readonly ConcurrentDictionary<Type, bool> _internal = new();

    public Task Invoke(IIncomingGrainCallContext context)
    {
        // The caller first: it is a struct compare, and most calls (grain to grain, stream deliveries) stop there.
        if (IsExternalClient(context.SourceId) && context.InterfaceMethod?.DeclaringType is { } declaring && IsInternal(declaring))
        {
            throw new UnauthorizedAccessException(
                $"{declaring.Name} is internal to the cluster; clients call IOrderGrain, IOperationsGrain or IStoredStateGrain");
        }

        return context.Invoke();
    }

    /// <summary>A client connected through a gateway; the silo's own hosted client (key <c>hosted-…</c>) is not one.</summary>
    public static bool IsExternalClient(GrainId? source) =>
        source is { } id && id.Type.Equals(ClientGrainType)
        && !(id.Key.ToString() ?? "").StartsWith("hosted-", StringComparison.Ordinal);

    /// <summary>The grain type of every client's id (Orleans' <c>ClientGrainId</c>, internal to Orleans), made once.</summary>
    private static readonly GrainType ClientGrainType = GrainType.Create("sys.client");

    private bool IsInternal(Type type) => _internal.GetOrAdd(type, static t =>
        OwnAssemblies.Contains(t.Assembly) && t.GetCustomAttribute<ClientCallableAttribute>() is null);
}
