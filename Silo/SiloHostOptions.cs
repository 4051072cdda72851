using System.ComponentModel.DataAnnotations;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Silo;

/// <summary>How this silo process is hosted: section <c>Silo</c> of appsettings.json, or <c>Silo__*</c> environment variables.</summary>
public sealed class SiloHostOptions : IValidatableObject
{
    public const string SectionName = "Silo";

    /// <summary>
    /// Storage/stream profile, in any casing. <c>Embedded</c> (default): in-memory storage, memory streams, one localhost silo.
    /// <c>Azure</c>: grain state, streams, membership and reminders in Azure Storage (<see cref="AzureStorage"/>), several silos.
    /// </summary>
    [Required]
    public string Profile { get; set; } = "Embedded";

    public bool IsAzure => string.Equals(Profile, "Azure", StringComparison.OrdinalIgnoreCase);

    private bool IsEmbedded => string.Equals(Profile, "Embedded", StringComparison.OrdinalIgnoreCase);

    /// <summary>Silo-to-silo port. Default 11111 (Orleans' default).</summary>
    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port. Default 30000 (Orleans' default).</summary>
    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Azure profile: the Azure Storage connection string. Default: the local emulator on its standard ports.</summary>
    public string AzureStorage { get; set; } = "UseDevelopmentStorage=true";

    /// <summary>Azure profile: the cluster the silo joins (membership rows are partitioned by it). Default <c>orderflow</c>.</summary>
    public string ClusterId { get; set; } = "orderflow";

    /// <summary>
    /// Azure profile: the service whose grain state, reminders and queues this silo uses. It names the queues, so it
    /// may hold only letters, digits and single dashes. Default <c>orderflow</c>.
    /// </summary>
    public string ServiceId { get; set; } = "orderflow";

    /// <summary>
    /// Embedded profile: where grain state lives. <c>Local</c> (default): this process's memory, read and written in
    /// place (<see cref="SiloLocalGrainStorage"/>). <c>Grains</c>: Orleans' memory storage, a storage-grain call per read
    /// and write (what the embedded profile used before; kept to compare them, <c>Silo__EmbeddedStorage=Grains ./bench.sh</c>).
    /// </summary>
    public string EmbeddedStorage { get; set; } = "Local";

    public bool EmbeddedStorageIsLocal => string.Equals(EmbeddedStorage, "Local", StringComparison.OrdinalIgnoreCase);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!EmbeddedStorageIsLocal && !string.Equals(EmbeddedStorage, "Grains", StringComparison.OrdinalIgnoreCase))
        {
            yield return new ValidationResult($"EmbeddedStorage must be Local or Grains (any casing), was '{Ids.Printable(EmbeddedStorage)}'", [nameof(EmbeddedStorage)]);
        }

        // Checked here rather than with [AllowedValues], which compares case-sensitively: "AZURE" is as good as "Azure".
        if (!IsAzure && !IsEmbedded)
        {
            yield return new ValidationResult($"Profile must be Embedded or Azure (any casing), was '{Ids.Printable(Profile)}'", [nameof(Profile)]);
        }

        if (SiloPort == GatewayPort)
        {
            yield return new ValidationResult($"SiloPort and GatewayPort must differ (both {SiloPort})");
        }

        if (!IsAzure)
        {
            yield break;
        }

        if (string.IsNullOrWhiteSpace(ClusterId))
        {
            yield return new ValidationResult("ClusterId must be set for the Azure profile");
        }

        if (!AzureOrderStorageOptions.IsValidServiceId(ServiceId))
        {
            yield return new ValidationResult(
                $"ServiceId '{ServiceId}' cannot name Azure queues: use letters, digits and single dashes, at most 40 characters");
        }
    }
}
