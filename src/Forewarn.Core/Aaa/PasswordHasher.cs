using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Forewarn.Core.Aaa;

/// <summary>
/// Salted PBKDF2-HMAC-SHA256 for PAP-only users, in the form <c>pbkdf2-sha256$iterations$salt$hash</c>
/// (base64). A successful verification is remembered as an HMAC of the password under a key that
/// lives only in this process, so that a NAS retrying a user does not pay the PBKDF2 cost each time;
/// the remembered value reveals nothing the process memory would not.
/// </summary>
public sealed class PasswordHasher
{
    public const int DefaultIterations = 20_000;
    private const string Prefix = "pbkdf2-sha256$";

    private readonly byte[] _processKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, byte[]> _verified = new(StringComparer.Ordinal);

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

    public bool Verify(string stored, ReadOnlySpan<byte> password)
    {
        Span<byte> tag = stackalloc byte[32];
        HMACSHA256.HashData(_processKey, password, tag);
        // The cache is keyed by the stored hash itself: a changed password changes the key.
        if (_verified.TryGetValue(stored, out var known) && CryptographicOperations.FixedTimeEquals(known, tag))
            return true;
        if (!TryParse(stored, out int iterations, out var salt, out var expected))
            return false;
        Span<byte> actual = stackalloc byte[32];
        Rfc2898DeriveBytes.Pbkdf2(password, salt, actual, iterations, HashAlgorithmName.SHA256);
        if (!CryptographicOperations.FixedTimeEquals(actual, expected))
            return false;
        if (_verified.Count > 100_000)
            _verified.Clear();
        _verified[stored] = tag.ToArray();
        return true;
    }
}
