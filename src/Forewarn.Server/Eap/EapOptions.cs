using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Forewarn.Core.Aaa.Eap;
using Forewarn.Protocol.Eap;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Eap;

/// <summary>EAP (802.1X) settings: <c>Forewarn:Eap</c>.</summary>
public sealed class EapOptions
{
    public const string Section = "Forewarn:Eap";

    public bool Enabled { get; set; } = true;

    /// <summary>Outer methods in order of preference: peap, ttls, eap-tls, eap-mschapv2, eap-gtc, eap-md5.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>The server certificate (PEM with <see cref="KeyFile"/>, or .p12/.pfx); none: the data directory's own CA makes one (tls/).</summary>
    public string? CertificateFile { get; set; }
    public string? KeyFile { get; set; }
    /// <summary>A file holding the PKCS#12 password (never the password itself).</summary>
    public string? CertificatePasswordFile { get; set; }

    /// <summary>CAs (PEM) whose client certificates EAP-TLS accepts; by default the data directory's CA when it made the server certificate.</summary>
    public string? ClientCaFile { get; set; }

    /// <summary>EAP-TLS: a valid certificate naming no user is accepted as a member of this group (unset: refused).</summary>
    public string? CertificateGroup { get; set; }

    [Range(64, 3000)]
    public int FragmentSize { get; set; } = 1024;

    [Range(1, 1_000_000)]
    public int MaxConversations { get; set; } = 65_536;

    [Range(1, 1_000_000)]
    public int MaxConversationsPerClient { get; set; } = 8_192;

    /// <summary>A conversation whose peer says nothing for this long is forgotten.</summary>
    [Range(1, 600)]
    public int IdleSeconds { get; set; } = 30;

    /// <summary>"1.2" or "1.3": the lowest and highest TLS versions of the tunnels and EAP-TLS.</summary>
    public string MinTlsVersion { get; set; } = "1.2";
    public string MaxTlsVersion { get; set; } = "1.3";

    private static readonly Dictionary<string, byte> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["peap"] = EapType.Peap, ["ttls"] = EapType.Ttls, ["eap-ttls"] = EapType.Ttls, ["tls"] = EapType.Tls, ["eap-tls"] = EapType.Tls,
        ["eap-mschapv2"] = EapType.MsChapV2, ["mschapv2"] = EapType.MsChapV2, ["eap-gtc"] = EapType.Gtc, ["gtc"] = EapType.Gtc,
        ["eap-md5"] = EapType.Md5, ["md5"] = EapType.Md5,
    };

    /// <summary>The settings the EAP service runs with: certificates loaded (or made), each problem one sentence.</summary>
    public EapSettings Build(string dataDirectory, ILogger logger)
    {
        var methods = new List<byte>();
        foreach (var name in Methods)
        {
            if (!Names.TryGetValue(name.Trim(), out byte type))
                throw new StartupException($"Forewarn:Eap:Methods names '{name}': use peap, ttls, eap-tls, eap-mschapv2, eap-gtc or eap-md5.");
            if (!methods.Contains(type))
                methods.Add(type);
        }
        bool tls12 = ParseVersion(MinTlsVersion, "MinTlsVersion") <= 12;
        bool tls13 = ParseVersion(MaxTlsVersion, "MaxTlsVersion") >= 13;
        if (!tls12 && !tls13)
            throw new StartupException("Forewarn:Eap:MinTlsVersion is above MaxTlsVersion.");
        var defaults = new EapSettings();
        return new EapSettings
        {
            Methods = methods.Count > 0 ? methods : defaults.Methods,
            FragmentSize = FragmentSize,
            Tls = LoadTls(dataDirectory, logger, tls12, tls13),
            CertificateGroup = CertificateGroup,
        };
    }

    private static int ParseVersion(string text, string setting) => text.Trim() switch
    {
        "1.2" => 12,
        "1.3" => 13,
        _ => throw new StartupException($"Forewarn:Eap:{setting} is '{text}': use 1.2 or 1.3."),
    };

    private EapTlsCredentials LoadTls(string dataDirectory, ILogger logger, bool tls12, bool tls13)
    {
        string certificateFile, keyFile;
        string? clientCaFile = ClientCaFile;
        if (CertificateFile is { Length: > 0 })
        {
            certificateFile = CertificateFile;
            keyFile = KeyFile ?? "";
        }
        else
        {
            var authority = new CertificateAuthority(dataDirectory);
            if (authority.EnsureServer(Environment.MachineName))
                CertificatesCreated?.Invoke(authority);
            certificateFile = authority.ServerFile;
            keyFile = authority.ServerKeyFile;
            clientCaFile ??= authority.CaFile;
        }
        var (leaf, chain) = TlsFiles.LoadServer("Forewarn:Eap:CertificateFile", certificateFile, keyFile, CertificatePasswordFile);
        AsymmetricAlgorithm key = (AsymmetricAlgorithm?)leaf.GetRSAPrivateKey() ?? leaf.GetECDsaPrivateKey()
            ?? throw new StartupException($"Forewarn:Eap:CertificateFile '{certificateFile}': only RSA and ECDSA keys are supported.");
        var cas = clientCaFile is { Length: > 0 } ? TlsFiles.LoadCas("Forewarn:Eap:ClientCaFile", clientCaFile) : [];
        if (cas.Count == 0)
            LogNoClientCa(logger);
        return new EapTlsCredentials(chain.Select(c => c.RawData).ToList(), key, cas, tls12, tls13);
    }

    /// <summary>Raised when the first start made the data directory's CA and server certificate: the operator is told where they are.</summary>
    public static event Action<CertificateAuthority>? CertificatesCreated;

    private static void LogNoClientCa(ILogger logger) =>
        logger.LogWarning(40, "EAP-TLS refuses every client certificate: no Forewarn:Eap:ClientCaFile is configured");
}
