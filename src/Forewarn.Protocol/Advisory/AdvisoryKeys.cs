using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Forewarn.Protocol.Advisory;

/// <summary>
/// The advisory keys one client and its servers share. By default key id 0 is derived from the
/// client's RADIUS shared secret with HKDF-SHA256 (docs/protocol.md §4.1), so that the RADIUS secret
/// itself never keys the HMAC; operators may configure separate advisory secrets per key id and keep
/// two ids active at once while they rotate.
/// </summary>
public sealed class AdvisoryKeys
{
    private static readonly byte[] Salt = "forewarn advisory v1"u8.ToArray();
    private readonly Dictionary<byte, byte[]> _keys = [];

    /// <summary>The key id new messages are signed with.</summary>
    public byte CurrentId { get; }

    private AdvisoryKeys(byte currentId) => CurrentId = currentId;

    /// <summary>HKDF-SHA256(IKM = secret, salt = "forewarn advisory v1", info = "key " + id), 32 octets.</summary>
    public static byte[] Derive(ReadOnlySpan<byte> secret, byte keyId)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, key, Salt, Encoding.ASCII.GetBytes($"key {keyId}"));
        return key;
    }

    public static AdvisoryKeys FromSharedSecret(ReadOnlySpan<byte> radiusSecret)
    {
        var keys = new AdvisoryKeys(0);
        keys._keys[0] = Derive(radiusSecret, 0);
        return keys;
    }

    /// <summary>
    /// One NAS's own key (id 0) in a client block: HKDF-SHA256(IKM = the block's advisory secret, which
    /// only the servers hold, salt = "forewarn advisory v1", info = "key 0 nas " + the NAS's address).
    /// NASes that share a RADIUS secret cannot derive each other's key, so none can sign advisories to another.
    /// </summary>
    public static byte[] DeriveForNas(ReadOnlySpan<byte> blockSecret, IPAddress nas)
    {
        var key = new byte[32];
        var address = nas.IsIPv4MappedToIPv6 ? nas.MapToIPv4() : nas;
        HKDF.DeriveKey(HashAlgorithmName.SHA256, blockSecret, key, Salt, Encoding.ASCII.GetBytes($"key 0 nas {address}"));
        return key;
    }

    public static AdvisoryKeys ForNas(ReadOnlySpan<byte> blockSecret, IPAddress nas) => FromKey(DeriveForNas(blockSecret, nas));

    /// <summary>A key given as it is (a NAS configured with its own key, from <c>forewarn clients advisory-key</c>).</summary>
    public static AdvisoryKeys FromKey(byte[] key, byte keyId = 0)
    {
        if (key.Length != 32)
            throw new ArgumentException($"an advisory key is 32 octets (64 hex digits); this one has {key.Length}", nameof(key));
        var keys = new AdvisoryKeys(keyId);
        keys._keys[keyId] = key;
        return keys;
    }

    /// <summary>Configured advisory secrets by key id; <paramref name="currentId"/> signs, every id listed verifies.</summary>
    public static AdvisoryKeys FromSecrets(IReadOnlyDictionary<byte, string> secrets, byte currentId)
    {
        if (!secrets.ContainsKey(currentId))
            throw new ArgumentException($"Key id {currentId} is not among the configured advisory secrets.", nameof(currentId));
        var keys = new AdvisoryKeys(currentId);
        foreach (var (id, secret) in secrets)
            keys._keys[id] = Derive(Encoding.UTF8.GetBytes(secret), id);
        return keys;
    }

    public byte[] Current => _keys[CurrentId];

    public bool TryGet(byte keyId, out byte[] key) => _keys.TryGetValue(keyId, out key!);
}
