using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>A typed attribute value: the definition, the plain value octets and the tag (0 for none).</summary>
public sealed record AttributeValue(AttributeDefinition Definition, byte[] Value, byte Tag = 0)
{
    /// <summary>Parses operator text such as <c>Framed-IP-Address = 10.0.0.1</c> or <c>Tunnel-Type:1 = VLAN</c>.</summary>
    public static bool TryParse(RadiusDictionary dictionary, string name, string text, out AttributeValue? attribute, out string error)
    {
        attribute = null;
        byte tag = 0;
        int colon = name.LastIndexOf(':');
        if (colon > 0 && byte.TryParse(name.AsSpan(colon + 1), out var parsedTag))
        {
            tag = parsedTag;
            name = name[..colon];
        }
        var definition = dictionary.Find(name);
        if (definition is null)
        {
            error = $"Unknown attribute '{name}'.";
            return false;
        }
        if (tag > 0x1F || (tag != 0 && !definition.HasTag))
        {
            error = $"{definition.Name} takes no tag, or the tag is above 31.";
            return false;
        }
        if (definition.Type is RadiusDataType.Tlv or RadiusDataType.Vsa or RadiusDataType.Extended or RadiusDataType.LongExtended or RadiusDataType.Evs || definition.IsNested)
        {
            error = $"{definition.Name} is a container or nested attribute and cannot be set directly.";
            return false;
        }
        if (definition.Number > MaxNumber(dictionary, definition.VendorId))
        {
            // FreeRADIUS numbers its server-internal attributes (Auth-Type, 1000) beyond what a packet can carry.
            error = $"{definition.Name} is number {definition.Number}, more than a packet's type field holds: it is internal to the server and never sent.";
            return false;
        }
        if (definition.Encryption is not (AttributeEncryption.None or AttributeEncryption.UserPassword or AttributeEncryption.TunnelPassword))
        {
            error = $"{definition.Name} is to be hidden with encrypt={(int)definition.Encryption}, which Forewarn does not implement; it is not sent in the clear instead.";
            return false;
        }
        if (!ValueCodec.TryParse(definition, text, out var value, out error))
            return false;
        attribute = new AttributeValue(definition, value, tag);
        return true;
    }

    /// <summary>The largest number the type field holds: one octet for a standard attribute, the vendor's width (format=t,l) for its own.</summary>
    private static uint MaxNumber(RadiusDictionary dictionary, uint vendorId) =>
        vendorId == 0 ? byte.MaxValue : (dictionary.FindVendor(vendorId)?.TypeWidth ?? 1) switch
        {
            1 => byte.MaxValue,
            2 => ushort.MaxValue,
            _ => uint.MaxValue,
        };

    public override string ToString() =>
        $"{Definition.Name}{(Tag != 0 ? ":" + Tag : "")} = {ValueCodec.Format(Definition, Value)}";

    /// <summary>
    /// Writes the attribute: the tag (RFC 2868 §3.1: in the first octet, replacing the high octet of an
    /// integer), hiding per the definition's encrypt flag, and Vendor-Specific wrapping in the vendor's format.
    /// </summary>
    public void WriteTo(ref RadiusWriter writer, RadiusDictionary dictionary, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator)
    {
        // A zero-length value is not sent (FreeRADIUS skips it too), except Chargeable-User-Identity,
        // whose empty form means "please send me one" (RFC 4372 §2.1).
        if (Value.Length == 0 && Definition.Encryption == AttributeEncryption.None && Tag == 0
            && !(Definition.VendorId == 0 && Definition.Number == AttributeTypes.ChargeableUserIdentity))
            return;
        if (Definition.Concat && Definition.VendorId == 0)
        {
            writer.AddSplit((byte)Definition.Number, Value);
            return;
        }
        if (Value.Length > 253)
            throw new InvalidOperationException($"{Definition.Name} value of {Value.Length} octets exceeds 253.");
        Span<byte> inner = stackalloc byte[256 + 16];
        int length = EncodeValue(inner, secret, requestAuthenticator);
        var value = inner[..length];

        if (Definition.VendorId == 0)
        {
            writer.Add((byte)Definition.Number, value);
            return;
        }
        var vendor = dictionary.FindVendor(Definition.VendorId) ?? new VendorDefinition("", Definition.VendorId);
        Span<byte> vsa = stackalloc byte[4 + 4 + 2 + 256];
        BinaryPrimitives.WriteUInt32BigEndian(vsa, Definition.VendorId);
        int offset = 4;
        switch (vendor.TypeWidth)
        {
            case 1: vsa[offset] = (byte)Definition.Number; break;
            case 2: BinaryPrimitives.WriteUInt16BigEndian(vsa[offset..], (ushort)Definition.Number); break;
            default: BinaryPrimitives.WriteUInt32BigEndian(vsa[offset..], Definition.Number); break;
        }
        offset += vendor.TypeWidth;
        int vsaLength = vendor.TypeWidth + vendor.LengthWidth + value.Length;
        switch (vendor.LengthWidth)
        {
            case 1: vsa[offset] = (byte)vsaLength; break;
            case 2: BinaryPrimitives.WriteUInt16BigEndian(vsa[offset..], (ushort)vsaLength); break;
        }
        offset += vendor.LengthWidth;
        if (vendor.Continuation)
            vsa[offset++] = 0;
        value.CopyTo(vsa[offset..]);
        writer.Add(AttributeTypes.VendorSpecific, vsa[..(offset + value.Length)]);
    }

    private int EncodeValue(Span<byte> destination, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator)
    {
        switch (Definition.Encryption)
        {
            case AttributeEncryption.UserPassword:
                return RadiusCrypto.HideUserPassword(Value, secret, requestAuthenticator, destination);
            case AttributeEncryption.TunnelPassword:
            {
                int offset = 0;
                if (Definition.HasTag)
                    destination[offset++] = Tag;
                ushort salt = (ushort)RandomNumberGenerator.GetInt32(0, 0x8000);
                return offset + RadiusCrypto.SaltEncrypt(Value, secret, requestAuthenticator, salt, destination[offset..]);
            }
        }
        // RFC 2868 §3.3: a first octet of 0x00-0x1F reads as a tag, so an untagged value starting so gets tag 0.
        if (Definition.HasTag && (Tag != 0 || (Definition.Type != RadiusDataType.Integer && Value.Length > 0 && Value[0] <= 0x1F)))
        {
            if (Definition.Type == RadiusDataType.Integer && Value.Length == 4)
            {
                Value.CopyTo(destination);
                destination[0] = Tag;
                return 4;
            }
            destination[0] = Tag;
            Value.CopyTo(destination[1..]);
            return 1 + Value.Length;
        }
        Value.CopyTo(destination);
        return Value.Length;
    }
}
