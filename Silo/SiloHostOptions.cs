using System.ComponentModel.DataAnnotations;

namespace OrderFlow.Silo;

/// <summary>How this silo process is hosted: section <c>Silo</c> of appsettings.json, or <c>Silo__*</c> environment variables.</summary>
public sealed class SiloHostOptions
{
    public const string SectionName = "Silo";

    /// <summary>Storage/stream profile. <c>Embedded</c> (default): in-memory storage, memory streams, one localhost silo.</summary>
    [Required, AllowedValues("Embedded", "embedded")]
    public string Profile { get; set; } = "Embedded";

    /// <summary>Silo-to-silo port. Default 11111 (Orleans' default).</summary>
    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port. Default 30000 (Orleans' default).</summary>
    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;
}
