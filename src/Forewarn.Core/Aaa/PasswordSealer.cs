using System.Security.Cryptography;
using System.Text;

namespace Forewarn.Core.Aaa;

/// <summary>
/// Seals the cleartext-equivalent passwords that CHAP requires with AES-256-GCM under a key kept in
/// the data directory (<c>forewarn.key</c>, mode 0600), so that a copy of the database alone does not
/// reveal them. Layout: nonce(12) | tag(16) | ciphertext.
/// </summary>
public sealed class PasswordSealer
{
    private readonly byte[] _key;

    public PasswordSealer(byte[] key)
    {
        if (key.Length != 32)
            throw new ArgumentException("The sealing key is 32 octets.", nameof(key));
        _key = key;
    }

    /// <summary>Reads the key file, creating it (owner read/write only) on first use.</summary>
    public static PasswordSealer FromKeyFile(string path)
    {
        if (!File.Exists(path))
        {
            var fresh = RandomNumberGenerator.GetBytes(32);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            try
            {
                using var stream = new FileStream(path, options);
                stream.Write(fresh);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first; use theirs.
            }
        }
        var key = File.ReadAllBytes(path);
        if (key.Length != 32)
            throw new InvalidOperationException($"The key file {path} is damaged: it must hold 32 octets.");
        return new PasswordSealer(key);
    }

    public byte[] Seal(string password)
    {
        var plain = Encoding.UTF8.GetBytes(password);
        var sealedBytes = new byte[12 + 16 + plain.Length];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, 12));
        using var aes = new AesGcm(_key, 16);
        aes.Encrypt(sealedBytes.AsSpan(0, 12), plain, sealedBytes.AsSpan(28), sealedBytes.AsSpan(12, 16));
        return sealedBytes;
    }

    /// <summary>The password octets, or -1 when the value does not open under this key.</summary>
    public int TryUnseal(ReadOnlySpan<byte> sealedBytes, Span<byte> destination)
    {
        if (sealedBytes.Length < 28 || destination.Length < sealedBytes.Length - 28)
            return -1;
        int length = sealedBytes.Length - 28;
        try
        {
            using var aes = new AesGcm(_key, 16);
            aes.Decrypt(sealedBytes[..12], sealedBytes[28..], sealedBytes.Slice(12, 16), destination[..length]);
            return length;
        }
        catch (AuthenticationTagMismatchException)
        {
            return -1;
        }
    }
}
