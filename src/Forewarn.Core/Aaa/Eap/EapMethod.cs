using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Eap;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>What the server knows and may use while running EAP for one conversation.</summary>
public sealed class EapContext(RadiusClient client, CredentialVerifier credentials, EapSettings settings)
{
    public RadiusClient Client { get; } = client;
    public CredentialVerifier Credentials { get; } = credentials;
    public EapSettings Settings { get; } = settings;
}

public enum StepKind { Request, Success, Failure }

/// <summary>
/// A method's answer to one response: another request (its type data), success (with the MSK where
/// the method derives one, and the user it authenticated), or failure with the reason for the log.
/// </summary>
public readonly record struct MethodStep(StepKind Kind, byte[]? TypeData = null, byte[]? Msk = null, string? Reason = null, UserRecord? User = null, GroupRecord? Group = null, string? Method = null)
{
    public static MethodStep Request(byte[] typeData) => new(StepKind.Request, typeData);
    public static MethodStep Fail(string reason, UserRecord? user = null) => new(StepKind.Failure, Reason: reason, User: user);
}

/// <summary>
/// One EAP method on the server side: a small state machine that gives its first request and then
/// answers each response of its type, as hostapd's <c>eap_server_*.c</c> do. It never sees RADIUS.
/// </summary>
public abstract class EapMethod
{
    public abstract byte Type { get; }

    /// <summary>The flag of <see cref="AuthMethods"/> the user needs for this method.</summary>
    public abstract AuthMethods Flag { get; }

    /// <summary>The first request's type data. <paramref name="identity"/> is the identity the peer gave.</summary>
    public abstract ValueTask<MethodStep> StartAsync(EapContext context, string identity, byte identifier, CancellationToken cancellationToken);

    /// <summary>The answer to a response of this method's type; <paramref name="identifier"/> is the request's (and response's) identifier.</summary>
    public abstract ValueTask<MethodStep> ProcessAsync(EapContext context, ReadOnlyMemory<byte> typeData, byte identifier, CancellationToken cancellationToken);

    /// <summary>How the method is named in logs ("PEAP/EAP-MSCHAPv2").</summary>
    public virtual string Describe => EapType.Name(Type);
}

/// <summary>The methods a server offers, in its order of preference, and the limits of its conversations.</summary>
public sealed class EapSettings
{
    /// <summary>Outer methods proposed after the identity, best first; a peer that wants another answers with a NAK.</summary>
    public IReadOnlyList<byte> Methods { get; init; } = [EapType.Peap, EapType.Ttls, EapType.Tls, EapType.MsChapV2, EapType.Gtc, EapType.Md5];

    /// <summary>Methods inside PEAP and TTLS (TTLS also carries PAP, CHAP and MS-CHAPv2 without EAP).</summary>
    public IReadOnlyList<byte> InnerMethods { get; init; } = [EapType.MsChapV2, EapType.Gtc, EapType.Md5, EapType.Tls];

    /// <summary>TLS data per EAP packet (FreeRADIUS's fragment_size): 1,024 keeps each RADIUS packet far below a common 1,500-octet MTU.</summary>
    public int FragmentSize { get; init; } = 1024;

    /// <summary>The server's TLS identity; null: the TLS-based methods are not offered.</summary>
    public EapTlsCredentials? Tls { get; init; }

    /// <summary>EAP-TLS: a valid client certificate whose identity names no user is accepted as a member of this group (null: refused).</summary>
    public string? CertificateGroup { get; init; }

    /// <summary>The name in EAP-MSCHAPv2 challenges.</summary>
    public string ServerName { get; init; } = "forewarn";
}
