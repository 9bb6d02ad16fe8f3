using System.Net;

namespace Forewarn.Relay;

/// <summary>One upstream server.</summary>
public sealed class UpstreamOptions
{
    public string Address { get; set; } = "";
    public int AuthPort { get; set; } = 1812;
    public int AcctPort { get; set; } = 1813;
    public string Secret { get; set; } = "";
    public int Priority { get; set; } = 1;
    public int Weight { get; set; } = 1;
    /// <summary>Where the server takes Probes (Forewarn servers; ignored for classic ones).</summary>
    public int AdvisoryPort { get; set; } = 1814;
    /// <summary>The relay's own advisory key for this server (64 hex digits, `forewarn clients advisory-key` on the server), when the server's entry for the relay gives each NAS its own.</summary>
    public string? AdvisoryKey { get; set; }
    /// <summary>Where the server serves TACACS+ (0: the relay sends it none).</summary>
    public int TacacsPort { get; set; }
    /// <summary>The relay's TACACS+ key at this server (default: <see cref="Secret"/>).</summary>
    public string? TacacsKey { get; set; }
}

/// <summary>Section <c>Forewarn:Relay</c>: where `forewarn relay` forwards its devices' requests.</summary>
public sealed class RelayOptions
{
    public List<UpstreamOptions> Upstream { get; set; } = [];
    /// <summary>The port the relay takes advisories on (its address is <see cref="LocalAddress"/>).</summary>
    public int AdvisoryPort { get; set; } = 1815;
    /// <summary>
    /// The address the upstream servers know the relay by: its requests, TACACS+ connections and advisories
    /// use it. Default: the first listen address; required when that is a wildcard (0.0.0.0, ::).
    /// </summary>
    public string? LocalAddress { get; set; }

    /// <summary>The relay's own address toward its upstreams, or null when it cannot be known (a wildcard listen address and no <see cref="LocalAddress"/>).</summary>
    public IPAddress? UpstreamAddress(IReadOnlyList<string> listen)
    {
        if (LocalAddress is { Length: > 0 } configured)
            return IPAddress.Parse(configured);
        var first = IPAddress.Parse(listen[0]);
        return first.Equals(IPAddress.Any) || first.Equals(IPAddress.IPv6Any) ? null : first;
    }
    /// <summary>"udp" or "icmp".</summary>
    public string Carrier { get; set; } = "udp";
    /// <summary>Classic timeout per attempt, seconds, and retries: the fallback for servers that send no advisories.</summary>
    public double TimeoutSeconds { get; set; } = 2;
    public int Retries { get; set; } = 1;
    /// <summary>RFC 5080 back-off: retransmissions double the timeout (±10 %), up to this many seconds.</summary>
    public double MaxTimeoutSeconds { get; set; } = 16;
    /// <summary>How long a server that did not answer is avoided (it is watched with Status-Server meanwhile).</summary>
    public double DeadTimeSeconds { get; set; } = 30;
    public double StatusServerSeconds { get; set; } = 2;
    /// <summary>How often the spool is tried when it is not empty.</summary>
    public double SpoolRetrySeconds { get; set; } = 1;

    public IEnumerable<string> Validate()
    {
        if (Upstream.Count == 0)
            yield return "Forewarn:Relay:Upstream needs at least one server.";
        foreach (var upstream in Upstream)
        {
            if (!IPAddress.TryParse(upstream.Address, out _))
                yield return $"Forewarn:Relay:Upstream: '{upstream.Address}' is not an IP address.";
            if (string.IsNullOrEmpty(upstream.Secret))
                yield return $"Forewarn:Relay:Upstream {upstream.Address}: the secret is missing.";
            if (upstream.AdvisoryKey is { } key && (key.Length != 64 || !key.All(Uri.IsHexDigit)))
                yield return $"Forewarn:Relay:Upstream {upstream.Address}: AdvisoryKey must be 64 hex digits (forewarn clients advisory-key prints it).";
        }
        if (LocalAddress is { Length: > 0 } local && (!IPAddress.TryParse(local, out var parsed) || parsed.Equals(IPAddress.Any) || parsed.Equals(IPAddress.IPv6Any)))
            yield return $"Forewarn:Relay:LocalAddress '{local}' is not one address of this host (the upstream servers' client entry for the relay).";
        if (TimeoutSeconds <= 0 || Retries < 0)
            yield return "Forewarn:Relay: TimeoutSeconds must be positive and Retries not negative.";
    }
}
