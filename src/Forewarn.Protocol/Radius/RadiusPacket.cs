using System.Buffers.Binary;

namespace Forewarn.Protocol.Radius;

/// <summary>
/// A validated view over one RADIUS datagram (RFC 2865 §3). Nothing is copied.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Code      |  Identifier   |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Authenticator (16)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Attributes ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-
/// </code>
/// </summary>
public readonly ref struct RadiusPacket
{
    public const int HeaderLength = 20;
    public const int MaxLength = 4096;
    public const int AuthenticatorOffset = 4;
    public const int AuthenticatorLength = 16;

    /// <summary>Exactly the packet's Length octets (trailing padding in the datagram excluded).</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    private RadiusPacket(ReadOnlySpan<byte> bytes) => Bytes = bytes;

    public RadiusCode Code => (RadiusCode)Bytes[0];
    public byte Identifier => Bytes[1];
    public int Length => Bytes.Length;
    public ReadOnlySpan<byte> Authenticator => Bytes.Slice(AuthenticatorOffset, AuthenticatorLength);
    public ReadOnlySpan<byte> AttributeBytes => Bytes[HeaderLength..];
    public AttributeEnumerator Attributes => new(AttributeBytes);

    /// <summary>
    /// Validates the whole datagram once — header, every attribute's length, Message-Authenticator's
    /// length — so that decoding afterwards cannot fail. Octets beyond Length are padding and ignored
    /// (RFC 2865 §3). Returns the reason on failure; never throws.
    /// </summary>
    public static DropReason TryParse(ReadOnlySpan<byte> datagram, out RadiusPacket packet)
    {
        packet = default;
        if (datagram.Length < HeaderLength)
            return DropReason.TooShort;
        int length = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        if (length < HeaderLength)
            return DropReason.LengthFieldTooSmall;
        if (length > MaxLength)
            return DropReason.TooLong;
        if (length > datagram.Length)
            return DropReason.Truncated;
        if (!RadiusCodes.IsKnown(datagram[0]))
            return DropReason.UnknownCode;

        var bytes = datagram[..length];
        var reason = ValidateAttributes(bytes[HeaderLength..]);
        if (reason != DropReason.None)
            return reason;
        packet = new RadiusPacket(bytes);
        // RFC 5997 §3: Status-Server MUST carry Message-Authenticator. RFC 3579 §3.2: so MUST any
        // packet with EAP-Message.
        if ((packet.Code == RadiusCode.StatusServer || packet.HasAttribute(AttributeTypes.EapMessage))
            && !packet.HasAttribute(AttributeTypes.MessageAuthenticator))
        {
            packet = default;
            return DropReason.MissingMessageAuthenticator;
        }
        return DropReason.None;
    }

    /// <summary>Walks type-length-value triples: each needs 2 octets, a length of at least 2, and must end inside the packet.</summary>
    public static DropReason ValidateAttributes(ReadOnlySpan<byte> attributes)
    {
        int offset = 0;
        while (offset < attributes.Length)
        {
            if (attributes.Length - offset < 2)
                return DropReason.AttributeMalformed;
            byte type = attributes[offset];
            int len = attributes[offset + 1];
            // Type 0 is reserved (RFC 6929 §2.1 lists 0 as never to be allocated).
            if (len < 2 || type == 0)
                return DropReason.AttributeMalformed;
            if (offset + len > attributes.Length)
                return DropReason.AttributeOverrun;
            if (type == AttributeTypes.MessageAuthenticator && len != 18)
                return DropReason.MessageAuthenticatorLength;
            offset += len;
        }
        return DropReason.None;
    }

    /// <summary>Offset (from the packet start) of the first attribute of <paramref name="type"/>, or -1.</summary>
    public int FindAttributeOffset(byte type)
    {
        int offset = HeaderLength;
        // Validated attributes always satisfy these bounds; octets that were not validated stop the walk, never loop or overrun.
        while (offset + 2 <= Bytes.Length)
        {
            int length = Bytes[offset + 1];
            if (length < 2 || offset + length > Bytes.Length)
                return -1;
            if (Bytes[offset] == type)
                return offset;
            offset += length;
        }
        return -1;
    }

    public bool TryGetAttribute(byte type, out ReadOnlySpan<byte> value)
    {
        int offset = FindAttributeOffset(type);
        if (offset < 0)
        {
            value = default;
            return false;
        }
        value = Bytes.Slice(offset + 2, Bytes[offset + 1] - 2);
        return true;
    }

    public bool HasAttribute(byte type) => FindAttributeOffset(type) >= 0;

    /// <summary>
    /// The first vendor attribute (RFC 2865 §5.26, one-octet type and length) of <paramref name="vendorId"/>
    /// and <paramref name="vendorType"/>. A malformed VSA is skipped, never read past.
    /// </summary>
    public bool TryGetVendorAttribute(uint vendorId, byte vendorType, out ReadOnlySpan<byte> value)
    {
        foreach (var attribute in Attributes)
        {
            if (attribute.Type != AttributeTypes.VendorSpecific || attribute.Value.Length < 6
                || BinaryPrimitives.ReadUInt32BigEndian(attribute.Value) != vendorId)
                continue;
            var body = attribute.Value[4..];
            while (body.Length >= 2)
            {
                int len = body[1];
                if (len < 2 || len > body.Length)
                    break;
                if (body[0] == vendorType)
                {
                    value = body[2..len];
                    return true;
                }
                body = body[len..];
            }
        }
        value = default;
        return false;
    }

    /// <summary>
    /// Wraps octets that <see cref="TryParse"/> has already accepted (for example before an await),
    /// without validating them again. Given anything else it throws on a bad header, and its attribute
    /// lookups stop at the first malformed attribute rather than loop or read past it.
    /// </summary>
    public static RadiusPacket FromValidated(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < HeaderLength)
            throw new ArgumentException($"a RADIUS packet has at least {HeaderLength} octets; this has {packet.Length}", nameof(packet));
        int length = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (length < HeaderLength || length > packet.Length)
            throw new ArgumentException($"the Length field ({length}) is outside {HeaderLength}..{packet.Length}", nameof(packet));
        return new(packet[..length]);
    }
}

/// <summary>One attribute as it stands on the wire.</summary>
public readonly ref struct RawAttribute(byte type, ReadOnlySpan<byte> value, int offset)
{
    public byte Type { get; } = type;
    public ReadOnlySpan<byte> Value { get; } = value;
    /// <summary>Offset of the attribute's Type octet within the span that was enumerated.</summary>
    public int Offset { get; } = offset;
}

/// <summary>Enumerates attributes that <see cref="RadiusPacket.ValidateAttributes"/> has accepted.</summary>
public ref struct AttributeEnumerator(ReadOnlySpan<byte> attributes)
{
    private readonly ReadOnlySpan<byte> _attributes = attributes;
    private int _next;
    private RawAttribute _current;

    public readonly RawAttribute Current => _current;
    public readonly AttributeEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_next + 2 > _attributes.Length)
            return false;
        int len = _attributes[_next + 1];
        if (len < 2 || _next + len > _attributes.Length)
            return false;
        _current = new RawAttribute(_attributes[_next], _attributes.Slice(_next + 2, len - 2), _next);
        _next += len;
        return true;
    }
}
