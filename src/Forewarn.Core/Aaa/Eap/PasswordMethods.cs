using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Eap;
using Forewarn.Protocol.Radius;

namespace Forewarn.Core.Aaa.Eap;

public static class EapMethods
{
    /// <summary>A fresh method of <paramref name="type"/>; null when the server does not speak it (or has no TLS identity for it).</summary>
    public static EapMethod? Create(byte type, EapContext context) => type switch
    {
        EapType.Md5 => new Md5Method(),
        EapType.Gtc => new GtcMethod(),
        EapType.MsChapV2 => new MsChapV2Method(),
        EapType.Tls when context.Settings.Tls is not null => new TlsAuthMethod(),
        EapType.Peap when context.Settings.Tls is not null => new PeapMethod(),
        EapType.Ttls when context.Settings.Tls is not null => new TtlsMethod(),
        _ => null,
    };

    /// <summary>The user and group an identity names, and why it may not use <paramref name="method"/> if it may not.</summary>
    internal static async ValueTask<(UserRecord? User, GroupRecord? Group, string? Refusal)> FindAsync(EapContext context, string identity, EapMethod method, CancellationToken cancellationToken)
    {
        var (user, group) = await context.Credentials.FindAsync(context.Client.Name, identity, cancellationToken).ConfigureAwait(false);
        return (user, group, CredentialVerifier.Refusal(user, method.Flag, method.Describe));
    }
}

/// <summary>EAP-MD5 (RFC 3748 §5.4): CHAP over EAP; the response is MD5(identifier, password, challenge). No keys.</summary>
public sealed class Md5Method : EapMethod
{
    private readonly byte[] _challenge = RandomNumberGenerator.GetBytes(16);
    private string _identity = "";

    public override byte Type => EapType.Md5;
    public override AuthMethods Flag => AuthMethods.EapMd5;

    public override ValueTask<MethodStep> StartAsync(EapContext context, string identity, byte identifier, CancellationToken cancellationToken)
    {
        _identity = identity;
        return ValueTask.FromResult(MethodStep.Request([16, .. _challenge]));
    }

    public override async ValueTask<MethodStep> ProcessAsync(EapContext context, ReadOnlyMemory<byte> typeData, byte identifier, CancellationToken cancellationToken)
    {
        if (typeData.Length < 17 || typeData.Span[0] != 16)
            return MethodStep.Fail("a malformed EAP-MD5 response");
        var (user, group, refusal) = await EapMethods.FindAsync(context, _identity, this, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        Span<byte> cleartext = stackalloc byte[256];
        try
        {
            int length = context.Credentials.Cleartext(user!.Credential, cleartext);
            if (length < 0)
                return MethodStep.Fail("EAP-MD5 needs the password kept sealed (add chap or eap-md5 to the user's methods when setting it)", user);
            return CredentialVerifier.VerifyChap(identifier, typeData.Span.Slice(1, 16), cleartext[..length], _challenge)
                ? new MethodStep(StepKind.Success, User: user, Group: group)
                : MethodStep.Fail("wrong credentials", user);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
        }
    }
}

/// <summary>EAP-GTC (RFC 3748 §5.6): the password in the clear, so only inside a tunnel in practice. No keys.</summary>
public sealed class GtcMethod : EapMethod
{
    private string _identity = "";

    public override byte Type => EapType.Gtc;
    public override AuthMethods Flag => AuthMethods.EapGtc;

    public override ValueTask<MethodStep> StartAsync(EapContext context, string identity, byte identifier, CancellationToken cancellationToken)
    {
        _identity = identity;
        return ValueTask.FromResult(MethodStep.Request("Password: "u8.ToArray()));
    }

    public override async ValueTask<MethodStep> ProcessAsync(EapContext context, ReadOnlyMemory<byte> typeData, byte identifier, CancellationToken cancellationToken)
    {
        var (user, group, refusal) = await EapMethods.FindAsync(context, _identity, this, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        return await context.Credentials.VerifyPasswordAsync(context.Client.Name, user!.Credential, Password(typeData.Span)).ConfigureAwait(false)
            ? new MethodStep(StepKind.Success, User: user, Group: group)
            : MethodStep.Fail("wrong credentials", user);
    }

    /// <summary>The password a GTC response holds: all of it, or after the NUL of "RESPONSE=identity\0password" (the form peers use after a "CHALLENGE=" prompt).</summary>
    private static byte[] Password(ReadOnlySpan<byte> given)
    {
        if (given.StartsWith("RESPONSE="u8) && given.IndexOf((byte)0) is var nul and > 0)
            given = given[(nul + 1)..];
        return given.ToArray();
    }
}

/// <summary>
/// EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2): Challenge, the peer's Response checked as MS-CHAPv2
/// (RFC 2759), a Success request with the authenticator response, the peer's Success acknowledgement.
/// MSK = MS-MPPE-Recv-Key | MS-MPPE-Send-Key from RFC 3079 (32 octets), as hostapd derives it.
/// </summary>
public sealed class MsChapV2Method : EapMethod
{
    private const byte OpChallenge = 1, OpResponse = 2, OpSuccess = 3, OpFailure = 4;
    private readonly byte[] _challenge = RandomNumberGenerator.GetBytes(16);
    private string _identity = "";
    private byte _msChapId;
    private MethodStep _success;

    public override byte Type => EapType.MsChapV2;
    public override AuthMethods Flag => AuthMethods.EapMsChapV2;

    public override ValueTask<MethodStep> StartAsync(EapContext context, string identity, byte identifier, CancellationToken cancellationToken)
    {
        _identity = identity;
        _msChapId = identifier;
        var name = Encoding.UTF8.GetBytes(context.Settings.ServerName);
        var data = new byte[4 + 1 + 16 + name.Length];
        data[0] = OpChallenge;
        data[1] = _msChapId;
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), (ushort)data.Length);
        data[4] = 16;
        _challenge.CopyTo(data, 5);
        name.CopyTo(data, 21);
        return ValueTask.FromResult(MethodStep.Request(data));
    }

    public override async ValueTask<MethodStep> ProcessAsync(EapContext context, ReadOnlyMemory<byte> typeData, byte identifier, CancellationToken cancellationToken)
    {
        var data = typeData.Span;
        if (data.IsEmpty)
            return MethodStep.Fail("an empty EAP-MSCHAPv2 response");
        switch (data[0])
        {
            case OpSuccess when _success.Kind == StepKind.Success:
                return _success;
            case OpFailure:
                return MethodStep.Fail("the peer ended EAP-MSCHAPv2 with a failure");
            case OpResponse:
                break;
            default:
                return MethodStep.Fail($"an unexpected EAP-MSCHAPv2 op-code {data[0]}");
        }
        // OpCode(1) ID(1) MS-Length(2) Value-Size(1)=49: Peer-Challenge(16) Reserved(8) NT-Response(24) Flags(1), then the name.
        if (data.Length < 54 || data[4] != 49 || _success.Kind == StepKind.Success)
            return MethodStep.Fail("a malformed EAP-MSCHAPv2 response");
        var (user, group, refusal) = await EapMethods.FindAsync(context, _identity, this, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
            return MethodStep.Fail(refusal, user);
        var response = typeData.Span;
        return Verify(context, user!, group, response.Slice(5, 16), response.Slice(29, 24), response[54..]);
    }

    private MethodStep Verify(EapContext context, UserRecord user, GroupRecord? group, ReadOnlySpan<byte> peerChallenge, ReadOnlySpan<byte> ntResponse, ReadOnlySpan<byte> name)
    {
        Span<byte> cleartext = stackalloc byte[256];
        Span<byte> ntHash = stackalloc byte[16];
        try
        {
            int length = context.Credentials.Cleartext(user.Credential, cleartext);
            if (!CredentialVerifier.NtHash(user.Credential, cleartext[..Math.Max(0, length)], length >= 0, ntHash))
                return MethodStep.Fail("EAP-MSCHAPv2 needs an NT hash or the sealed password (add mschapv2 or eap-mschapv2 to the user's methods when setting it)", user);
            // RFC 2759 §8.2 hashes the user name without a Windows domain.
            int slash = name.LastIndexOf((byte)'\\');
            var userName = slash >= 0 ? name[(slash + 1)..] : name;
            if (!CredentialVerifier.VerifyMsChapV2(ntHash, _challenge, peerChallenge, userName, ntResponse))
                return MethodStep.Fail("wrong credentials", user);
            string authenticatorResponse = MsChap.GenerateAuthenticatorResponse(ntHash, ntResponse, peerChallenge, _challenge, userName);
            Span<byte> send = stackalloc byte[16];
            Span<byte> receive = stackalloc byte[16];
            MsChap.MppeKeys(ntHash, ntResponse, send, receive);
            _success = new MethodStep(StepKind.Success, Msk: [.. receive, .. send], User: user, Group: group);
            var message = Encoding.ASCII.GetBytes(authenticatorResponse + " M=Authentication succeeded");
            var data = new byte[4 + message.Length];
            data[0] = OpSuccess;
            data[1] = _msChapId;
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), (ushort)data.Length);
            message.CopyTo(data, 4);
            return MethodStep.Request(data);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
            CryptographicOperations.ZeroMemory(ntHash);
        }
    }
}
