using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Azure.Data.Tables;

namespace OrderFlow.Grains.Hosting;

/// <summary>
/// Settings of the durable profile (<see cref="OrderMessagingSiloBuilderExtensions.UseAzureOrderStorage"/>): where
/// Azure Storage is, and how the order stream's Azure queues are read. Validated before the silo is built.
/// </summary>
public sealed partial class AzureOrderStorageOptions : IValidatableObject
{
    /// <summary>Section holding the queue settings; the connection string itself is <c>Silo:AzureStorage</c>.</summary>
    public const string SectionName = "AzureQueues";

    /// <summary>An Azure Storage connection string. Default: the local emulator on its standard ports.</summary>
    [Required]
    public string ConnectionString { get; set; } = "UseDevelopmentStorage=true";

    /// <summary>
    /// How many Azure queues carry the order stream (stream keys are hashed onto them). Default 4: two silos get two
    /// each, and an idle silo polls only four queues against a single-threaded emulator.
    /// </summary>
    [Range(1, 64)]
    public int QueueCount { get; set; } = 4;

    /// <summary>
    /// How long a message read by a pulling agent stays invisible before the queue hands it out again. Default 30 s.
    /// A message is deleted only after every subscriber took it and the agent's cache let it go; if that takes longer
    /// than this, the message is delivered again (harmless — subscribers drop it by sequence — but it is extra load
    /// that feeds on itself when the emulator is already slow). After a silo dies, the messages its agents had read
    /// but not deleted come back after this time: that bounds how long an event read by the dead silo can wait.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan QueueVisibilityTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Messages each queue's agent may hold in memory (read, not yet deleted). Default 256: at ~150 delivered
    /// events/s on the emulator, a full cache on every queue is drained in seconds, far inside the visibility timeout,
    /// and one read takes up to a tenth of it (25 messages, under Azure's 32 per request).
    /// </summary>
    [Range(10, 100_000)]
    public int QueueCacheSize { get; set; } = 256;

    /// <summary>
    /// How often an agent polls an empty queue. Default 250 ms (Orleans' default is 100 ms): it adds at most a quarter
    /// of a second to a delivery after a lull, and keeps idle polling of the emulator to 4 requests/s per queue.
    /// While messages keep coming the agent reads back to back and this does not apply.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan QueuePollPeriod { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Connections this silo opens to each storage endpoint (the table service, the queue service), at most, per pool.
    /// Default 64. There are two pools: grain state, ledger entries and the queues share one; membership and reminders
    /// have their own, so that a silo's liveness never waits behind its grain writes. A request beyond the bound waits in
    /// the silo for a free connection (that wait counts in the request's 20 s network timeout) instead of opening a
    /// socket of its own: without a bound, a slow storage account makes the silo open one socket per waiting request
    /// (739 to Azurite in one durable bench, 1,362 in another; ~10 KB of heap each, docs/BENCHMARKS.md), and on Azure
    /// each socket to storage is an outbound (SNAT) port, a few thousand per instance. The emulator gains nothing beyond
    /// 64 (the bench reaches the bound at the same throughput); raise it for a silo that keeps more requests than that in
    /// flight to one service of a fast account.
    /// </summary>
    [Range(1, 4096)]
    public int MaxConnectionsPerEndpoint { get; set; } = 64;

    /// <summary>The queue names for a service: lowercase, digits and single dashes, unique per service id.</summary>
    public List<string> QueueNamesFor(string serviceId)
    {
        var names = Enumerable.Range(0, QueueCount).Select(i => $"orderflow-{serviceId.ToLowerInvariant()}-{i}").ToList();
        var bad = names.FirstOrDefault(name => !QueueName().IsMatch(name) || name.Length > 63);
        return bad is null
            ? names
            : throw new InvalidOperationException(
                $"Azure queue name '{bad}' derived from ServiceId '{serviceId}' is invalid: a service id for the Azure profile may hold only " +
                "letters, digits and single dashes (no '_'), and be at most 40 characters");
    }

    /// <summary>A service id that gives valid Azure queue names (Orleans lowercases them; '_' is rejected by the queue service).</summary>
    public static bool IsValidServiceId(string? serviceId) =>
        serviceId is { Length: > 0 and <= 40 } && ServiceIdRule().IsMatch(serviceId);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        string? problem = null;
        try
        {
            // Parses the connection string the way every provider will; nothing is sent.
            _ = new TableServiceClient(ConnectionString);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException)
        {
            problem = $"AzureStorage is not a valid Azure Storage connection string: {ex.Message}";
        }

        if (problem is not null)
        {
            yield return new ValidationResult(problem, [nameof(ConnectionString)]);
        }
    }

    /// <summary>Every problem with these settings, empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(this, new ValidationContext(this), results, validateAllProperties: true);
        return results.Select(r => r.ErrorMessage ?? "invalid setting").ToArray();
    }

    [GeneratedRegex("^[a-z0-9]+(-[a-z0-9]+)*$")]
    private static partial Regex QueueName();

    [GeneratedRegex("^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")]
    private static partial Regex ServiceIdRule();
}
