using System.ComponentModel.DataAnnotations;
using System.Net;

namespace Forewarn.Server;

/// <summary>
/// The server's configuration: section <c>Forewarn</c> of forewarn.json, environment variables
/// <c>FOREWARN__*</c>, and command-line overrides. Validated at start; see docs/configuration.md.
/// </summary>
public sealed class ForewarnOptions : IValidatableObject
{
    public const string Section = "Forewarn";

    /// <summary>The data directory: database, key file. Created on first start.</summary>
    [Required]
    public string DataDirectory { get; set; } = "";

    /// <summary>
    /// A PostgreSQL connection string (Npgsql's keywords, e.g. "Host=10.0.0.5;Database=forewarn;Username=forewarn")
    /// for a store several servers share; unset, the data directory's SQLite file. The password comes from
    /// PGPASSWORD, a password file (Passfile=, or ~/.pgpass) or this setting in forewarn.json, never the command line.
    /// </summary>
    public string? Postgres { get; set; }

    /// <summary>
    /// With a PostgreSQL store: read users and clients from FreeRADIUS's own tables in the same database as
    /// well (radcheck, radreply, radusergroup, radgroupcheck, radgroupreply, nas; Forewarn's own first) and
    /// write each session into radacct as rlm_sql does, beside Forewarn's accounting records.
    /// </summary>
    public bool FreeRadiusSchema { get; set; }

    /// <summary>
    /// With a PostgreSQL store: a batch of accounting the database has not committed within this time (or
    /// that failed) is committed to the local spill in the data directory instead and acknowledged, then
    /// replayed in order when the database answers. Below a NAS's usual 3–5 s timeout.
    /// </summary>
    [Range(50, 60_000)]
    public int AccountingSpillAfterMs { get; set; } = 2000;

    /// <summary>Addresses to listen on (IPv4 or IPv6 literals); none configured means 127.0.0.1.</summary>
    /// <remarks>The default is not put in the list itself: the configuration binder appends to a list, so a default entry would stay beside the configured ones.</remarks>
    public List<string> Listen { get; set; } = [];

    public IReadOnlyList<string> ListenAddresses => Listen.Count > 0 ? Listen : ["127.0.0.1"];

    [Range(0, 65535)]
    public int AuthPort { get; set; } = 1812;

    [Range(0, 65535)]
    public int AcctPort { get; set; } = 1813;

    /// <summary>
    /// Workers: the bound on requests in processing at once. An accounting request holds one until its
    /// record is on disk, so this also bounds a group commit's batch (and with it accounting throughput).
    /// </summary>
    [Range(1, 4096)]
    public int Workers { get; set; } = 512;

    /// <summary>Threads receiving on each socket, each running the requests it receives (0: one per core, at least two).</summary>
    [Range(0, 256)]
    public int Receivers { get; set; }

    /// <summary>Requests queued for a worker before new ones are dropped (counted as QueueFull).</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 8192;

    /// <summary>
    /// A queued request that has waited longer than this for a worker is dropped unprocessed (counted as
    /// QueueTimeout, a distress drop): its NAS has given up on it, and working on it would only delay the
    /// requests behind it.
    /// </summary>
    [Range(1, 600_000)]
    public int QueueTimeoutMs { get; set; } = 5000;

    /// <summary>
    /// The queue stands when its oldest request has waited longer than this for a whole
    /// <see cref="QueueIntervalMs"/>: more arrives than the workers carry. It then serves the newest
    /// request first and drops what has waited past <see cref="QueueTimeoutUnderLoadMs"/>, until its
    /// oldest request is younger than this again.
    /// </summary>
    [Range(1, 60_000)]
    public int QueueTargetMs { get; set; } = 20;

    [Range(1, 60_000)]
    public int QueueIntervalMs { get; set; } = 100;

    /// <summary>
    /// While the queue stands, a request that has waited longer than this is dropped (QueueTimeout): the
    /// workers cannot carry everything, and a fresh request is the one they can still answer well within
    /// its NAS's timeout (typically 2–5 s), where an old one would be answered late and delay the rest.
    /// </summary>
    [Range(1, 600_000)]
    public int QueueTimeoutUnderLoadMs { get; set; } = 250;

    /// <summary>How long a response is kept to answer retransmissions (RFC 5080 §2.2.2).</summary>
    [Range(1, 600)]
    public int DuplicateWindowSeconds { get; set; } = 30;

    /// <summary>Extra dictionary files in FreeRADIUS format (e.g. /usr/share/freeradius/dictionary.cisco).</summary>
    public List<string> Dictionaries { get; set; } = [];

    /// <summary>PBKDF2 iterations for PAP-only users' salted hashes.</summary>
    [Range(1_000, 10_000_000)]
    public int PasswordIterations { get; set; } = Core.Aaa.PasswordHasher.DefaultIterations;

    /// <summary>Socket receive buffer in bytes, so bursts queue in the kernel rather than drop.</summary>
    [Range(65_536, 512 * 1024 * 1024)]
    public int ReceiveBufferBytes { get; set; } = 8 * 1024 * 1024;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var address in Listen)
        {
            if (!IPAddress.TryParse(address, out _))
                yield return new ValidationResult($"Forewarn:Listen entry '{address}' is not an IP address.", [nameof(Listen)]);
        }
        if (AuthPort != 0 && AuthPort == AcctPort)
            yield return new ValidationResult($"Forewarn:AuthPort and Forewarn:AcctPort are both {AuthPort}.", [nameof(AuthPort)]);
        foreach (var file in Dictionaries)
        {
            if (!File.Exists(file))
                yield return new ValidationResult($"Dictionary file '{file}' does not exist.", [nameof(Dictionaries)]);
        }
    }
}

/// <summary>A setting that cannot work, found while starting: the command line prints the message, never a stack trace.</summary>
public sealed class StartupException(string message) : Exception(message);
