using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;
using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Aaa;

/// <summary>
/// A handled request: the answer's length (0: none, drop it), and how long the answer was held on
/// purpose, in TimeProvider ticks — a PBKDF2 derivation, whose cost is a choice of the operator's and not
/// ill health. The latency probe leaves that time out; the slow-work probe watches the wait for it.
/// <paramref name="WithoutService"/>: answered without the service's work — a retransmission answered from
/// the duplicate cache, a Status-Server — and so no evidence of the service's latency: counted, they would
/// dilute a slow store's evidence with NAS keepalives, the server's own listener checks and the copies a
/// NAS sends when its answers are late.
/// </summary>
public readonly record struct Handled(int Length, long DeliberateTicks = 0, bool WithoutService = false)
{
    public static implicit operator Handled(int length) => new(length);
}

/// <summary>
/// Answers an Access-Request: takes the method's fields out of the packet, has the
/// <see cref="CredentialVerifier"/> find the user and verify PAP, CHAP, MS-CHAP or MS-CHAPv2 against the
/// stored credential, applies check items, and writes an Access-Accept (with Message-Authenticator
/// first, reply items, method keys and Proxy-State) or an Access-Reject with Reply-Message.
/// The packet has been validated and its client's Message-Authenticator policy enforced already.
/// </summary>
public sealed partial class AccessHandler(CredentialVerifier credentials, ReplyCompiler replies, TimeProvider time, ILogger<AccessHandler> logger, Eap.EapService? eap = null, AuthLog? authLog = null)
{
    private const string FailureMessage = "Authentication failed";
    private static readonly string[] MethodNames = ["none", "PAP", "CHAP", "MS-CHAP", "MS-CHAPv2"];
    /// <summary>One reject line per reason per 10 s, with a count of the others: a flood of bad logins cannot fill the disk.</summary>
    private readonly Logging.LogLimiter _rejects = new(time, TimeSpan.FromSeconds(10));

    public async ValueTask<Handled> HandleAsync(ReadOnlyMemory<byte> request, RadiusClient client, Memory<byte> response, CancellationToken cancellationToken)
    {
        long started = time.GetTimestamp();
        if (eap is not null && RadiusPacket.FromValidated(request.Span).HasAttribute(AttributeTypes.EapMessage))
            return await HandleEapAsync(request, client, response, started, cancellationToken).ConfigureAwait(false);
        // The slow paths live in their own methods: a lambda here would allocate its closure on every request.
        string? userName = ReadUserName(request.Span);
        if (!credentials.TryFindCached(userName, out var user, out var group))
            (user, group) = await credentials.FindSlowlyAsync(client.Name, userName, cancellationToken).ConfigureAwait(false);
        bool? papVerdict = null;
        long deliberate = 0;
        if (user is { Enabled: true, Credential.PasswordHash: { } hash } && (user.Methods & AuthMethods.Pap) != 0)
        {
            papVerdict = TryPapCached(request.Span, client, user.Credential, out var given);
            if (given is not null)
            {
                try
                {
                    long deriving = time.GetTimestamp();
                    papVerdict = await credentials.DeriveAsync(client.Name, hash, given).ConfigureAwait(false);
                    deliberate = time.GetTimestamp() - deriving;
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(given);
                }
            }
        }
        return new Handled(Respond(request.Span, client, userName, user, group, response.Span, papVerdict, started), deliberate);
    }

    /// <summary>
    /// The PAP verdict against a PBKDF2 hash when it is remembered (no allocation); otherwise null, with
    /// the password in the clear copied into <paramref name="toDerive"/> for the slow-work pool.
    /// </summary>
    private bool? TryPapCached(ReadOnlySpan<byte> request, RadiusClient client, Credential credential, out byte[]? toDerive)
    {
        toDerive = null;
        var packet = RadiusPacket.FromValidated(request);
        if (!packet.TryGetAttribute(AttributeTypes.UserPassword, out var hidden))
            return null;
        Span<byte> password = stackalloc byte[128];
        int length = RadiusCrypto.UnhideUserPassword(hidden, client.Secret, packet.Authenticator, password);
        if (length < 0)
            return null;
        try
        {
            return credentials.TryPassword(credential, password[..length], out toDerive);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    private static string? ReadUserName(ReadOnlySpan<byte> request)
    {
        var packet = RadiusPacket.FromValidated(request);
        return packet.TryGetAttribute(AttributeTypes.UserName, out var name) && name.Length > 0 ? Encoding.UTF8.GetString(name) : null;
    }

    private int Respond(ReadOnlySpan<byte> request, RadiusClient client, string? userName, UserRecord? user, GroupRecord? group, Span<byte> response, bool? papVerdict, long started)
    {
        var packet = RadiusPacket.FromValidated(request);
        var method = DetectMethod(packet);
        if (userName is null)
            return Reject(packet, client, method, response, "no User-Name", userName, started);
        if (CredentialVerifier.Refusal(user, method) is { } refusal)
            return Reject(packet, client, method, response, refusal, userName, started);

        Span<byte> ntHash = stackalloc byte[16];
        Span<byte> cleartext = stackalloc byte[256];
        int cleartextLength = credentials.Cleartext(user!.Credential, cleartext);
        // The NT hash is needed only by MS-CHAP and MS-CHAPv2 (PAP against an NT hash is the verifier's).
        bool haveNt = method is AuthMethod.MsChap or AuthMethod.MsChapV2
            && CredentialVerifier.NtHash(user.Credential, cleartext[..Math.Max(0, cleartextLength)], cleartextLength >= 0, ntHash);

        bool verified = method switch
        {
            AuthMethod.Pap => VerifyPap(packet, client, user.Credential, cleartext[..Math.Max(0, cleartextLength)], cleartextLength >= 0, papVerdict),
            AuthMethod.Chap => cleartextLength >= 0 && VerifyChap(packet, cleartext[..cleartextLength]),
            AuthMethod.MsChap => haveNt && VerifyMsChap(packet, ntHash),
            AuthMethod.MsChapV2 => haveNt && VerifyMsChapV2(packet, ntHash),
            _ => false,
        };
        if (!verified)
            return Reject(packet, client, method, response, "wrong credentials", userName, started);
        if (!ChecksPass(packet, client, user.Checks, out var failed) || (group is not null && !ChecksPass(packet, client, group.Checks, out failed)))
            return Reject(packet, client, method, response, $"check item failed: {failed}", userName, started);

        var writer = new RadiusWriter(response, RadiusCode.AccessAccept, packet.Identifier);
        writer.AddMessageAuthenticator();
        if (method == AuthMethod.MsChapV2)
            AddMsChapV2Success(ref writer, packet, client, ntHash);
        else if (method == AuthMethod.MsChap)
            AddMsChapKeys(ref writer, packet, client, ntHash, cleartextLength >= 0 ? cleartext[..cleartextLength] : default);
        if (group is not null)
            AddReplyItems(ref writer, packet, client, group.Reply, user.Name);
        AddReplyItems(ref writer, packet, client, user.Reply, user.Name);
        CopyProxyState(ref writer, packet);
        LogAccepted(userName, client.Name, method);
        authLog?.Record("radius", client.Name, client.DeviceGroup, userName, MethodNames[(int)method], AuthResult.Accept, null, started);
        return writer.Complete(client.Secret, packet.Authenticator);
    }

    private static AuthMethod DetectMethod(RadiusPacket packet)
    {
        if (packet.HasAttribute(AttributeTypes.UserPassword))
            return AuthMethod.Pap;
        if (packet.HasAttribute(AttributeTypes.ChapPassword))
            return AuthMethod.Chap;
        if (packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Response, out _))
            return AuthMethod.MsChapV2;
        if (packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapResponse, out _))
            return AuthMethod.MsChap;
        return AuthMethod.None;
    }

    private bool VerifyPap(RadiusPacket packet, RadiusClient client, Credential credential, ReadOnlySpan<byte> cleartext, bool haveCleartext, bool? papVerdict)
    {
        if (papVerdict is { } verdict)
            return verdict;
        packet.TryGetAttribute(AttributeTypes.UserPassword, out var hidden);
        Span<byte> password = stackalloc byte[128];
        int length = RadiusCrypto.UnhideUserPassword(hidden, client.Secret, packet.Authenticator, password);
        try
        {
            if (length < 0)
                return false;
            // Unsealed already for CHAP's sake: compared here rather than unsealed twice.
            if (haveCleartext)
                return CryptographicOperations.FixedTimeEquals(password[..length], cleartext);
            // A PBKDF2 hash was settled before (papVerdict); what is left (an NT hash) is cheap.
            return credential.PasswordHash is null && credentials.TryPassword(credential, password[..length], out _) == true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    /// <summary>RFC 2865 §2.2: the challenge is CHAP-Challenge if present, else the Request Authenticator.</summary>
    private static bool VerifyChap(RadiusPacket packet, ReadOnlySpan<byte> cleartext)
    {
        packet.TryGetAttribute(AttributeTypes.ChapPassword, out var chapPassword);
        var challenge = packet.TryGetAttribute(AttributeTypes.ChapChallenge, out var c) ? c : packet.Authenticator;
        return chapPassword.Length == 17 && CredentialVerifier.VerifyChap(chapPassword[0], chapPassword[1..], cleartext, challenge);
    }

    /// <summary>MS-CHAP-Response (RFC 2548 §2.1.3): Ident(1) Flags(1) LM-Response(24) NT-Response(24); Flags bit 0 selects the NT response.</summary>
    private static bool VerifyMsChap(RadiusPacket packet, ReadOnlySpan<byte> ntHash)
    {
        if (!packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapResponse, out var response) || response.Length != 50
            || !packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapChallenge, out var challenge) || challenge.Length != 8
            || (response[1] & 1) == 0)
            return false;
        return CredentialVerifier.VerifyMsChap(ntHash, challenge, response.Slice(26, 24));
    }

    /// <summary>MS-CHAP2-Response (RFC 2548 §2.3.2): Ident(1) Flags(1) Peer-Challenge(16) Reserved(8) Response(24).</summary>
    private static bool VerifyMsChapV2(RadiusPacket packet, ReadOnlySpan<byte> ntHash)
    {
        if (!packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Response, out var response) || response.Length != 50
            || !packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapChallenge, out var challenge) || challenge.Length != 16
            || !packet.TryGetAttribute(AttributeTypes.UserName, out var userName))
            return false;
        return CredentialVerifier.VerifyMsChapV2(ntHash, challenge, response.Slice(2, 16), userName, response.Slice(26, 24));
    }

    private static void AddMsChapV2Success(ref RadiusWriter writer, RadiusPacket packet, RadiusClient client, scoped ReadOnlySpan<byte> ntHash)
    {
        packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Response, out var response);
        packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapChallenge, out var challenge);
        packet.TryGetAttribute(AttributeTypes.UserName, out var userName);
        var ntResponse = response.Slice(26, 24);
        string authenticatorResponse = MsChap.GenerateAuthenticatorResponse(ntHash, ntResponse, response.Slice(2, 16), challenge, userName);
        Span<byte> success = stackalloc byte[43];
        success[0] = response[0];
        Encoding.ASCII.GetBytes(authenticatorResponse, success[1..]);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChap2Success, success);

        Span<byte> sendKey = stackalloc byte[16];
        Span<byte> receiveKey = stackalloc byte[16];
        MsChap.MppeKeys(ntHash, ntResponse, sendKey, receiveKey);
        Span<byte> encrypted = stackalloc byte[34];
        RadiusCrypto.SaltEncrypt(receiveKey, client.Secret, packet.Authenticator, (ushort)RandomNumberGenerator.GetInt32(0, 0x8000), encrypted);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeRecvKey, encrypted);
        RadiusCrypto.SaltEncrypt(sendKey, client.Secret, packet.Authenticator, (ushort)RandomNumberGenerator.GetInt32(0, 0x8000), encrypted);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeSendKey, encrypted);
        AddMppePolicy(ref writer);
    }

    private static void AddMsChapKeys(ref RadiusWriter writer, RadiusPacket packet, RadiusClient client, scoped ReadOnlySpan<byte> ntHash, scoped ReadOnlySpan<byte> cleartext)
    {
        Span<byte> lmHash = stackalloc byte[16];
        lmHash.Clear();
        if (!cleartext.IsEmpty)
            MsChap.LmPasswordHash(Encoding.UTF8.GetString(cleartext), lmHash);
        Span<byte> keys = stackalloc byte[32];
        MsChap.MsChapV1MppeKeys(lmHash, ntHash, keys);
        Span<byte> hidden = stackalloc byte[32];
        RadiusCrypto.HideUserPassword(keys, client.Secret, packet.Authenticator, hidden);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapMppeKeys, hidden);
        AddMppePolicy(ref writer);
    }

    /// <summary>Encryption allowed (1), RC4 40 or 128 bit (6), as FreeRADIUS sends by default.</summary>
    private static void AddMppePolicy(ref RadiusWriter writer)
    {
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeEncryptionPolicy, [0, 0, 0, 1]);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeEncryptionTypes, [0, 0, 0, 6]);
    }

    private bool ChecksPass(RadiusPacket packet, RadiusClient client, IReadOnlyList<CheckItem> checks, out string failed)
    {
        failed = "";
        if (checks.Count == 0)
            return true;
        foreach (var check in checks)
        {
            string? actual = check.Attribute.Equals("Device-Group", StringComparison.OrdinalIgnoreCase)
                ? client.DeviceGroup
                : RequestValue(packet, check.Attribute);
            bool equal = string.Equals(actual, check.Value, StringComparison.Ordinal);
            if (equal != (check.Operator == CheckOperator.Equal))
            {
                failed = check.ToString();
                return false;
            }
        }
        return true;
    }

    private string? RequestValue(RadiusPacket packet, string attributeName)
    {
        var definition = replies.Dictionary.Find(attributeName);
        if (definition is null)
            return null;
        if (definition.VendorId == 0)
            return packet.TryGetAttribute((byte)definition.Number, out var value) ? ValueCodec.Format(definition, value) : null;
        return definition.Number <= 255 && packet.TryGetVendorAttribute(definition.VendorId, (byte)definition.Number, out var vendorValue)
            ? ValueCodec.Format(definition, vendorValue)
            : null;
    }

    private void AddReplyItems(ref RadiusWriter writer, RadiusPacket packet, RadiusClient client, IReadOnlyList<ReplyItem> items, string owner)
    {
        foreach (var item in items)
        {
            var value = replies.Compile(item, out var error);
            if (value is null)
            {
                LogBadReplyItem(logger, owner, item.ToString(), error ?? "");
                continue;
            }
            value.WriteTo(ref writer, replies.Dictionary, client.Secret, packet.Authenticator);
        }
    }

    /// <summary>RFC 2865 §5.33: Proxy-State attributes are copied unmodified and in order into the response.</summary>
    public static void CopyProxyState(ref RadiusWriter writer, RadiusPacket packet)
    {
        foreach (var attribute in packet.Attributes)
        {
            if (attribute.Type == AttributeTypes.ProxyState)
                writer.Add(AttributeTypes.ProxyState, attribute.Value);
        }
    }

    private int Reject(RadiusPacket packet, RadiusClient client, AuthMethod method, Span<byte> response, string reason, string? userName, long started)
    {
        authLog?.Record("radius", client.Name, client.DeviceGroup, userName, MethodNames[(int)method], AuthResult.Reject, reason, started);
        if (logger.IsEnabled(LogLevel.Information) && _rejects.ShouldLog(reason, out long others))
            LogReject(logger, userName is null ? "(none)" : Logging.LogText.Escape(userName), client.Name, method, reason, others);
        var writer = new RadiusWriter(response, RadiusCode.AccessReject, packet.Identifier);
        writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.ReplyMessage, FailureMessage);
        if (method is AuthMethod.MsChap or AuthMethod.MsChapV2
            && packet.TryGetVendorAttribute(AttributeTypes.MicrosoftVendor, method == AuthMethod.MsChapV2 ? AttributeTypes.MsChap2Response : AttributeTypes.MsChapResponse, out var msResponse)
            && msResponse.Length > 0)
        {
            // RFC 2759 §6: E=691 (authentication failure), R=0 (no retry), V=3 (MS-CHAPv2).
            Span<byte> error = stackalloc byte[16];
            error[0] = msResponse[0];
            int length = 1 + Encoding.ASCII.GetBytes("E=691 R=0 V=3", error[1..]);
            writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsChapError, error[..length]);
        }
        CopyProxyState(ref writer, packet);
        return writer.Complete(client.Secret, packet.Authenticator);
    }

    /// <summary>
    /// One round of EAP (RFC 3579): an Access-Challenge with the next EAP request and the conversation's
    /// State, or the end: Access-Accept with EAP-Success, the MSK as MS-MPPE-Recv-Key and -Send-Key (RFC
    /// 2548 §2.4), the user's name and reply items; or Access-Reject with EAP-Failure.
    /// </summary>
    private async ValueTask<Handled> HandleEapAsync(ReadOnlyMemory<byte> request, RadiusClient client, Memory<byte> response, long started, CancellationToken cancellationToken)
    {
        var (message, state) = ReadEap(request.Span);
        var round = await eap!.ProcessAsync(message, state, client, cancellationToken).ConfigureAwait(false);
        if (round.Drop)
            return 0;
        return WriteEap(request.Span, client, response.Span, round, started);
    }

    private static (byte[] Message, byte[]? State) ReadEap(ReadOnlySpan<byte> request)
    {
        var packet = RadiusPacket.FromValidated(request);
        var message = new List<byte>(256);
        byte[]? state = null;
        foreach (var attribute in packet.Attributes)
        {
            if (attribute.Type == AttributeTypes.EapMessage)
                message.AddRange(attribute.Value);
            else if (attribute.Type == AttributeTypes.State && state is null)
                state = attribute.Value.ToArray();
        }
        return (message.ToArray(), state);
    }

    private int WriteEap(ReadOnlySpan<byte> request, RadiusClient client, Span<byte> response, Eap.EapService.Round round, long started)
    {
        var packet = RadiusPacket.FromValidated(request);
        var result = round.Result;
        var code = result.Kind switch
        {
            Eap.StepKind.Request => RadiusCode.AccessChallenge,
            Eap.StepKind.Success => RadiusCode.AccessAccept,
            _ => RadiusCode.AccessReject,
        };
        var writer = new RadiusWriter(response, code, packet.Identifier);
        writer.AddMessageAuthenticator();
        writer.AddSplit(AttributeTypes.EapMessage, result.Packet);
        switch (result.Kind)
        {
            case Eap.StepKind.Request:
                writer.Add(AttributeTypes.State, round.State);
                break;
            case Eap.StepKind.Success:
                if (result.UserName is { } name)
                    writer.AddText(AttributeTypes.UserName, name);
                if (result.Msk is { Length: >= 32 } msk)
                    AddMsk(ref writer, packet, client, msk);
                if (result.Group is not null)
                    AddReplyItems(ref writer, packet, client, result.Group.Reply, result.User!.Name);
                if (result.User is not null)
                    AddReplyItems(ref writer, packet, client, result.User.Reply, result.User.Name);
                authLog?.Record("radius", client.Name, client.DeviceGroup, result.UserName, result.Method ?? "EAP", AuthResult.Accept, null, started);
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    var escaped = Logging.LogText.Escape(result.UserName ?? "(none)");
                    LogEapAccept(logger, escaped, client.Name, result.Method ?? "EAP");
                }
                break;
            default:
                writer.AddText(AttributeTypes.ReplyMessage, FailureMessage);
                string reason = result.Reason ?? "failed";
                authLog?.Record("radius", client.Name, client.DeviceGroup, result.UserName, result.Method ?? "EAP", AuthResult.Reject, reason, started);
                if (logger.IsEnabled(LogLevel.Information) && _rejects.ShouldLog(reason, out long others))
                {
                    var escaped = Logging.LogText.Escape(result.UserName ?? "(none)");
                    LogEapReject(logger, escaped, client.Name, result.Method ?? "EAP", reason, others);
                }
                break;
        }
        CopyProxyState(ref writer, packet);
        return writer.Complete(client.Secret, packet.Authenticator);
    }

    /// <summary>The MSK's first half as MS-MPPE-Recv-Key and its second as MS-MPPE-Send-Key, at most 32 octets each (RFC 3748 §7.10, as hostapd and FreeRADIUS send them).</summary>
    private static void AddMsk(ref RadiusWriter writer, RadiusPacket packet, RadiusClient client, byte[] msk)
    {
        int half = Math.Min(32, msk.Length / 2);
        Span<byte> encrypted = stackalloc byte[64];
        int length = RadiusCrypto.SaltEncrypt(msk.AsSpan(0, half), client.Secret, packet.Authenticator, (ushort)RandomNumberGenerator.GetInt32(0, 0x8000), encrypted);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeRecvKey, encrypted[..length]);
        length = RadiusCrypto.SaltEncrypt(msk.AsSpan(half, half), client.Secret, packet.Authenticator, (ushort)RandomNumberGenerator.GetInt32(0, 0x8000), encrypted);
        writer.AddVendor(AttributeTypes.MicrosoftVendor, AttributeTypes.MsMppeSendKey, encrypted[..length]);
        CryptographicOperations.ZeroMemory(msk);
    }

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Access-Accept for {User} from {Client} ({Method})")]
    private static partial void LogEapAccept(ILogger logger, string user, string client, string method);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "Access-Reject for {User} from {Client} ({Method}): {Reason}; {Others} more for this reason in the 10 s before (not logged one by one)")]
    private static partial void LogEapReject(ILogger logger, string user, string client, string method, string reason, long others);

    private void LogAccepted(string userName, string client, AuthMethod method)
    {
        if (!logger.IsEnabled(LogLevel.Debug))
            return;
        var escaped = Logging.LogText.Escape(userName);
        LogAccept(logger, escaped, client, method);
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "Access-Accept for {User} from {Client} ({Method})")]
    private static partial void LogAccept(ILogger logger, string user, string client, AuthMethod method);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Access-Reject for {User} from {Client} ({Method}): {Reason}; {Others} more for this reason in the 10 s before (not logged one by one)")]
    private static partial void LogReject(ILogger logger, string user, string client, AuthMethod method, string reason, long others);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Reply item '{Item}' of {Owner} is skipped: {Error}")]
    private static partial void LogBadReplyItem(ILogger logger, string owner, string item, string error);
}
