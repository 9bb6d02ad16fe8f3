using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Forewarn.Server.AdminConsole;

/// <summary>A logged-in administrator: the cookie names it, the CSRF token must come back on every change.</summary>
public sealed record ConsoleSession(string Id, string Admin, AdminRole Role, string Csrf, IPAddress? From, long Created, string PasswordHash = "")
{
    public long LastSeen { get; set; } = Created;
}

/// <summary>
/// The console's sessions, in memory only (a restart logs everyone out, which is the safe side). A
/// session id is 256 random bits in an HttpOnly, SameSite=Strict cookie; its CSRF token, another 256
/// bits, is handed to the page by <c>GET /api/v1/session</c> and must come back in the
/// <c>X-CSRF-Token</c> header of every change, so that neither a cross-site form nor a script on another
/// origin can act with the cookie alone. A session ends after 30 minutes without a request or 12 hours
/// after login, whichever comes first.
/// </summary>
public sealed class ConsoleSessions(TimeProvider time)
{
    public const string CookieName = "forewarn_session";
    public const string CsrfHeader = "X-CSRF-Token";
    public static readonly TimeSpan Idle = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);
    private const int MaxSessions = 10_000;

    private readonly ConcurrentDictionary<string, ConsoleSession> _sessions = new(StringComparer.Ordinal);

    public int Count => _sessions.Count;

    public ConsoleSession Start(AdminAccount account, IPAddress? from)
    {
        if (_sessions.Count >= MaxSessions)
            Sweep();
        var session = new ConsoleSession(NewToken(), account.Name, account.Role, NewToken(), from, time.GetTimestamp(), account.PasswordHash);
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>The live session the cookie names, refreshed; null when none (unknown, idle too long, too old).</summary>
    public ConsoleSession? Find(string? id)
    {
        if (id is not { Length: > 0 } || !_sessions.TryGetValue(id, out var session))
            return null;
        long now = time.GetTimestamp();
        if (time.GetElapsedTime(session.LastSeen, now) > Idle || time.GetElapsedTime(session.Created, now) > Lifetime)
        {
            _sessions.TryRemove(id, out _);
            return null;
        }
        session.LastSeen = now;
        return session;
    }

    public void End(string id) => _sessions.TryRemove(id, out _);

    /// <summary>Every session of an account ends (its password changed, it was removed).</summary>
    public void EndAll(string admin)
    {
        foreach (var (id, session) in _sessions)
            if (session.Admin == admin)
                _sessions.TryRemove(id, out _);
    }

    /// <summary>Whether the presented CSRF token is this session's, compared in constant time.</summary>
    public static bool CsrfMatches(ConsoleSession session, string? presented) =>
        presented is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(presented), Encoding.ASCII.GetBytes(session.Csrf));

    private void Sweep()
    {
        long now = time.GetTimestamp();
        foreach (var (id, session) in _sessions)
            if (time.GetElapsedTime(session.LastSeen, now) > Idle || time.GetElapsedTime(session.Created, now) > Lifetime)
                _sessions.TryRemove(id, out _);
    }

    private static string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>
/// Back-off and lock-out for console logins. Each failed login is answered only after a pause that
/// doubles with the account's failures in a row (0.5 s, 1 s, 2 s, at most 4 s), so one connection guesses
/// slowly; after <see cref="FailuresToLock"/> in a row the account is locked for
/// <see cref="LockDuration"/>, the right password included, so many connections guess no faster; and a
/// source address with <see cref="FailuresPerSource"/> failures within <see cref="SourceWindow"/> is
/// refused outright for the rest of the window, whatever name it tries. A good login clears the account's
/// count. The lock is a trade-off every console makes: someone who knows an administrator's name can keep
/// that account locked; the lock ends by itself, and another administrator can still log in.
/// </summary>
public sealed class LoginGuard(TimeProvider time)
{
    public const int FailuresToLock = 5;
    public static readonly TimeSpan LockDuration = TimeSpan.FromMinutes(15);
    public const int FailuresPerSource = 20;
    public static readonly TimeSpan SourceWindow = TimeSpan.FromMinutes(15);
    private const int MaxTracked = 100_000;

    private sealed class Account
    {
        public int InARow;
        public long LockedUntil;
    }

    private sealed class Source
    {
        public int Failures;
        public long WindowStart;
    }

    private readonly ConcurrentDictionary<string, Account> _accounts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<IPAddress, Source> _sources = new();

    /// <summary>
    /// One login is verified at a time: the refusal is checked, the password derived (PBKDF2) and the
    /// failure counted under it, so concurrent guesses cannot all pass the check before any is counted,
    /// and a flood of logins takes one core at most from the AAA work beside it.
    /// </summary>
    public SemaphoreSlim Verifying { get; } = new(1, 1);

    /// <summary>Why a login may not even be tried now, or null.</summary>
    public string? Refusal(string name, IPAddress? from)
    {
        long now = time.GetTimestamp();
        if (from is not null && _sources.TryGetValue(from, out var source))
            lock (source)
                if (source.Failures >= FailuresPerSource && time.GetElapsedTime(source.WindowStart, now) < SourceWindow)
                    return $"too many failed logins from {from}: try again in {Minutes(SourceWindow - time.GetElapsedTime(source.WindowStart, now))}";
        if (_accounts.TryGetValue(name, out var account))
            lock (account)
                if (account.LockedUntil > now)
                    return $"this account is locked after {FailuresToLock} failed logins in a row: try again in {Minutes(TimeSpan.FromTicks((long)((account.LockedUntil - now) * (double)TimeSpan.TicksPerSecond / time.TimestampFrequency)))}";
        return null;
    }

    /// <summary>Counts a failure; returns how long to wait before answering it.</summary>
    public TimeSpan Failed(string name, IPAddress? from)
    {
        long now = time.GetTimestamp();
        if (_accounts.Count + _sources.Count > MaxTracked)
            Forget(now);
        int inARow;
        var account = _accounts.GetOrAdd(name, _ => new Account());
        lock (account)
        {
            inARow = ++account.InARow;
            if (inARow >= FailuresToLock)
            {
                account.LockedUntil = now + (long)(LockDuration.TotalSeconds * time.TimestampFrequency);
                account.InARow = 0;
            }
        }
        if (from is not null)
        {
            var source = _sources.GetOrAdd(from, _ => new Source { WindowStart = now });
            lock (source)
            {
                if (time.GetElapsedTime(source.WindowStart, now) >= SourceWindow)
                {
                    source.WindowStart = now;
                    source.Failures = 0;
                }
                source.Failures++;
            }
        }
        return TimeSpan.FromMilliseconds(Math.Min(4000, 500 << Math.Min(inARow - 1, 3)));
    }

    public void Succeeded(string name) => _accounts.TryRemove(name, out _);

    private void Forget(long now)
    {
        foreach (var (name, account) in _accounts)
            if (account.LockedUntil < now)
                _accounts.TryRemove(name, out _);
        foreach (var (address, source) in _sources)
            if (time.GetElapsedTime(source.WindowStart, now) >= SourceWindow)
                _sources.TryRemove(address, out _);
    }

    private static string Minutes(TimeSpan left) => left.TotalSeconds < 90 ? $"{Math.Ceiling(left.TotalSeconds):0} s" : $"{Math.Ceiling(left.TotalMinutes):0} min";
}
