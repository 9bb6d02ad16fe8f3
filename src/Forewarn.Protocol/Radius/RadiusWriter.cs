using System.Buffers.Binary;
using System.Text;

namespace Forewarn.Protocol.Radius;

/// <summary>
/// Builds one RADIUS packet in a caller-owned buffer (at least <see cref="RadiusPacket.MaxLength"/>
/// octets). Attributes are appended in order; <see cref="Complete"/> writes the Length, the
/// Message-Authenticator and the Authenticator as the packet's code requires. Overflowing 4096
/// octets throws: responses are ours to size, so that is a configuration error to log, not input.
/// </summary>
public ref struct RadiusWriter
{
    private readonly Span<byte> _buffer;
    private int _length;
    private int _messageAuthenticatorOffset;

    /// <param name="authenticator">The Request Authenticator nonce for Access-Request and Status-Server; ignored otherwise (filled by <see cref="Complete"/>).</param>
    public RadiusWriter(Span<byte> buffer, RadiusCode code, byte identifier, ReadOnlySpan<byte> authenticator = default)
    {
        if (buffer.Length < RadiusPacket.MaxLength)
            throw new ArgumentException("The buffer must hold a packet of 4096 octets.", nameof(buffer));
        _buffer = buffer;
        _buffer[0] = (byte)code;
        _buffer[1] = identifier;
        var auth = _buffer.Slice(RadiusPacket.AuthenticatorOffset, 16);
        if (authenticator.Length == 16)
            authenticator.CopyTo(auth);
        else
            auth.Clear();
        _length = RadiusPacket.HeaderLength;
        _messageAuthenticatorOffset = -1;
    }

    public readonly int Length => _length;
    public readonly RadiusCode Code => (RadiusCode)_buffer[0];

    private Span<byte> Reserve(byte type, int valueLength)
    {
        if (valueLength > 253)
            throw new InvalidOperationException($"Attribute {type} value of {valueLength} octets exceeds 253.");
        if (_length + 2 + valueLength > RadiusPacket.MaxLength)
            throw new InvalidOperationException("The packet would exceed 4096 octets.");
        _buffer[_length] = type;
        _buffer[_length + 1] = (byte)(2 + valueLength);
        var value = _buffer.Slice(_length + 2, valueLength);
        _length += 2 + valueLength;
        return value;
    }

    /// <summary>Adds Message-Authenticator (zeroed until <see cref="Complete"/>). Call it first: BlastRADIUS mitigations expect it as the first attribute.</summary>
    public void AddMessageAuthenticator()
    {
        _messageAuthenticatorOffset = _length;
        Reserve(AttributeTypes.MessageAuthenticator, 16).Clear();
    }

    public void Add(byte type, scoped ReadOnlySpan<byte> value) => value.CopyTo(Reserve(type, value.Length));

    /// <summary>Adds a value longer than 253 octets as consecutive attributes (EAP-Message, RFC 3579 §3.1).</summary>
    public void AddSplit(byte type, scoped ReadOnlySpan<byte> value)
    {
        do
        {
            int chunk = Math.Min(253, value.Length);
            Add(type, value[..chunk]);
            value = value[chunk..];
        }
        while (!value.IsEmpty);
    }

    public void AddUInt32(byte type, uint value) => BinaryPrimitives.WriteUInt32BigEndian(Reserve(type, 4), value);

    public void AddText(byte type, string value)
    {
        int count = Encoding.UTF8.GetByteCount(value);
        Encoding.UTF8.GetBytes(value, Reserve(type, count));
    }

    /// <summary>Vendor-Specific (RFC 2865 §5.26) with the common one-octet type and length.</summary>
    public void AddVendor(uint vendorId, byte vendorType, scoped ReadOnlySpan<byte> value)
    {
        var vsa = Reserve(AttributeTypes.VendorSpecific, 4 + 2 + value.Length);
        BinaryPrimitives.WriteUInt32BigEndian(vsa, vendorId);
        vsa[4] = vendorType;
        vsa[5] = (byte)(2 + value.Length);
        value.CopyTo(vsa[6..]);
    }

    /// <summary>Appends attributes already encoded on the wire (for example from a stored reply list, or Proxy-State copied from the request).</summary>
    public void AddRaw(scoped ReadOnlySpan<byte> encodedAttributes)
    {
        if (_length + encodedAttributes.Length > RadiusPacket.MaxLength)
            throw new InvalidOperationException("The packet would exceed 4096 octets.");
        encodedAttributes.CopyTo(_buffer[_length..]);
        _length += encodedAttributes.Length;
    }

    /// <summary>
    /// Writes Length, Message-Authenticator and Authenticator. <paramref name="requestAuthenticator"/> is
    /// the authenticator of the request being answered (responses only). Returns the packet length.
    /// </summary>
    public readonly int Complete(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator = default)
    {
        var packet = _buffer[.._length];
        BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)_length);
        var code = (RadiusCode)packet[0];
        var auth = packet.Slice(RadiusPacket.AuthenticatorOffset, 16);
        bool isRequest = RadiusCodes.IsRequest(code);
        if (!isRequest && requestAuthenticator.Length != 16)
            throw new ArgumentException("A response needs the request's authenticator.", nameof(requestAuthenticator));

        if (_messageAuthenticatorOffset >= 0)
        {
            Span<byte> basis = stackalloc byte[16];
            RadiusCrypto.MessageAuthenticatorBasis(code, auth, requestAuthenticator).CopyTo(basis);
            RadiusCrypto.MessageAuthenticator(packet, _messageAuthenticatorOffset, basis, secret, packet.Slice(_messageAuthenticatorOffset + 2, 16));
        }

        if (!isRequest)
        {
            RadiusCrypto.PacketDigest(packet, requestAuthenticator, secret, auth);
        }
        else if (RadiusCodes.HasComputedRequestAuthenticator(code))
        {
            auth.Clear();
            Span<byte> digest = stackalloc byte[16];
            RadiusCrypto.PacketDigest(packet, auth, secret, digest);
            digest.CopyTo(auth);
        }
        return _length;
    }
}
