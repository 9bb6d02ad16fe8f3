using System.ComponentModel.DataAnnotations;

namespace Forewarn.Server.Tacacs;

/// <summary>The TACACS+ listeners: section <c>Forewarn:Tacacs</c> (docs/configuration.md).</summary>
public sealed class TacacsOptions
{
    public const string Section = "Forewarn:Tacacs";

    /// <summary>Serve TACACS+ beside RADIUS (on the same Forewarn:Listen addresses).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The plain TACACS+ port (RFC 8907: 49); 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int Port { get; set; } = 49;

    /// <summary>
    /// True when <see cref="Port"/> was chosen by the operator: then a port that cannot be opened stops the
    /// start. The default port 49 needs root; without it the server starts without TACACS+ and says why.
    /// </summary>
    public bool PortConfigured { get; set; }

    /// <summary>The TACACS+ over TLS 1.3 port (RFC 9887: 300, "tacacss"); opened only with a certificate configured.</summary>
    [Range(0, 65535)]
    public int TlsPort { get; set; } = 300;

    /// <summary>The server certificate for TLS: PEM (with <see cref="CertificateKeyFile"/> when the key is separate) or PKCS#12.</summary>
    public string? CertificateFile { get; set; }

    public string? CertificateKeyFile { get; set; }

    /// <summary>The CA (PEM, one or more certificates) that signs client certificates: TLS requires one from each device.</summary>
    public string? ClientCaFile { get; set; }

    /// <summary>A connection with no packet in progress and no session open is closed after this long.</summary>
    [Range(1, 86_400)]
    public int IdleTimeoutSeconds { get; set; } = 120;

    /// <summary>A packet begun must arrive whole within this long (a slow sender cannot hold a connection with a trickle).</summary>
    [Range(1, 600)]
    public int PacketTimeoutSeconds { get; set; } = 10;

    /// <summary>An authentication session waiting for the device's CONTINUE is forgotten after this long.</summary>
    [Range(1, 3600)]
    public int SessionTimeoutSeconds { get; set; } = 120;

    [Range(1, 100_000)]
    public int MaxConnections { get; set; } = 4096;

    [Range(1, 10_000)]
    public int MaxConnectionsPerClient { get; set; } = 64;

    [Range(1, 1024)]
    public int MaxSessionsPerConnection { get; set; } = 32;

    public bool TlsEnabled => CertificateFile is { Length: > 0 };
}
