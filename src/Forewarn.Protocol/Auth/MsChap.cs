using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;

namespace Forewarn.Protocol.Auth;

/// <summary>
/// MS-CHAP (RFC 2433), MS-CHAPv2 (RFC 2759) and the MPPE key derivations (RFC 3079). The names follow
/// the RFCs' pseudo-code so each function can be checked against its section.
/// </summary>
public static class MsChap
{
    /// <summary>NtPasswordHash (RFC 2759 §8.3): MD4 over the UTF-16LE password. .NET has no MD4, hence BouncyCastle.</summary>
    public static void NtPasswordHash(string password, Span<byte> hash16)
    {
        var unicode = Encoding.Unicode.GetBytes(password);
        Md4(unicode, hash16);
    }

    /// <summary>HashNtPasswordHash (RFC 2759 §8.4).</summary>
    public static void HashNtPasswordHash(ReadOnlySpan<byte> ntHash, Span<byte> hash16) => Md4(ntHash, hash16);

    private static void Md4(ReadOnlySpan<byte> data, Span<byte> hash16)
    {
        var md4 = new MD4Digest();
        md4.BlockUpdate(data);
        md4.DoFinal(hash16);
    }

    /// <summary>ChallengeHash (RFC 2759 §8.2): SHA1(PeerChallenge + AuthenticatorChallenge + UserName)[0..8]; UserName without any domain.</summary>
    public static void ChallengeHash(ReadOnlySpan<byte> peerChallenge, ReadOnlySpan<byte> authenticatorChallenge, ReadOnlySpan<byte> userName, Span<byte> challenge8)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha.AppendData(peerChallenge);
        sha.AppendData(authenticatorChallenge);
        sha.AppendData(StripDomain(userName));
        Span<byte> digest = stackalloc byte[20];
        sha.GetHashAndReset(digest);
        digest[..8].CopyTo(challenge8);
    }

    /// <summary>RFC 2759 §8.2: "Only the user name (as presented by the peer and excluding any prepended domain name) is used".</summary>
    public static ReadOnlySpan<byte> StripDomain(ReadOnlySpan<byte> userName)
    {
        int backslash = userName.LastIndexOf((byte)'\\');
        return backslash >= 0 ? userName[(backslash + 1)..] : userName;
    }

    /// <summary>ChallengeResponse (RFC 2759 §8.5): the hash zero-padded to 21 octets, three DES keys of 7 octets each.</summary>
    public static void ChallengeResponse(ReadOnlySpan<byte> challenge8, ReadOnlySpan<byte> passwordHash16, Span<byte> response24)
    {
        Span<byte> zHash = stackalloc byte[21];
        zHash.Clear();
        passwordHash16.CopyTo(zHash);
        for (int i = 0; i < 3; i++)
            DesEncrypt(zHash.Slice(i * 7, 7), challenge8, response24.Slice(i * 8, 8));
    }

    /// <summary>
    /// One DES block under a 7-octet key. BouncyCastle's engine, because .NET's DES refuses the weak keys
    /// that MS-CHAP produces routinely (a zero-padded hash or a short LM password gives 01 01 .. 01).
    /// </summary>
    private static void DesEncrypt(ReadOnlySpan<byte> key7, ReadOnlySpan<byte> block8, Span<byte> output8)
    {
        var key = new byte[8];
        ExpandDesKey(key7, key);
        var des = new DesEngine();
        des.Init(true, new KeyParameter(key));
        des.ProcessBlock(block8, output8);
    }

    /// <summary>Spreads 56 key bits over 8 octets (the low bit of each is parity, which DES ignores).</summary>
    internal static void ExpandDesKey(ReadOnlySpan<byte> key7, Span<byte> key8)
    {
        key8[0] = key7[0];
        key8[1] = (byte)((key7[0] << 7) | (key7[1] >> 1));
        key8[2] = (byte)((key7[1] << 6) | (key7[2] >> 2));
        key8[3] = (byte)((key7[2] << 5) | (key7[3] >> 3));
        key8[4] = (byte)((key7[3] << 4) | (key7[4] >> 4));
        key8[5] = (byte)((key7[4] << 3) | (key7[5] >> 5));
        key8[6] = (byte)((key7[5] << 2) | (key7[6] >> 6));
        key8[7] = (byte)(key7[6] << 1);
        for (int i = 0; i < 8; i++)
            key8[i] = (byte)((key8[i] & 0xFE) | OddParity(key8[i]));
    }

    private static int OddParity(byte b) => (System.Numerics.BitOperations.PopCount((uint)(b & 0xFE)) & 1) == 0 ? 1 : 0;

    /// <summary>GenerateNTResponse (RFC 2759 §8.1).</summary>
    public static void GenerateNtResponse(ReadOnlySpan<byte> authenticatorChallenge, ReadOnlySpan<byte> peerChallenge, ReadOnlySpan<byte> userName, ReadOnlySpan<byte> ntHash, Span<byte> response24)
    {
        Span<byte> challenge = stackalloc byte[8];
        ChallengeHash(peerChallenge, authenticatorChallenge, userName, challenge);
        ChallengeResponse(challenge, ntHash, response24);
    }

    private static ReadOnlySpan<byte> AuthMagic1 => "Magic server to client signing constant"u8;
    private static ReadOnlySpan<byte> AuthMagic2 => "Pad to make it do more than one iteration"u8;

    /// <summary>GenerateAuthenticatorResponse (RFC 2759 §8.7): "S=" followed by 40 upper-case hex digits.</summary>
    public static string GenerateAuthenticatorResponse(ReadOnlySpan<byte> ntHash, ReadOnlySpan<byte> ntResponse, ReadOnlySpan<byte> peerChallenge, ReadOnlySpan<byte> authenticatorChallenge, ReadOnlySpan<byte> userName)
    {
        Span<byte> hashHash = stackalloc byte[16];
        HashNtPasswordHash(ntHash, hashHash);
        Span<byte> digest = stackalloc byte[20];
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1))
        {
            sha.AppendData(hashHash);
            sha.AppendData(ntResponse);
            sha.AppendData(AuthMagic1);
            sha.GetHashAndReset(digest);
            Span<byte> challenge = stackalloc byte[8];
            ChallengeHash(peerChallenge, authenticatorChallenge, userName, challenge);
            sha.AppendData(digest);
            sha.AppendData(challenge);
            sha.AppendData(AuthMagic2);
            sha.GetHashAndReset(digest);
        }
        return "S=" + Convert.ToHexString(digest);
    }

    private static ReadOnlySpan<byte> LmMagic => "KGS!@#$%"u8;

    /// <summary>LmPasswordHash (RFC 2433 §A.2): the upper-cased OEM password, 14 octets, as two DES keys over "KGS!@#$%".</summary>
    public static void LmPasswordHash(string password, Span<byte> hash16)
    {
        Span<byte> upper = stackalloc byte[14];
        upper.Clear();
        var text = password.ToUpperInvariant();
        for (int i = 0; i < Math.Min(14, text.Length); i++)
            upper[i] = text[i] < 0x80 ? (byte)text[i] : (byte)'?';
        for (int i = 0; i < 2; i++)
            DesEncrypt(upper.Slice(i * 7, 7), LmMagic, hash16.Slice(i * 8, 8));
    }

    /// <summary>
    /// The plaintext of MS-CHAP-MPPE-Keys for MS-CHAPv1 (RFC 2548 §2.4.1, RFC 3079 §2): the first 8 octets of
    /// the LM hash (zeros when unknown), the 16 of MD4(NT hash), and 8 octets of zero padding.
    /// </summary>
    public static void MsChapV1MppeKeys(ReadOnlySpan<byte> lmHash, ReadOnlySpan<byte> ntHash, Span<byte> keys32)
    {
        keys32[..32].Clear();
        if (lmHash.Length >= 8)
            lmHash[..8].CopyTo(keys32);
        HashNtPasswordHash(ntHash, keys32.Slice(8, 16));
    }

    /// <summary>NtChallengeResponse of MS-CHAPv1 (RFC 2433 §A.5).</summary>
    public static void NtChallengeResponse(ReadOnlySpan<byte> challenge8, ReadOnlySpan<byte> ntHash, Span<byte> response24) =>
        ChallengeResponse(challenge8, ntHash, response24);

    private static ReadOnlySpan<byte> MppeMagic1 => "This is the MPPE Master Key"u8;
    private static ReadOnlySpan<byte> MppeMagic2 => "On the client side, this is the send key; on the server side, it is the receive key."u8;
    private static ReadOnlySpan<byte> MppeMagic3 => "On the client side, this is the receive key; on the server side, it is the send key."u8;

    /// <summary>
    /// The 128-bit MS-MPPE-Send-Key and MS-MPPE-Recv-Key for MS-CHAPv2 (RFC 3079 §3.4): GetMasterKey,
    /// then GetAsymmetricStartKey for the server side (the NAS sends with Magic3, receives with Magic2).
    /// </summary>
    public static void MppeKeys(ReadOnlySpan<byte> ntHash, ReadOnlySpan<byte> ntResponse, Span<byte> sendKey16, Span<byte> receiveKey16)
    {
        Span<byte> hashHash = stackalloc byte[16];
        HashNtPasswordHash(ntHash, hashHash);
        Span<byte> digest = stackalloc byte[20];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha.AppendData(hashHash);
        sha.AppendData(ntResponse);
        sha.AppendData(MppeMagic1);
        sha.GetHashAndReset(digest);
        Span<byte> masterKey = stackalloc byte[16];
        digest[..16].CopyTo(masterKey);

        AsymmetricStartKey(sha, masterKey, MppeMagic3, sendKey16);
        AsymmetricStartKey(sha, masterKey, MppeMagic2, receiveKey16);
    }

    private static void AsymmetricStartKey(IncrementalHash sha, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> magic, Span<byte> key16)
    {
        Span<byte> pad1 = stackalloc byte[40];
        Span<byte> pad2 = stackalloc byte[40];
        pad1.Clear();
        pad2.Fill(0xF2);
        Span<byte> digest = stackalloc byte[20];
        sha.AppendData(masterKey);
        sha.AppendData(pad1);
        sha.AppendData(magic);
        sha.AppendData(pad2);
        sha.GetHashAndReset(digest);
        digest[..16].CopyTo(key16);
    }
}

/// <summary>CHAP (RFC 1994 §4.1, RFC 2865 §5.3): Response = MD5(Identifier + secret + Challenge).</summary>
public static class Chap
{
    public static void Response(byte identifier, ReadOnlySpan<byte> password, ReadOnlySpan<byte> challenge, Span<byte> response16)
    {
        var md5 = Radius.Md5.Digest;
        md5.Update(identifier);
        md5.BlockUpdate(password);
        md5.BlockUpdate(challenge);
        md5.DoFinal(response16);
    }

    public static bool Verify(ReadOnlySpan<byte> chapPassword, ReadOnlySpan<byte> password, ReadOnlySpan<byte> challenge)
    {
        if (chapPassword.Length != 17)
            return false;
        Span<byte> expected = stackalloc byte[16];
        Response(chapPassword[0], password, challenge, expected);
        return CryptographicOperations.FixedTimeEquals(expected, chapPassword[1..]);
    }
}
