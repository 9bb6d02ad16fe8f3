using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Store;
using Forewarn.Protocol.Auth;

namespace Forewarn.Core.Aaa;

/// <summary>How a request was authenticated, for logs and counters.</summary>
public enum AuthMethod { None, Pap, Chap, MsChap, MsChapV2 }

/// <summary>
/// The one place that knows how users are found and how their passwords are stored: the RADIUS access
/// handler and the TACACS+ authentication handler (and, later, EAP's inner methods) look users up and
/// verify PAP, CHAP, MS-CHAP and MS-CHAPv2 here, each after taking the method's fields out of its own
/// packets. Cached users and cheap checks answer on the calling thread; a store lookup on a cache miss
/// and a PBKDF2 derivation run on the slow-work pool, in the client's turn (<see cref="SlowWork"/>).
/// Secrets in the clear live in caller-owned stack buffers and are zeroed by the caller.
/// </summary>
public sealed class CredentialVerifier(IUserStore users, PasswordHasher hasher, PasswordSealer sealer, SlowWork slow)
{
    private static readonly System.Diagnostics.Metrics.Meter Store = new("Forewarn.Store");

    // A lookup that missed the cache: the user store's own latency (SQLite, PostgreSQL, a FreeRADIUS site's tables).
    private static readonly System.Diagnostics.Metrics.Histogram<double> LookupSeconds = Store.CreateHistogram("forewarn.store.lookup.duration", "s",
        "A user lookup that missed the cache (user and group), in the user store",
        advice: new System.Diagnostics.Metrics.InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });

    /// <summary>The user (DOMAIN\\user falling back to user) and group from memory, when both are cached.</summary>
    public bool TryFindCached(string? userName, out UserRecord? user, out GroupRecord? group)
    {
        user = null;
        group = null;
        if (userName is null)
            return true;
        if (users is not IUserCache cache || !cache.TryFindCachedUser(userName, out user))
            return false;
        if (user is null && StripDomain(userName) is { } bare && !cache.TryFindCachedUser(bare, out user))
            return false;
        return user?.Group is not { } groupName || cache.TryFindCachedGroup(groupName, out group);
    }

    /// <summary>The lookup that missed the cache, on the slow-work pool in <paramref name="client"/>'s turn.</summary>
    public Task<(UserRecord?, GroupRecord?)> FindSlowlyAsync(string client, string? userName, CancellationToken cancellationToken) =>
        slow.RunAsync(client, () => LookUpAsync(userName, cancellationToken));

    /// <summary>The user and group, from the cache when it has them.</summary>
    public async ValueTask<(UserRecord? User, GroupRecord? Group)> FindAsync(string client, string? userName, CancellationToken cancellationToken) =>
        TryFindCached(userName, out var user, out var group) ? (user, group) : await FindSlowlyAsync(client, userName, cancellationToken).ConfigureAwait(false);

    /// <summary>A group by name (EAP-TLS's certificate group), on the slow-work pool.</summary>
    public Task<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken) =>
        slow.RunAsync("eap", () => users.FindGroupAsync(name, cancellationToken));

    private async ValueTask<(UserRecord?, GroupRecord?)> LookUpAsync(string? userName, CancellationToken cancellationToken)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var found = await LookUpInStoreAsync(userName, cancellationToken).ConfigureAwait(false);
        LookupSeconds.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        return found;
    }

    private async ValueTask<(UserRecord?, GroupRecord?)> LookUpInStoreAsync(string? userName, CancellationToken cancellationToken)
    {
        UserRecord? user = userName is null ? null : await users.FindUserAsync(userName, cancellationToken).ConfigureAwait(false);
        if (user is null && StripDomain(userName) is { } bare)
            user = await users.FindUserAsync(bare, cancellationToken).ConfigureAwait(false);
        GroupRecord? group = user?.Group is { } groupName ? await users.FindGroupAsync(groupName, cancellationToken).ConfigureAwait(false) : null;
        return (user, group);
    }

    /// <summary>Windows clients send DOMAIN\\user; when no user has that exact name, the part after the domain is tried.</summary>
    private static string? StripDomain(string? userName) =>
        userName is not null && userName.LastIndexOf('\\') is var slash and >= 0 && slash < userName.Length - 1 ? userName[(slash + 1)..] : null;

    /// <summary>Why <paramref name="user"/> may not log in with <paramref name="method"/> whatever its credentials; null when it may try.</summary>
    public static string? Refusal(UserRecord? user, AuthMethod method)
    {
        if (user is null)
            return "unknown user";
        if (!user.Enabled)
            return "user disabled";
        if (method == AuthMethod.None)
            return "no supported credentials in the request";
        if ((user.Methods & ToFlag(method)) == 0)
            return $"method {method} not enabled for the user";
        return null;
    }

    /// <summary>As <see cref="Refusal(UserRecord?, AuthMethod)"/> for an EAP method or tunnel, named in the reason by <paramref name="name"/>.</summary>
    public static string? Refusal(UserRecord? user, AuthMethods flag, string name)
    {
        if (user is null)
            return "unknown user";
        if (!user.Enabled)
            return "user disabled";
        return (user.Methods & flag) == 0 ? $"method {name} not enabled for the user" : null;
    }

    /// <summary>A password given in the clear (EAP-GTC, TTLS-PAP): the verdict, deriving PBKDF2 on the slow-work pool when needed. <paramref name="given"/> is zeroed.</summary>
    public async ValueTask<bool> VerifyPasswordAsync(string client, Credential credential, byte[] given)
    {
        try
        {
            if (TryPassword(credential, given, out var toDerive) is { } verdict)
                return verdict;
            try
            {
                return await DeriveAsync(client, credential.PasswordHash!, toDerive!).ConfigureAwait(false);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(toDerive);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(given);
        }
    }

    public static AuthMethods ToFlag(AuthMethod method) => method switch
    {
        AuthMethod.Pap => AuthMethods.Pap,
        AuthMethod.Chap => AuthMethods.Chap,
        AuthMethod.MsChap => AuthMethods.MsChap,
        AuthMethod.MsChapV2 => AuthMethods.MsChapV2,
        _ => AuthMethods.None,
    };

    /// <summary>
    /// A password given in the clear (PAP, TACACS+ ASCII login): the verdict when it is cheap — a sealed
    /// or NT-hashed credential, or a PBKDF2 hash whose verdict is remembered (no allocation) — otherwise
    /// null, and the password is copied into <paramref name="toDerive"/> for <see cref="DeriveAsync"/>.
    /// </summary>
    public bool? TryPassword(Credential credential, ReadOnlySpan<byte> given, out byte[]? toDerive)
    {
        toDerive = null;
        if (credential.PasswordHash is { } hash)
        {
            if (hasher.TryVerifyCached(hash, given, out bool known))
                return known;
            toDerive = given.ToArray();
            return null;
        }
        Span<byte> cleartext = stackalloc byte[256];
        try
        {
            int length = Cleartext(credential, cleartext);
            if (length >= 0)
                return CryptographicOperations.FixedTimeEquals(given, cleartext[..length]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cleartext);
        }
        if (credential.NtHash is { Length: 16 } ntHash)
        {
            Span<byte> candidate = stackalloc byte[16];
            MsChap.NtPasswordHash(Encoding.UTF8.GetString(given), candidate);
            return CryptographicOperations.FixedTimeEquals(candidate, ntHash);
        }
        return false;
    }

    /// <summary>The PBKDF2 derivation <see cref="TryPassword"/> left, on the slow-work pool in <paramref name="client"/>'s turn (one derivation for concurrent identical attempts).</summary>
    public Task<bool> DeriveAsync(string client, string hash, byte[] given) =>
        hasher.VerifyOnceAsync(hash, given, derive => slow.RunAsync(client, derive));

    /// <summary>A PBKDF2 hash of a secret given in the clear (an enable secret), through the same remembered verdicts and slow-work turn as passwords.</summary>
    public async ValueTask<bool> VerifyHashAsync(string client, string hash, byte[] given)
    {
        if (hasher.TryVerifyCached(hash, given, out bool known))
            return known;
        return await DeriveAsync(client, hash, given).ConfigureAwait(false);
    }

    /// <summary>The cleartext password into <paramref name="cleartext"/> (at least 256 octets) when the credential keeps it sealed; its length, or -1.</summary>
    public int Cleartext(Credential credential, Span<byte> cleartext) =>
        credential.SealedPassword is { } sealedPassword ? sealer.TryUnseal(sealedPassword, cleartext) : -1;

    /// <summary>The NT hash (MS-CHAP, MS-CHAPv2): stored, or computed from the cleartext when only that is kept.</summary>
    public static bool NtHash(Credential credential, ReadOnlySpan<byte> cleartext, bool haveCleartext, Span<byte> ntHash)
    {
        if (credential.NtHash is { Length: 16 } nt)
        {
            nt.CopyTo(ntHash);
            return true;
        }
        if (!haveCleartext)
            return false;
        MsChap.NtPasswordHash(Encoding.UTF8.GetString(cleartext), ntHash);
        return true;
    }

    /// <summary>CHAP (RFC 1994): MD5(identifier, password, challenge) equals the response.</summary>
    public static bool VerifyChap(byte identifier, ReadOnlySpan<byte> response, ReadOnlySpan<byte> cleartext, ReadOnlySpan<byte> challenge)
    {
        if (response.Length != 16)
            return false;
        Span<byte> expected = stackalloc byte[16];
        Chap.Response(identifier, cleartext, challenge, expected);
        return CryptographicOperations.FixedTimeEquals(expected, response);
    }

    /// <summary>MS-CHAPv1 (RFC 2433): the NT response to an 8-octet challenge.</summary>
    public static bool VerifyMsChap(ReadOnlySpan<byte> ntHash, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> ntResponse)
    {
        if (challenge.Length != 8 || ntResponse.Length != 24)
            return false;
        Span<byte> expected = stackalloc byte[24];
        MsChap.NtChallengeResponse(challenge, ntHash, expected);
        return CryptographicOperations.FixedTimeEquals(expected, ntResponse);
    }

    /// <summary>MS-CHAPv2 (RFC 2759): the NT response to the authenticator and peer challenges and the user name as sent.</summary>
    public static bool VerifyMsChapV2(ReadOnlySpan<byte> ntHash, ReadOnlySpan<byte> authenticatorChallenge, ReadOnlySpan<byte> peerChallenge, ReadOnlySpan<byte> userName, ReadOnlySpan<byte> ntResponse)
    {
        if (authenticatorChallenge.Length != 16 || peerChallenge.Length != 16 || ntResponse.Length != 24)
            return false;
        Span<byte> expected = stackalloc byte[24];
        MsChap.GenerateNtResponse(authenticatorChallenge, peerChallenge, userName, ntHash, expected);
        return CryptographicOperations.FixedTimeEquals(expected, ntResponse);
    }
}
