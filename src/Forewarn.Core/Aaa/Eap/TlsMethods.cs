using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Eap;
using Forewarn.Protocol.Radius;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>
/// EAP-TLS (RFC 5216; RFC 9190 for TLS 1.3): the client's certificate, chained to a configured CA, is
/// the credential. Its identity (subject CN, then a SAN e-mail address) names a user, or else the
/// configured certificate group. With TLS 1.3 the server ends with one octet of application data, 0x00
/// (RFC 9190 §2.5), before EAP-Success.
/// </summary>
public sealed class TlsAuthMethod : TlsMethod
{
    public override byte Type => EapType.Tls;
    public override AuthMethods Flag => AuthMethods.EapTls;
    protected override bool RequestClientCertificate => true;
    protected override string KeyLabel => "client EAP encryption";

    protected override ValueTask<MethodStep?> OnHandshakeCompleteAsync(EapContext context, bool finishedPending, CancellationToken cancellationToken)
    {
        if (Tls!.IsTls13)
            Tls.WriteApplicationData([0]);
        return ValueTask.FromResult<MethodStep?>(null);
    }

    protected override async ValueTask<MethodStep?> OnAcknowledgedAsync(EapContext context, CancellationToken cancellationToken)
    {
        if (!Tls!.HandshakeComplete || Tls.ClientCertificate is not { } certificate)
            return MethodStep.Fail("EAP-TLS: acknowledged before the handshake completed");
        foreach (string name in certificate.Names)
        {
            var (user, group) = await context.Credentials.FindAsync(context.Client.Name, name, cancellationToken).ConfigureAwait(false);
            if (user is not null)
                return Succeed(user, group);
        }
        if (context.Settings.CertificateGroup is { } groupName && await context.Credentials.FindGroupAsync(groupName, cancellationToken).ConfigureAwait(false) is { } certificateGroup)
        {
            var member = new UserRecord(certificate.Names.Count > 0 ? certificate.Names[0] : certificate.Subject, AuthMethods.EapTls, new Credential(null, null, null), groupName, [], []);
            return Succeed(member, certificateGroup);
        }
        return MethodStep.Fail($"EAP-TLS: no user for the certificate of {certificate.Subject}");
    }
}

/// <summary>
/// PEAPv0 ([MS-PEAP]): an inner EAP conversation (EAP-MSCHAPv2, EAP-GTC, …) inside TLS, its packets
/// compressed (the EAP header left out) except the Extensions method, whose Result TLV ends the
/// tunnel. Keys from TLS: PRF "client EAP encryption" (TLS 1.2) or the exporter with type 25 (TLS 1.3).
/// No cryptobinding (as FreeRADIUS and hostapd's default); peers treat it as optional.
/// </summary>
public sealed class PeapMethod : TlsMethod
{
    private EapMachine? _inner;
    private EapResult _innerSuccess;
    private bool _resultSent;

    public override byte Type => EapType.Peap;
    public override AuthMethods Flag => AuthMethods.Peap;
    protected override string KeyLabel => "client EAP encryption";
    public override string Describe => _inner is null ? "PEAP" : $"PEAP/{_inner.Describe}";

    protected override ValueTask<MethodStep?> OnHandshakeCompleteAsync(EapContext context, bool finishedPending, CancellationToken cancellationToken)
    {
        // With TLS 1.3 the server's Finished has already gone: the inner conversation starts at once.
        if (!finishedPending)
            StartInner(context);
        return ValueTask.FromResult<MethodStep?>(null);
    }

    protected override ValueTask<MethodStep?> OnAcknowledgedAsync(EapContext context, CancellationToken cancellationToken)
    {
        if (_inner is not null || !Tls!.HandshakeComplete)
            return ValueTask.FromResult<MethodStep?>(MethodStep.Fail($"{Describe}: an acknowledgement where an inner response was expected"));
        StartInner(context);
        return ValueTask.FromResult<MethodStep?>(null);
    }

    private void StartInner(EapContext context)
    {
        _inner = new EapMachine(context, context.Settings.InnerMethods, inner: true);
        Tls!.WriteApplicationData(_inner.Begin().AsSpan(EapPacket.HeaderLength));
    }

    protected override async ValueTask<MethodStep?> OnApplicationDataAsync(EapContext context, byte[] data, CancellationToken cancellationToken)
    {
        if (_inner is null)
            return MethodStep.Fail("PEAP: tunnel data before the inner conversation began");
        if (_resultSent)
        {
            // [MS-PEAP] §2.2.8: the peer's Result TLV (type 3, mandatory bit) echoes success.
            if (!EapPacket.TryParse(data, out var result, out _) || result.Type != EapType.Extensions)
                return MethodStep.Fail($"{Describe}: an answer other than the Result TLV");
            var tlv = result.TypeData;
            bool success = tlv.Length >= 6 && (BinaryPrimitives.ReadUInt16BigEndian(tlv) & 0x3FFF) == 3 && BinaryPrimitives.ReadUInt16BigEndian(tlv[4..]) == 1;
            return success
                ? Succeed(_innerSuccess.User, _innerSuccess.Group)
                : MethodStep.Fail($"{Describe}: the peer's Result TLV is not success", _innerSuccess.User);
        }
        // Compressed (PEAPv0): Type and Type-Data only; the header is rebuilt for the inner machine.
        var packet = EapPacket.Build(EapCode.Response, _inner.Identifier, data[0], data.AsSpan(1));
        var step = await _inner.ProcessAsync(packet, cancellationToken).ConfigureAwait(false);
        switch (step.Kind)
        {
            case StepKind.Request:
                Tls!.WriteApplicationData(step.Packet.AsSpan(EapPacket.HeaderLength));
                return null;
            case StepKind.Success:
                _innerSuccess = step;
                _resultSent = true;
                byte identifier = (byte)(_inner.Identifier + 1);
                Tls!.WriteApplicationData(EapPacket.Build(EapCode.Request, identifier, EapType.Extensions, [0x80, 0x03, 0x00, 0x02, 0x00, 0x01]));
                return null;
            default:
                return MethodStep.Fail(step.Reason ?? "inner authentication failed", step.User);
        }
    }
}

/// <summary>
/// EAP-TTLS v0 (RFC 5281): Diameter AVPs inside TLS carry PAP, CHAP, MS-CHAPv2 or an inner EAP
/// conversation; the challenges of CHAP and MS-CHAPv2 come from TLS ("ttls challenge"), so a replay
/// from another tunnel fails. Keys: PRF "ttls keying material" (TLS 1.2) or the exporter with type 21.
/// </summary>
public sealed class TtlsMethod : TlsMethod
{
    private const uint UserNameAvp = 1, UserPasswordAvp = 2, ChapPasswordAvp = 3, ChapChallengeAvp = 60, EapMessageAvp = 79;
    private const uint Microsoft = AttributeTypes.MicrosoftVendor;
    private EapMachine? _inner;
    private string _phase2 = "";
    private MethodStep _successPending;

    public override byte Type => EapType.Ttls;
    public override AuthMethods Flag => AuthMethods.Ttls;
    protected override string KeyLabel => "ttls keying material";
    private const string ChallengeLabel = "ttls challenge";

    /// <summary>Beside the keys, the challenge CHAP and MS-CHAPv2 inside the tunnel must have used (16 octets and an identifier).</summary>
    protected override IReadOnlyList<TlsEngine.KeyRequest> KeyRequests(bool tls13) => [.. base.KeyRequests(tls13), new(ChallengeLabel, null, 17)];
    public override string Describe => _phase2.Length == 0 ? "EAP-TTLS" : $"EAP-TTLS/{(_inner is null ? _phase2 : _inner.Describe)}";

    protected override ValueTask<MethodStep?> OnAcknowledgedAsync(EapContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult<MethodStep?>(_successPending.Kind == StepKind.Success
            ? Succeed(_successPending.User, _successPending.Group)
            : MethodStep.Fail($"{Describe}: the tunnel ended without an inner authentication"));

    protected override async ValueTask<MethodStep?> OnApplicationDataAsync(EapContext context, byte[] data, CancellationToken cancellationToken)
    {
        if (!DiameterAvp.TryParse(data, out var avps, out string error))
            return MethodStep.Fail($"EAP-TTLS: {error}");
        var eap = Find(avps, EapMessageAvp, 0);
        if (_inner is not null || eap is not null)
            return await InnerEapAsync(context, avps, cancellationToken).ConfigureAwait(false);
        if (Find(avps, UserNameAvp, 0) is not { Length: > 0 } nameBytes)
            return MethodStep.Fail("EAP-TTLS: no User-Name in the tunnel");
        string name = Encoding.UTF8.GetString(nameBytes);
        if (Find(avps, UserPasswordAvp, 0) is { } password)
            return await PapAsync(context, name, password, cancellationToken).ConfigureAwait(false);
        if (Find(avps, ChapPasswordAvp, 0) is { } chap)
            return await ChapAsync(context, name, chap, Find(avps, ChapChallengeAvp, 0), cancellationToken).ConfigureAwait(false);
        if (Find(avps, AttributeTypes.MsChap2Response, Microsoft) is { } msChap2)
            return await MsChapV2Async(context, name, nameBytes, msChap2, Find(avps, AttributeTypes.MsChapChallenge, Microsoft), cancellationToken).ConfigureAwait(false);
        return MethodStep.Fail("EAP-TTLS: no inner method Forewarn supports in the tunnel (PAP, CHAP, MS-CHAPv2 or EAP)");
    }

    private static byte[]? Find(List<DiameterAvp.Avp> avps, uint code, uint vendor)
    {
        byte[]? joined = null;
        foreach (var avp in avps)
        {
            if (avp.Code == code && avp.Vendor == vendor)
                joined = joined is null ? avp.Data : [.. joined, .. avp.Data];
        }
        return joined;
    }

    private async ValueTask<(UserRecord?, GroupRecord?, string?)> FindAsync(EapContext context, string name, AuthMethods flag, CancellationToken cancellationToken)
    {
        var (user, group) = await context.Credentials.FindAsync(context.Client.Name, name, cancellationToken).ConfigureAwait(false);
        return (user, group, CredentialVerifier.Refusal(user, flag, Describe));
    }

    private async ValueTask<MethodStep?> PapAsync(EapContext context, string name, byte[] password, CancellationToken cancellationToken)
    {
        _phase2 = "PAP";
        var (user, group, refusal) = await FindAsync(context, name, AuthMethods.Pap, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        // RFC 5281 §11.2.5: the password is padded with zeros to a multiple of 16.
        int length = password.Length;
        while (length > 0 && password[length - 1] == 0)
            length--;
        bool verified = await context.Credentials.VerifyPasswordAsync(context.Client.Name, user!.Credential, password[..length]).ConfigureAwait(false);
        CryptographicOperations.ZeroMemory(password);
        return verified ? Succeed(user, group) : MethodStep.Fail("wrong credentials", user);
    }


    /// <summary>RFC 5281 §11.2.2-4: the challenge (and the CHAP/MS-CHAP identifier after it) the peer must have used.</summary>
    private byte[] Challenge() => Tls!.Key(ChallengeLabel);

    private async ValueTask<MethodStep?> ChapAsync(EapContext context, string name, byte[] chapPassword, byte[]? challenge, CancellationToken cancellationToken)
    {
        _phase2 = "CHAP";
        var expected = Challenge();
        if (chapPassword.Length != 17 || challenge is null || !challenge.AsSpan().SequenceEqual(expected.AsSpan(0, 16)) || chapPassword[0] != expected[16])
            return MethodStep.Fail("EAP-TTLS: the CHAP challenge is not this tunnel's");
        var (user, group, refusal) = await FindAsync(context, name, AuthMethods.Chap, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        var cleartext = new byte[256];
        try
        {
            int length = context.Credentials.Cleartext(user!.Credential, cleartext);
            if (length < 0)
                return MethodStep.Fail("CHAP needs the password kept sealed", user);
            return CredentialVerifier.VerifyChap(chapPassword[0], chapPassword.AsSpan(1), cleartext.AsSpan(0, length), challenge)
                ? Succeed(user, group)
                : MethodStep.Fail("wrong credentials", user);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
        }
    }

    private async ValueTask<MethodStep?> MsChapV2Async(EapContext context, string name, byte[] nameBytes, byte[] response, byte[]? challenge, CancellationToken cancellationToken)
    {
        _phase2 = "MSCHAPv2";
        var expected = Challenge();
        if (response.Length != 50 || challenge is null || !challenge.AsSpan().SequenceEqual(expected.AsSpan(0, 16)) || response[0] != expected[16])
            return MethodStep.Fail("EAP-TTLS: the MS-CHAPv2 challenge is not this tunnel's");
        var (user, group, refusal) = await FindAsync(context, name, AuthMethods.MsChapV2, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        var cleartext = new byte[256];
        var ntHash = new byte[16];
        try
        {
            int length = context.Credentials.Cleartext(user!.Credential, cleartext);
            if (!CredentialVerifier.NtHash(user.Credential, cleartext.AsSpan(0, Math.Max(0, length)), length >= 0, ntHash))
                return MethodStep.Fail("MS-CHAPv2 needs an NT hash or the sealed password", user);
            int slash = Array.LastIndexOf(nameBytes, (byte)'\\');
            var userName = slash >= 0 ? nameBytes.AsSpan(slash + 1) : nameBytes;
            var peerChallenge = response.AsSpan(2, 16);
            var ntResponse = response.AsSpan(26, 24);
            if (!CredentialVerifier.VerifyMsChapV2(ntHash, challenge, peerChallenge, userName, ntResponse))
                return MethodStep.Fail("wrong credentials", user);
            string authenticator = MsChap.GenerateAuthenticatorResponse(ntHash, ntResponse, peerChallenge, challenge, userName);
            var avps = new List<byte>();
            DiameterAvp.Write(avps, AttributeTypes.MsChap2Success, Microsoft, [response[0], .. Encoding.ASCII.GetBytes(authenticator)]);
            Tls!.WriteApplicationData(avps.ToArray());
            // The peer answers the Success AVP with an empty response; the outer EAP-Success follows it.
            _successPending = new MethodStep(StepKind.Success, User: user, Group: group, Method: $"{Describe} ({Tls.Version})");
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
            CryptographicOperations.ZeroMemory(ntHash);
        }
    }

    private async ValueTask<MethodStep?> InnerEapAsync(EapContext context, List<DiameterAvp.Avp> avps, CancellationToken cancellationToken)
    {
        if (Find(avps, EapMessageAvp, 0) is not { } packet)
            return MethodStep.Fail("EAP-TTLS: the inner EAP conversation went on without an EAP-Message");
        _inner ??= new EapMachine(context, context.Settings.InnerMethods, inner: true);
        _phase2 = "EAP";
        var step = await _inner.ProcessAsync(packet, cancellationToken).ConfigureAwait(false);
        switch (step.Kind)
        {
            case StepKind.Request:
                var output = new List<byte>();
                DiameterAvp.Write(output, EapMessageAvp, 0, step.Packet);
                Tls!.WriteApplicationData(output.ToArray());
                return null;
            case StepKind.Success:
                return Succeed(step.User, step.Group);
            default:
                return MethodStep.Fail(step.Reason ?? "inner authentication failed", step.User);
        }
    }
}
