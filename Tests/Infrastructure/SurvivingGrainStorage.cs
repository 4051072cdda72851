using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Orleans.Storage;

namespace OrderFlow.Tests.Infrastructure;

/// <summary>
/// Test grain storage whose records live in the test process, not in a silo: they survive a silo being killed
/// and a whole new cluster being started, the way a real database would. Serialized with Orleans' own
/// serializer (a stored record is bytes, not a shared object) and ETag-checked like a real provider. A cluster whose
/// configuration sets <see cref="ScopeKey"/> keeps its records apart from every other scope (and from clusters without
/// one): a test that walks everything stored — a backfill of the whole order catalog — sees only its own orders.
/// </summary>
public sealed class SurvivingGrainStorage(string name, Serializer serializer, string? scope = null) : IGrainStorage
{
    /// <summary>The configuration key (a test cluster's <c>Properties</c>) that names the scope of the silo's records.</summary>
    public const string ScopeKey = "SurvivingStorage:Scope";

    private static readonly ConcurrentDictionary<string, (byte[] Data, string ETag)> Records = new(StringComparer.Ordinal);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (Records.TryGetValue(Key(stateName, grainId), out var record))
        {
            grainState.State = serializer.Deserialize<T>(record.Data);
            grainState.ETag = record.ETag;
            grainState.RecordExists = true;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var etag = Guid.NewGuid().ToString("N");
        var data = serializer.SerializeToArray(grainState.State);
        var stored = Records.AddOrUpdate(key,
            _ => grainState.ETag is null ? (data, etag) : throw Conflict(key, grainState.ETag, null),
            (_, existing) => existing.ETag == grainState.ETag ? (data, etag) : throw Conflict(key, grainState.ETag, existing.ETag));
        grainState.ETag = stored.ETag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        Records.TryRemove(Key(stateName, grainId), out _);
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    public static void AddTo(ISiloBuilder builder, params string[] names)
    {
        var scope = builder.Configuration[ScopeKey];
        foreach (var storageName in names)
        {
            builder.Services.AddGrainStorage(storageName, (sp, n) => new SurvivingGrainStorage(n, sp.GetRequiredService<Serializer>(), scope));
        }
    }

    /// <summary>The records whose key matches, as they are now: what a process that dies at this instant leaves behind.</summary>
    public static IReadOnlyDictionary<string, (byte[] Data, string ETag)> Snapshot(Func<string, bool> matches) =>
        Records.Where(pair => matches(pair.Key)).ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.Ordinal);

    /// <summary>
    /// Puts the matching records back to <paramref name="snapshot"/>: undoes whatever a "killed" in-process silo still
    /// wrote while it stopped (a test cluster's kill runs part of the shutdown), as a real crash would never write it.
    /// </summary>
    public static void Restore(IReadOnlyDictionary<string, (byte[] Data, string ETag)> snapshot, Func<string, bool> matches)
    {
        foreach (var key in Records.Keys.Where(matches).Where(key => !snapshot.ContainsKey(key)).ToArray())
        {
            Records.TryRemove(key, out _);
        }

        foreach (var (key, record) in snapshot)
        {
            Records[key] = record;
        }
    }

    /// <summary>What storage holds for a grain's state right now (not what an activation has in memory); null if nothing.</summary>
    public static T? Peek<T>(Serializer serializer, string storageName, string stateName, GrainId grainId, string? scope = null) where T : class =>
        Records.TryGetValue(KeyOf(scope, storageName, stateName, grainId), out var record) ? serializer.Deserialize<T>(record.Data) : null;

    private string Key(string stateName, GrainId grainId) => KeyOf(scope, name, stateName, grainId);

    private static string KeyOf(string? scope, string storageName, string stateName, GrainId grainId) =>
        scope is null ? $"{storageName}/{stateName}/{grainId}" : $"{scope}:{storageName}/{stateName}/{grainId}";

    private static InconsistentStateException Conflict(string key, string? expected, string? actual) =>
        new($"ETag mismatch on {key}", actual ?? "(none)", expected ?? "(none)");
}
