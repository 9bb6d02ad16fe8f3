using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Forewarn.Core.Aaa;

/// <summary>
/// Salted PBKDF2-HMAC-SHA256 for PAP-only users, in the form <c>pbkdf2-sha256$iterations$salt$hash</c>
/// (base64). A successful verification is remembered as an HMAC of the password under a key that
/// lives only in this process, so that a NAS retrying a user does not pay the PBKDF2 cost each time;
/// the remembered value reveals nothing the process memory would not. A failed one is remembered the
/// same way for <see cref="FailureMemory"/>, so that a flood repeating one wrong password costs one
/// derivation, not one each. What is not remembered is for the slow-work pool (<see cref="SlowWork"/>):
/// <see cref="TryVerifyCached"/> is the receiving thread's cheap look, <see cref="Verify"/> the derivation.
/// </summary>
public sealed class PasswordHasher(TimeProvider time)
{
    /// <summary>
    /// Ten times NIST SP 800-63B's floor (10,000), five times the first round's default: 23–34 ms of one
    /// core per fresh verification here, inside the latency objective. OWASP's 600,000 (its figure for
    /// web logins) costs 135–214 ms, three to four times the objective, and caps fresh PAP logins at five
    /// to seven a second per core; sites with few PAP-only users may choose it (Forewarn:PasswordIterations).
    /// docs/benchmarks.md has the measurements.
    /// </summary>
    public const int DefaultIterations = 100_000;
    public static readonly TimeSpan FailureMemory = TimeSpan.FromSeconds(10);
    private const string Prefix = "pbkdf2-sha256$";
    private const int MaxRemembered = 100_000;

    private readonly byte[] _processKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, byte[]> _verified = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Stored, UInt128 Tag), long> _failed = new();
    private readonly ConcurrentDictionary<(string Stored, UInt128 Tag), Task<bool>> _running = new();

    public PasswordHasher() : this(TimeProvider.System)
    {
    }

    public static string Hash(string password, int iterations = DefaultIterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"{Prefix}{iterations.ToString(CultureInfo.InvariantCulture)}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool IsWellFormed(string stored) => TryParse(stored, out _, out _, out _);

    private static bool TryParse(string stored, out int iterations, out byte[] salt, out byte[] hash)
    {
        iterations = 0;
        salt = hash = [];
        if (!stored.StartsWith(Prefix, StringComparison.Ordinal))
            return false;
        var parts = stored[Prefix.Length..].Split('$');
        if (parts.Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out iterations) || iterations < 1)
            return false;
        try
        {
            salt = Convert.FromBase64String(parts[1]);
            hash = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            return false;
        }
        return hash.Length == 32;
    }

    /// <summary>
    /// The verdict without a derivation, when there is one: the password verified (or failed, within
    /// <see cref="FailureMemory"/>) against this stored hash before, or the stored hash is malformed.
    /// </summary>
    public bool TryVerifyCached(string stored, ReadOnlySpan<byte> password, out bool verified)
    {
        Span<byte> tag = stackalloc byte[32];
        HMACSHA256.HashData(_processKey, password, tag);
        // Keyed by the stored hash itself: a changed password changes the key.
        if (_verified.TryGetValue(stored, out var known) && CryptographicOperations.FixedTimeEquals(known, tag))
            return verified = true;
        verified = false;
        if (_failed.TryGetValue((stored, TagKey(tag)), out long until) && time.GetTimestamp() < until)
            return true;
        return !IsWellFormed(stored);
    }

    /// <summary>
    /// <see cref="Verify"/> through <paramref name="schedule"/> (the slow-work pool), once for every
    /// request that asks with the same password at the same time: a NAS's first burst for a user, or a
    /// flood repeating one password, costs one derivation. <paramref name="password"/> must stay intact
    /// until the task completes.
    /// </summary>
    public Task<bool> VerifyOnceAsync(string stored, byte[] password, Func<Func<bool>, Task<bool>> schedule)
    {
        Span<byte> tag = stackalloc byte[32];
        HMACSHA256.HashData(_processKey, password, tag);
        var key = (stored, TagKey(tag));
        if (_running.TryGetValue(key, out var running))
            return running;
        var task = schedule(() => Verify(stored, password));
        var winner = _running.GetOrAdd(key, task);
        if (ReferenceEquals(winner, task))
            task.ContinueWith(_ => _running.TryRemove(KeyValuePair.Create(key, task)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return winner;
    }

    /// <summary>Derives and compares (slow: run it on the slow-work pool), and remembers the verdict.</summary>
    public bool Verify(string stored, ReadOnlySpan<byte> password)
    {
        if (TryVerifyCached(stored, password, out bool verified))
            return verified;
        if (!TryParse(stored, out int iterations, out var salt, out var expected))
            return false;
        Span<byte> tag = stackalloc byte[32];
        HMACSHA256.HashData(_processKey, password, tag);
        Span<byte> actual = stackalloc byte[32];
        Rfc2898DeriveBytes.Pbkdf2(password, salt, actual, iterations, HashAlgorithmName.SHA256);
        if (!CryptographicOperations.FixedTimeEquals(actual, expected))
        {
            if (_failed.Count >= MaxRemembered)
                _failed.Clear();
            _failed[(stored, TagKey(tag))] = time.GetTimestamp() + (long)(FailureMemory.TotalSeconds * time.TimestampFrequency);
            return false;
        }
        if (_verified.Count >= MaxRemembered)
            _verified.Clear();
        _verified[stored] = tag.ToArray();
        return true;
    }

    private static UInt128 TagKey(ReadOnlySpan<byte> tag) => System.Runtime.InteropServices.MemoryMarshal.Read<UInt128>(tag);
}
