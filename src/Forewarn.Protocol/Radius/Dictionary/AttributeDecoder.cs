using System.Buffers.Binary;

namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>One decoded attribute, named by the dictionary (or <c>Attr-N</c> / <c>Vendor-V-Attr-N</c> when unknown).</summary>
public sealed record DecodedAttribute(string Name, AttributeDefinition? Definition, uint VendorId, uint Number, byte Tag, byte[] Value)
{
    public string ValueText => ValueCodec.Format(Definition, Value);
    public override string ToString() => $"{Name}{(Tag != 0 ? ":" + Tag : "")} = {ValueText}";
}

/// <summary>
/// Decodes a validated attribute block into named values, for records, logs and tools (not the
/// request hot path, which reads raw spans). Hidden values are revealed when a secret is given.
/// </summary>
public static class AttributeDecoder
{
    public static List<DecodedAttribute> Decode(ReadOnlySpan<byte> attributes, RadiusDictionary dictionary, ReadOnlySpan<byte> secret = default, ReadOnlySpan<byte> requestAuthenticator = default)
    {
        var result = new List<DecodedAttribute>();
        int previousType = -1;
        foreach (var attribute in new AttributeEnumerator(attributes))
        {
            // Zero-length attributes carry nothing and are skipped, as FreeRADIUS does, except an empty
            // Chargeable-User-Identity, which means "please send me one" (RFC 4372 §2.1).
            if (attribute.Value.IsEmpty && attribute.Type != AttributeTypes.ChargeableUserIdentity)
                continue;
            if (attribute.Type == AttributeTypes.VendorSpecific && TryDecodeVendor(attribute.Value, dictionary, secret, requestAuthenticator, result))
                continue;
            var definition = dictionary.Find(0, attribute.Type);
            // Consecutive parts of a concatenated attribute (EAP-Message, RFC 3579 §3.1) form one value.
            if (definition is { Concat: true } && previousType == attribute.Type && result.Count > 0 && result[^1].Definition == definition)
            {
                result[^1] = result[^1] with { Value = [.. result[^1].Value, .. attribute.Value] };
                continue;
            }
            previousType = attribute.Type;
            result.Add(Make(definition, 0, attribute.Type, attribute.Value, secret, requestAuthenticator));
        }
        return result;
    }

    private static bool TryDecodeVendor(ReadOnlySpan<byte> vsa, RadiusDictionary dictionary, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator, List<DecodedAttribute> result)
    {
        if (vsa.Length < 4)
            return false;
        uint vendorId = BinaryPrimitives.ReadUInt32BigEndian(vsa);
        var vendor = dictionary.FindVendor(vendorId) ?? new VendorDefinition("", vendorId);
        var body = vsa[4..];
        // Validate every sub-attribute before emitting any, so that a malformed VSA stays one opaque attribute.
        int count = 0;
        for (int offset = 0; offset < body.Length; count++)
        {
            if (!TryReadSub(body[offset..], vendor, out _, out _, out int consumed))
                return false;
            offset += consumed;
        }
        if (count == 0)
            return false;
        for (int offset = 0; offset < body.Length;)
        {
            TryReadSub(body[offset..], vendor, out uint type, out var value, out int consumed);
            result.Add(Make(dictionary.Find(vendorId, type), vendorId, type, value, secret, requestAuthenticator));
            offset += consumed;
        }
        return true;
    }

    private static bool TryReadSub(ReadOnlySpan<byte> data, VendorDefinition vendor, out uint type, out ReadOnlySpan<byte> value, out int consumed)
    {
        type = 0;
        value = default;
        consumed = 0;
        int header = vendor.TypeWidth + vendor.LengthWidth + (vendor.Continuation ? 1 : 0);
        if (data.Length < header)
            return false;
        type = vendor.TypeWidth switch
        {
            1 => data[0],
            2 => BinaryPrimitives.ReadUInt16BigEndian(data),
            _ => BinaryPrimitives.ReadUInt32BigEndian(data),
        };
        int length = vendor.LengthWidth switch
        {
            0 => data.Length,
            1 => data[vendor.TypeWidth],
            _ => BinaryPrimitives.ReadUInt16BigEndian(data[vendor.TypeWidth..]),
        };
        if (vendor.LengthWidth == 0)
            length = data.Length;
        else
            length += vendor.Continuation ? 1 : 0;
        if (length < header || length > data.Length)
            return false;
        value = data[header..length];
        consumed = length;
        return true;
    }

    private static DecodedAttribute Make(AttributeDefinition? definition, uint vendorId, uint number, ReadOnlySpan<byte> raw, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> requestAuthenticator)
    {
        string name = definition?.Name ?? (vendorId == 0 ? $"Attr-{number}" : $"Vendor-{vendorId}-Attr-{number}");
        byte tag = 0;
        var value = raw;
        if (definition is not null && definition.HasTag && value.Length > 0 && value[0] <= 0x1F)
        {
            if (definition.Type == RadiusDataType.Integer && value.Length == 4)
            {
                tag = value[0];
                Span<byte> untagged = [0, value[1], value[2], value[3]];
                return new DecodedAttribute(name, definition, vendorId, number, tag, untagged.ToArray());
            }
            // RFC 2868 §3.3: 0x01-0x1F is a tag; 0x00 stands for "no tag" and is not part of the value.
            tag = value[0];
            value = value[1..];
        }
        if (definition is not null && !secret.IsEmpty && requestAuthenticator.Length == 16)
        {
            Span<byte> plain = stackalloc byte[256];
            int length = definition.Encryption switch
            {
                AttributeEncryption.UserPassword => RadiusCrypto.UnhideUserPassword(value, secret, requestAuthenticator, plain),
                AttributeEncryption.TunnelPassword => RadiusCrypto.SaltDecrypt(value, secret, requestAuthenticator, plain),
                _ => -2,
            };
            if (length >= 0)
                return new DecodedAttribute(name, definition, vendorId, number, tag, plain[..length].ToArray());
        }
        return new DecodedAttribute(name, definition, vendorId, number, tag, value.ToArray());
    }
}
