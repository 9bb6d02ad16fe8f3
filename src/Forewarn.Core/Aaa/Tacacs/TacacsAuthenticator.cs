using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Tacacs;
using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Aaa.Tacacs;

/// <summary>What an authentication session has learned so far (one per session id on a connection).</summary>
public sealed class AuthenSession
{
    internal AuthenStart? Start { get; set; }
    internal string? User { get; set; }
    internal bool AwaitingPassword { get; set; }
    internal int UserPrompts { get; set; }
    /// <summary>What a forwarding handler keeps for the session (the relay: the upstream server and session).</summary>
    public object? Forwarding { get; set; }
}

/// <summary>
/// TACACS+ authentication (RFC 8907 §5): ASCII login (GETUSER and GETPASS prompts answered by CONTINUE),
/// PAP, CHAP, MS-CHAPv1 and MS-CHAPv2, each for login or for enable (privilege escalation against the
/// enable secret of the user or else of its group). Passwords are verified by the
/// <see cref="CredentialVerifier"/>, the same code RADIUS uses. Password changes and sendauth are refused
/// with a message. A reply with <see cref="AuthenReply.Status"/> other than GETUSER/GETPASS ends the session.
/// </summary>
public sealed partial class TacacsAuthenticator(CredentialVerifier credentials, TimeProvider time, ILogger<TacacsAuthenticator> logger, AuthLog? authLog = null)
{
    private const string FailureMessage = "Authentication failed";
    private const int MaxUserPrompts = 3;
    private static readonly byte[] UserPrompt = "Username: "u8.ToArray();
    private static readonly byte[] PasswordPrompt = "Password: "u8.ToArray();
    private readonly Logging.LogLimiter _failures = new(time, TimeSpan.FromSeconds(10));

    public static bool Ends(AuthenReply reply) => reply.Status is not (AuthenStatus.GetUser or AuthenStatus.GetPass or AuthenStatus.GetData);

    public ValueTask<AuthenReply> StartAsync(AuthenStart start, RadiusClient client, AuthenSession session, CancellationToken cancellationToken)
    {
        session.Start = start;
        if (start.Action == AuthenAction.ChangePassword)
            return Done(Fail(client, null, start, "password change requested", "Changing passwords over TACACS+ is not supported; ask an administrator"));
        if (start.Action != AuthenAction.Login)
            return Done(Fail(client, null, start, $"action {start.Action} is not supported", "Only login is supported"));
        string? user = start.User.Length > 0 ? Encoding.UTF8.GetString(start.User) : null;
        session.User = user;
        switch (start.AuthenType)
        {
            case AuthenType.Ascii:
                return Done(user is null ? AskUser(session) : AskPassword(session));
            case AuthenType.Pap:
                return VerifyPasswordAsync(client, session, start.Data, cancellationToken);
            case AuthenType.Chap:
            case AuthenType.MsChap:
            case AuthenType.MsChapV2:
                return VerifyChallengeAsync(client, start, user, cancellationToken);
            default:
                return Done(Fail(client, user, start, $"authentication type {start.AuthenType} is not supported", FailureMessage));
        }
    }

    public ValueTask<AuthenReply> ContinueAsync(AuthenContinue next, RadiusClient client, AuthenSession session, CancellationToken cancellationToken)
    {
        var start = session.Start!;
        if ((next.Flags & AuthenContinue.Abort) != 0)
            return Done(Fail(client, session.User, start, "the client aborted the login", "Aborted"));
        if (!session.AwaitingPassword)
        {
            session.User = next.UserMessage.Length > 0 ? Encoding.UTF8.GetString(next.UserMessage) : null;
            if (session.User is not null)
                return Done(AskPassword(session));
            return Done(session.UserPrompts >= MaxUserPrompts ? Fail(client, null, start, "no user name given", FailureMessage) : AskUser(session));
        }
        return VerifyPasswordAsync(client, session, next.UserMessage, cancellationToken);
    }

    private static ValueTask<AuthenReply> Done(AuthenReply reply) => ValueTask.FromResult(reply);

    private static AuthenReply AskUser(AuthenSession session)
    {
        session.UserPrompts++;
        return new AuthenReply(AuthenStatus.GetUser, 0, UserPrompt, []);
    }

    private static AuthenReply AskPassword(AuthenSession session)
    {
        session.AwaitingPassword = true;
        return new AuthenReply(AuthenStatus.GetPass, AuthenReply.NoEcho, PasswordPrompt, []);
    }

    /// <summary>A password in the clear (ASCII or PAP): the login password, or for the enable service the enable secret.</summary>
    private async ValueTask<AuthenReply> VerifyPasswordAsync(RadiusClient client, AuthenSession session, byte[] password, CancellationToken cancellationToken)
    {
        var start = session.Start!;
        string? userName = session.User;
        try
        {
            var (user, group) = await credentials.FindAsync(client.Name, userName, cancellationToken).ConfigureAwait(false);
            if (userName is null)
                return Fail(client, null, start, "no user name given", FailureMessage);
            if (start.Service == AuthenService.Enable)
                return await VerifyEnableAsync(client, start, userName, user, group, password).ConfigureAwait(false);
            if (CredentialVerifier.Refusal(user, AuthMethod.Pap) is { } refusal)
                return Fail(client, userName, start, refusal, FailureMessage);
            bool verified = credentials.TryPassword(user!.Credential, password, out var toDerive) ?? await DeriveAsync(client, user.Credential.PasswordHash!, toDerive!).ConfigureAwait(false);
            return verified ? Pass(client, userName, start) : Fail(client, userName, start, "wrong credentials", FailureMessage);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    private async Task<bool> DeriveAsync(RadiusClient client, string hash, byte[] given)
    {
        try
        {
            return await credentials.DeriveAsync(client.Name, hash, given).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(given);
        }
    }

    private async ValueTask<AuthenReply> VerifyEnableAsync(RadiusClient client, AuthenStart start, string userName, UserRecord? user, GroupRecord? group, byte[] password)
    {
        if (user is null || !user.Enabled)
            return Fail(client, userName, start, user is null ? "unknown user" : "user disabled", FailureMessage);
        if ((user.EnableHash ?? group?.EnableHash) is not { } hash)
            return Fail(client, userName, start, "no enable secret for the user or its group", FailureMessage);
        bool verified = await credentials.VerifyHashAsync(client.Name, hash, password).ConfigureAwait(false);
        return verified ? Pass(client, userName, start) : Fail(client, userName, start, "wrong enable secret", FailureMessage);
    }

    /// <summary>
    /// CHAP, MS-CHAP and MS-CHAPv2 (RFC 8907 §5.4.2): data is the PPP identifier, the challenge, and the
    /// response (16 octets for CHAP; 49 for MS-CHAP: LM(24) NT(24) flags(1); 49 for MS-CHAPv2: peer
    /// challenge(16) reserved(8) NT(24) flags(1)).
    /// </summary>
    private async ValueTask<AuthenReply> VerifyChallengeAsync(RadiusClient client, AuthenStart start, string? userName, CancellationToken cancellationToken)
    {
        var method = start.AuthenType switch { AuthenType.Chap => AuthMethod.Chap, AuthenType.MsChap => AuthMethod.MsChap, _ => AuthMethod.MsChapV2 };
        int responseLength = method == AuthMethod.Chap ? 16 : 49;
        var data = start.Data;
        int challengeLength = data.Length - 1 - responseLength;
        if (userName is null)
            return Fail(client, null, start, "no user name given", FailureMessage);
        if (challengeLength < 1 || (method == AuthMethod.MsChap && challengeLength != 8) || (method == AuthMethod.MsChapV2 && challengeLength != 16))
            return Fail(client, userName, start, $"{method} data of {data.Length} octets is malformed", FailureMessage);
        if (start.Service == AuthenService.Enable)
            return Fail(client, userName, start, "enable needs the secret itself (ASCII or PAP)", FailureMessage);
        var (user, _) = await credentials.FindAsync(client.Name, userName, cancellationToken).ConfigureAwait(false);
        if (CredentialVerifier.Refusal(user, method) is { } refusal)
            return Fail(client, userName, start, refusal, FailureMessage);
        return Check(client, start, userName, user!, method, data.AsSpan(1, challengeLength), data.AsSpan(1 + challengeLength), data[0]);
    }

    private AuthenReply Check(RadiusClient client, AuthenStart start, string userName, UserRecord user, AuthMethod method, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> response, byte identifier)
    {
        Span<byte> cleartext = stackalloc byte[256];
        Span<byte> ntHash = stackalloc byte[16];
        try
        {
            int length = credentials.Cleartext(user.Credential, cleartext);
            bool verified;
            byte[] data = [];
            if (method == AuthMethod.Chap)
            {
                verified = length >= 0 && CredentialVerifier.VerifyChap(identifier, response, cleartext[..length], challenge);
            }
            else if (!CredentialVerifier.NtHash(user.Credential, cleartext[..Math.Max(0, length)], length >= 0, ntHash))
            {
                verified = false;
            }
            else if (method == AuthMethod.MsChap)
            {
                verified = (response[48] & 1) != 0 && CredentialVerifier.VerifyMsChap(ntHash, challenge, response.Slice(24, 24));
            }
            else
            {
                verified = CredentialVerifier.VerifyMsChapV2(ntHash, challenge, response[..16], start.User, response.Slice(24, 24));
                if (verified)
                    data = Encoding.ASCII.GetBytes(Protocol.Auth.MsChap.GenerateAuthenticatorResponse(ntHash, response.Slice(24, 24), response[..16], challenge, start.User));
            }
            if (!verified)
                return Fail(client, userName, start, "wrong credentials", FailureMessage);
            var pass = Pass(client, userName, start);
            return data.Length == 0 ? pass : pass with { Data = data };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
            CryptographicOperations.ZeroMemory(ntHash);
        }
    }

    private AuthenReply Pass(RadiusClient client, string userName, AuthenStart start)
    {
        authLog?.Record("tacacs", client.Name, client.DeviceGroup, userName, MethodName(start), AuthResult.Accept, null, 0);
        if (logger.IsEnabled(LogLevel.Debug))
        {
            var escaped = Logging.LogText.Escape(userName);
            LogPass(logger, escaped, client.Name, start.AuthenType, start.Service);
        }
        return new AuthenReply(AuthenStatus.Pass, 0, [], []);
    }

    private AuthenReply Fail(RadiusClient client, string? userName, AuthenStart start, string reason, string message)
    {
        authLog?.Record("tacacs", client.Name, client.DeviceGroup, userName, MethodName(start), AuthResult.Reject, reason, 0);
        if (logger.IsEnabled(LogLevel.Information) && _failures.ShouldLog(reason, out long others))
        {
            var escaped = userName is null ? "(none)" : Logging.LogText.Escape(userName);
            LogFail(logger, escaped, client.Name, start.AuthenType, start.Service, reason, others);
        }
        return new AuthenReply(AuthenStatus.Fail, 0, Encoding.UTF8.GetBytes(message), []);
    }

    /// <summary>The log's method: the authentication type, and "enable" for a privilege escalation.</summary>
    private static string MethodName(AuthenStart start) => (start.Action, start.AuthenType, start.Service) switch
    {
        (_, _, AuthenService.Enable) => "enable",
        (_, AuthenType.Ascii, _) => "ASCII",
        (_, AuthenType.Pap, _) => "PAP",
        (_, AuthenType.Chap, _) => "CHAP",
        (_, AuthenType.MsChap, _) => "MS-CHAP",
        (_, AuthenType.MsChapV2, _) => "MS-CHAPv2",
        _ => start.AuthenType.ToString(),
    };

    [LoggerMessage(EventId = 110, Level = LogLevel.Debug, Message = "TACACS+ authentication passed for {User} from {Client} ({Type}, service {Service})")]
    private static partial void LogPass(ILogger logger, string user, string client, AuthenType type, AuthenService service);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "TACACS+ authentication failed for {User} from {Client} ({Type}, service {Service}): {Reason}; {Others} more for this reason in the 10 s before (not logged one by one)")]
    private static partial void LogFail(ILogger logger, string user, string client, AuthenType type, AuthenService service, string reason, long others);
}
