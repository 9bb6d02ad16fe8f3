using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Forewarn.Protocol.Tacacs;

/// <summary>The TACACS+ packet types (RFC 8907 §4.1).</summary>
public enum TacacsType : byte
{
    Authentication = 1,
    Authorization = 2,
    Accounting = 3,
}

/// <summary>Header flags (RFC 8907 §4.1).</summary>
[Flags]
public enum TacacsFlags : byte
{
    None = 0,
    /// <summary>The body is not obfuscated (RFC 8907 §4.5: never in production).</summary>
    Unencrypted = 0x01,
    /// <summary>Many sessions on one connection (RFC 8907 §4.3).</summary>
    SingleConnect = 0x04,
}

/// <summary>Why a TACACS+ packet was rejected.</summary>
public enum TacacsError
{
    None = 0,
    /// <summary>Fewer than 12 octets of header.</summary>
    TooShort,
    /// <summary>The major version is not TACACS+ (0xc) or the minor version is neither 0 nor 1.</summary>
    BadVersion,
    /// <summary>The type is not authentication, authorization or accounting.</summary>
    UnknownType,
    /// <summary>The header's Length is above the limit this end accepts.</summary>
    TooLong,
    /// <summary>The octets after the header do not match the header's Length.</summary>
    LengthMismatch,
    /// <summary>A field's length runs past the body, or the fields do not fill the body exactly.</summary>
    FieldOverrun,
    /// <summary>Sequence number 0, or one whose parity does not fit the body (odd: from the client).</summary>
    BadSequence,
    /// <summary>A field holds a value RFC 8907 does not define where it requires one it does.</summary>
    BadValue,
}

/// <summary>
/// The 12-octet TACACS+ header (RFC 8907 §4.1):
/// <code>
/// major(4) minor(4) | type(8) | seq_no(8) | flags(8)
/// session_id(32)
/// length(32)           (of the body that follows)
/// </code>
/// </summary>
public readonly record struct TacacsHeader(byte Version, TacacsType Type, byte Sequence, TacacsFlags Flags, uint SessionId, int Length)
{
    public const int Size = 12;
    /// <summary>Major version 0xc with minor version 0 (the default) or 1.</summary>
    public const byte VersionDefault = 0xc0, VersionOne = 0xc1;

    public int MinorVersion => Version & 0x0f;

    /// <summary>Whether the packet comes from the client: odd sequence numbers (RFC 8907 §4.1).</summary>
    public bool FromClient => (Sequence & 1) == 1;

    public void Write(Span<byte> destination)
    {
        destination[0] = Version;
        destination[1] = (byte)Type;
        destination[2] = Sequence;
        destination[3] = (byte)Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], SessionId);
        BinaryPrimitives.WriteInt32BigEndian(destination[8..], Length);
    }
}

/// <summary>
/// Reading and writing TACACS+ packets: the header, the body's MD5 pad obfuscation (RFC 8907 §4.5), and
/// the seven bodies (<see cref="TacacsBody"/>). Every length is checked against the octets present
/// before anything is read; what does not add up is a <see cref="TacacsError"/>, never an exception.
/// </summary>
public static class TacacsPacket
{
    /// <summary>The largest body accepted: RFC 8907's fields fit well under it, and a peer cannot make the server buffer more.</summary>
    public const int MaxBodyLength = 65_536;

    /// <summary>Reads and checks the header alone (a stream reader needs it to know how much body follows).</summary>
    public static TacacsError TryReadHeader(ReadOnlySpan<byte> octets, out TacacsHeader header)
    {
        header = default;
        if (octets.Length < TacacsHeader.Size)
            return TacacsError.TooShort;
        byte version = octets[0];
        if (version >> 4 != 0xc || (version & 0x0f) > 1)
            return TacacsError.BadVersion;
        var type = (TacacsType)octets[1];
        if (type is not (TacacsType.Authentication or TacacsType.Authorization or TacacsType.Accounting))
            return TacacsError.UnknownType;
        if (octets[2] == 0)
            return TacacsError.BadSequence;
        uint length = BinaryPrimitives.ReadUInt32BigEndian(octets[8..]);
        if (length > MaxBodyLength)
            return TacacsError.TooLong;
        header = new TacacsHeader(version, type, octets[2], (TacacsFlags)octets[3], BinaryPrimitives.ReadUInt32BigEndian(octets[4..]), (int)length);
        return TacacsError.None;
    }

    /// <summary>
    /// Decodes a whole packet: header, body de-obfuscated with <paramref name="key"/> (unless the header
    /// says Unencrypted), and the body its type and sequence number call for.
    /// </summary>
    public static TacacsError TryDecode(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> key, out TacacsHeader header, out TacacsBody? body)
    {
        body = null;
        var error = TryReadHeader(packet, out header);
        if (error != TacacsError.None)
            return error;
        if (packet.Length != TacacsHeader.Size + header.Length)
            return TacacsError.LengthMismatch;
        // Minor version 1 belongs to PAP, CHAP and MS-CHAP authentication (RFC 8907 §5.4); authorization,
        // accounting and the ASCII exchange's CONTINUE packets are version 0.
        bool authenContinue = header.Type == TacacsType.Authentication && header.FromClient && header.Sequence > 1;
        if (header.MinorVersion != 0 && (header.Type != TacacsType.Authentication || authenContinue))
            return TacacsError.BadVersion;
        var clear = packet[TacacsHeader.Size..].ToArray();
        if ((header.Flags & TacacsFlags.Unencrypted) == 0)
            Obfuscate(clear, header, key);
        return TacacsBody.TryDecode(header, clear, out body);
    }

    /// <summary>
    /// Writes <paramref name="body"/> after a header with <paramref name="version"/>, <paramref name="type"/>
    /// (that of the body), <paramref name="sequence"/>, <paramref name="flags"/> and <paramref name="sessionId"/>,
    /// obfuscated with <paramref name="key"/> unless <paramref name="flags"/> says Unencrypted. Returns the packet's length.
    /// </summary>
    public static int Encode(TacacsBody body, byte version, byte sequence, TacacsFlags flags, uint sessionId, ReadOnlySpan<byte> key, Span<byte> destination)
    {
        int length = body.Encode(destination[TacacsHeader.Size..]);
        var header = new TacacsHeader(version, body.Type, sequence, flags, sessionId, length);
        header.Write(destination);
        if ((flags & TacacsFlags.Unencrypted) == 0)
            Obfuscate(destination.Slice(TacacsHeader.Size, length), header, key);
        return TacacsHeader.Size + length;
    }

    /// <summary>
    /// XORs <paramref name="body"/> with the pseudo-pad (RFC 8907 §4.5): MD5(session_id, key, version,
    /// seq_no), then MD5 of the same followed by the previous block, and so on. The same call obfuscates
    /// and restores.
    /// </summary>
    public static void Obfuscate(Span<byte> body, TacacsHeader header, ReadOnlySpan<byte> key)
    {
        // session_id(4) key version(1) seq_no(1) previous-block(16)
        Span<byte> input = key.Length <= 256 ? stackalloc byte[4 + key.Length + 2 + 16] : new byte[4 + key.Length + 2 + 16];
        BinaryPrimitives.WriteUInt32BigEndian(input, header.SessionId);
        key.CopyTo(input[4..]);
        input[4 + key.Length] = header.Version;
        input[5 + key.Length] = header.Sequence;
        int prefix = 6 + key.Length;
        Span<byte> pad = stackalloc byte[16];
        MD5.HashData(input[..prefix], pad);
        for (int offset = 0; offset < body.Length; offset += 16)
        {
            if (offset > 0)
            {
                pad.CopyTo(input[prefix..]);
                MD5.HashData(input, pad);
            }
            int n = Math.Min(16, body.Length - offset);
            for (int i = 0; i < n; i++)
                body[offset + i] ^= pad[i];
        }
    }
}
