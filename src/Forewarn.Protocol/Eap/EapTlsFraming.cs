using System.Buffers.Binary;

namespace Forewarn.Protocol.Eap;

/// <summary>
/// The framing shared by EAP-TLS, EAP-TTLS and PEAP (RFC 5216 §3.1, RFC 5281 §9.1): a flags octet
/// (L: a four-octet TLS message length follows; M: more fragments follow; S: start; the low three bits
/// a version for TTLS and PEAP), then a fragment of the TLS record stream.
/// </summary>
public static class EapTlsFraming
{
    public const byte LengthIncluded = 0x80;
    public const byte MoreFragments = 0x40;
    public const byte Start = 0x20;
    public const byte VersionMask = 0x07;

    /// <summary>
    /// A TLS message reassembled from fragments is refused past this size: a client's flight with a
    /// long certificate chain is a few KiB, and the bound (times the conversations allowed) caps what
    /// a peer can make the server hold.
    /// </summary>
    public const int MaxMessageLength = 64 * 1024;

    public readonly ref struct Fragment(byte flags, int totalLength, ReadOnlySpan<byte> data)
    {
        public byte Flags { get; } = flags;
        /// <summary>The TLS message length announced by the L flag; -1 without it.</summary>
        public int TotalLength { get; } = totalLength;
        public ReadOnlySpan<byte> Data { get; } = data;
        public bool More => (Flags & MoreFragments) != 0;
        public byte Version => (byte)(Flags & VersionMask);
    }

    /// <summary>Reads the type data of an EAP-TLS/TTLS/PEAP packet; the reason when it is malformed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> typeData, out Fragment fragment, out string error)
    {
        fragment = default;
        if (typeData.IsEmpty)
        {
            error = "no flags octet";
            return false;
        }
        byte flags = typeData[0];
        var rest = typeData[1..];
        int total = -1;
        if ((flags & LengthIncluded) != 0)
        {
            if (rest.Length < 4)
            {
                error = "the L flag without a length";
                return false;
            }
            uint announced = BinaryPrimitives.ReadUInt32BigEndian(rest);
            if (announced > MaxMessageLength)
            {
                error = $"a TLS message of {announced} octets announced (at most {MaxMessageLength})";
                return false;
            }
            total = (int)announced;
            rest = rest[4..];
            if (rest.Length > total)
            {
                error = "a fragment longer than the message it announces";
                return false;
            }
        }
        fragment = new Fragment(flags, total, rest);
        error = "";
        return true;
    }

    /// <summary>The type data of one fragment to send: flags (with L and the total on the first of several), then the data.</summary>
    public static byte[] Write(byte version, ReadOnlySpan<byte> data, int totalLength, bool first, bool more)
    {
        bool withLength = first && more;
        var output = new byte[1 + (withLength ? 4 : 0) + data.Length];
        output[0] = (byte)((version & VersionMask) | (more ? MoreFragments : 0) | (withLength ? LengthIncluded : 0));
        int offset = 1;
        if (withLength)
        {
            BinaryPrimitives.WriteUInt32BigEndian(output.AsSpan(1), (uint)totalLength);
            offset = 5;
        }
        data.CopyTo(output.AsSpan(offset));
        return output;
    }
}
