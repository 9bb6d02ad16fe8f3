using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Forewarn.Protocol.Radius;

/// <summary>
/// Authenticators (RFC 2865 §3, RFC 2866 §3, RFC 5176 §3.5), Message-Authenticator (RFC 3579 §3.2,
/// RFC 5997 §3) and the attribute hiding schemes (RFC 2865 §5.2, RFC 2868 §3.5, RFC 2548 §2.4.2).
/// </summary>
public static class RadiusCrypto
{
    /// <summary>
    /// MD5(Code | Identifier | Length | <paramref name="authenticator"/> | Attributes | Secret): the
    /// Response Authenticator when <paramref name="authenticator"/> is the request's, the Request
    /// Authenticator of Accounting/CoA/Disconnect-Requests when it is sixteen zeros.
    /// </summary>
    public static void PacketDigest(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> authenticator, ReadOnlySpan<byte> secret, Span<byte> destination)
    {
        var md5 = Md5.Digest;
        md5.BlockUpdate(packet[..RadiusPacket.AuthenticatorOffset]);
        md5.BlockUpdate(authenticator);
        md5.BlockUpdate(packet[RadiusPacket.HeaderLength..]);
        md5.BlockUpdate(secret);
        md5.DoFinal(destination);
    }

    private static ReadOnlySpan<byte> Zeros16 => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>Checks the Request Authenticator of an Accounting-Request, CoA-Request or Disconnect-Request.</summary>
    public static bool VerifyRequestAuthenticator(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> secret)
    {
        Span<byte> expected = stackalloc byte[16];
        PacketDigest(packet, Zeros16, secret, expected);
        return CryptographicOperations.FixedTimeEquals(expected, packet.Slice(RadiusPacket.AuthenticatorOffset, 16));
    }

    /// <summary>Checks a response against the Request Authenticator of the request it answers.</summary>
    public static bool VerifyResponseAuthenticator(ReadOnlySpan<byte> response, ReadOnlySpan<byte> requestAuthenticator, ReadOnlySpan<byte> secret)
    {
        Span<byte> expected = stackalloc byte[16];
        PacketDigest(response, requestAuthenticator, secret, expected);
        return CryptographicOperations.FixedTimeEquals(expected, response.Slice(RadiusPacket.AuthenticatorOffset, 16));
    }

    /// <summary>
    /// HMAC-MD5 over the packet with the Message-Authenticator value zeroed, and the Authenticator field
    /// replaced by <paramref name="authenticator"/> (the packet's own for Access-Request and
    /// Status-Server, zeros for Accounting/CoA/Disconnect-Requests, the request's for responses).
    /// </summary>
    public static void MessageAuthenticator(ReadOnlySpan<byte> packet, int messageAuthenticatorOffset, ReadOnlySpan<byte> authenticator, ReadOnlySpan<byte> secret, Span<byte> destination)
    {
        // The packet as hashed, in pieces: header, the basis authenticator, attributes up to the
        // Message-Authenticator's value, sixteen zeros in its place, the rest.
        var mac = Md5.Hmac(secret);
        int value = messageAuthenticatorOffset + 2;
        mac.BlockUpdate(packet[..RadiusPacket.AuthenticatorOffset]);
        mac.BlockUpdate(authenticator);
        mac.BlockUpdate(packet[RadiusPacket.HeaderLength..value]);
        mac.BlockUpdate(Zeros16);
        mac.BlockUpdate(packet[(value + 16)..]);
        mac.DoFinal(destination);
    }

    /// <summary>The Authenticator field value the Message-Authenticator of <paramref name="code"/> is computed with.</summary>
    public static ReadOnlySpan<byte> MessageAuthenticatorBasis(RadiusCode code, ReadOnlySpan<byte> packetAuthenticator, ReadOnlySpan<byte> requestAuthenticator)
    {
        if (RadiusCodes.HasComputedRequestAuthenticator(code))
            return Zeros16;
        return RadiusCodes.IsRequest(code) ? packetAuthenticator : requestAuthenticator;
    }

    /// <summary>
    /// Verifies the packet's Message-Authenticator, if it has one. <paramref name="requestAuthenticator"/>
    /// is needed only for responses. Returns false if absent or wrong.
    /// </summary>
    public static bool VerifyMessageAuthenticator(RadiusPacket packet, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator = default)
    {
        int offset = packet.FindAttributeOffset(AttributeTypes.MessageAuthenticator);
        if (offset < 0)
            return false;
        Span<byte> expected = stackalloc byte[16];
        MessageAuthenticator(packet.Bytes, offset, MessageAuthenticatorBasis(packet.Code, packet.Authenticator, requestAuthenticator), secret, expected);
        return CryptographicOperations.FixedTimeEquals(expected, packet.Bytes.Slice(offset + 2, 16));
    }

    /// <summary>
    /// User-Password hiding (RFC 2865 §5.2): c(1) = p(1) xor MD5(S + RA), c(i) = p(i) xor MD5(S + c(i-1)).
    /// The password is zero-padded to a multiple of 16, at most 128 octets. Returns the octets written.
    /// </summary>
    public static int HideUserPassword(ReadOnlySpan<byte> password, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator, Span<byte> destination)
    {
        if (password.Length > 128)
            throw new ArgumentException("User-Password is at most 128 octets (RFC 2865 §5.2).", nameof(password));
        int length = Math.Max(16, (password.Length + 15) & ~15);
        var output = destination[..length];
        output.Clear();
        password.CopyTo(output);
        XorChain(output, secret, requestAuthenticator, encrypt: true);
        return length;
    }

    /// <summary>Reverses <see cref="HideUserPassword"/>; trailing NULs are removed. Returns the password length, or -1 if malformed.</summary>
    public static int UnhideUserPassword(ReadOnlySpan<byte> hidden, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator, Span<byte> destination)
    {
        if (hidden.Length == 0 || hidden.Length > 128 || (hidden.Length & 15) != 0)
            return -1;
        var output = destination[..hidden.Length];
        hidden.CopyTo(output);
        XorChain(output, secret, requestAuthenticator, encrypt: false);
        int end = output.Length;
        while (end > 0 && output[end - 1] == 0)
            end--;
        return end;
    }

    /// <summary>b(1) = MD5(S + iv), b(i) = MD5(S + c(i-1)); xors each 16-octet block in place.</summary>
    private static void XorChain(Span<byte> data, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> iv, bool encrypt)
    {
        // A trailing partial block (only in salt-encrypted values that fill the attribute) is xored as far as it goes.
        Span<byte> b = stackalloc byte[16];
        Span<byte> previousCipher = stackalloc byte[16];
        var md5 = Md5.Digest;
        for (int block = 0; block < data.Length; block += 16)
        {
            md5.BlockUpdate(secret);
            md5.BlockUpdate(block == 0 ? iv : previousCipher);
            md5.DoFinal(b);
            var chunk = data.Slice(block, Math.Min(16, data.Length - block));
            if (!encrypt)
                chunk.CopyTo(previousCipher);
            for (int i = 0; i < chunk.Length; i++)
                chunk[i] ^= b[i];
            if (encrypt)
                chunk.CopyTo(previousCipher);
        }
    }

    /// <summary>
    /// Salt encryption (RFC 2868 §3.5 Tunnel-Password; RFC 2548 §2.4.2 MS-MPPE-Send/Recv-Key):
    /// Salt(2, high bit set) then blocks of (length octet + value, zero-padded to 16) xored with
    /// b(1) = MD5(S + R + Salt), b(i) = MD5(S + c(i-1)). Returns octets written (salt included).
    /// </summary>
    public static int SaltEncrypt(ReadOnlySpan<byte> plain, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator, ushort salt, Span<byte> destination)
    {
        if (plain.Length > 239)
            throw new ArgumentException("Salt-encrypted values are at most 239 octets.", nameof(plain));
        int blocks = (plain.Length + 1 + 15) / 16;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(salt | 0x8000));
        var body = destination.Slice(2, blocks * 16);
        body.Clear();
        body[0] = (byte)plain.Length;
        plain.CopyTo(body[1..]);
        Span<byte> iv = stackalloc byte[18];
        requestAuthenticator.CopyTo(iv);
        destination[..2].CopyTo(iv[16..]);
        XorChain(body, secret, iv, encrypt: true);
        return 2 + body.Length;
    }

    /// <summary>Reverses <see cref="SaltEncrypt"/>. Returns the plaintext length, or -1 if malformed.</summary>
    public static int SaltDecrypt(ReadOnlySpan<byte> encrypted, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator, Span<byte> destination)
    {
        // A full value is a multiple of 16; one that fills the attribute to 253 octets ends in a partial block.
        if (encrypted.Length < 18)
            return -1;
        int bodyLength = encrypted.Length - 2;
        byte[] rented = ArrayPool<byte>.Shared.Rent(bodyLength);
        try
        {
            var body = rented.AsSpan(0, bodyLength);
            encrypted[2..].CopyTo(body);
            Span<byte> iv = stackalloc byte[18];
            requestAuthenticator.CopyTo(iv);
            encrypted[..2].CopyTo(iv[16..]);
            XorChain(body, secret, iv, encrypt: false);
            int length = body[0];
            if (length > bodyLength - 1)
                return -1;
            body.Slice(1, length).CopyTo(destination);
            return length;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
