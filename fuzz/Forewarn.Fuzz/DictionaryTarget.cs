using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Fuzz;

/// <summary>
/// A dictionary file in FreeRADIUS format, as operators load with <c>Forewarn:Dictionaries</c>, read from
/// memory (so $INCLUDE is refused). It loads, or is refused with a <see cref="DictionaryException"/> that
/// names the line. What loads is consistent: each attribute is found by its name and its number by its
/// number; one an operator can set in a reply is written with that number and decodes to the same text;
/// and a number's text (a named value's name) parses back to that number.
/// </summary>
public static class DictionaryTarget
{
    private const string Source = "fuzz";
    private static readonly byte[] Secret = "testing123"u8.ToArray();
    private static readonly byte[] Authenticator = [.. Enumerable.Range(1, 16).Select(i => (byte)i)];

    public static void Run(ReadOnlySpan<byte> data)
    {
        RadiusDictionary dictionary;
        try
        {
            dictionary = RadiusDictionary.LoadText(Encoding.UTF8.GetString(data), Source);
        }
        catch (DictionaryException e)
        {
            Targets.Require(e.Message.StartsWith(Source + ":", StringComparison.Ordinal), $"a refused dictionary names the line ({e.Message})");
            return;
        }
        foreach (var attribute in dictionary.Attributes)
        {
            Targets.Require(ReferenceEquals(dictionary.Find(attribute.Name), attribute), $"{attribute.Name} is found by its name");
            if (attribute.IsNested)
                continue;
            var byNumber = dictionary.Find(attribute.VendorId, attribute.Number);
            Targets.Require(byNumber is not null && ReferenceEquals(dictionary.Find(byNumber.Name), byNumber),
                $"{attribute.Name}'s number {attribute.VendorId}:{attribute.Number} finds an attribute that its name finds");
            NumbersRoundTrip(attribute);
            // A standard attribute numbered 26 whose value reads as a vendor's sub-attributes is decoded as those: RFC 2865 §5.26 keeps 26 for them.
            if (SampleText(attribute) is { } text && !(attribute.VendorId == 0 && attribute.Number == AttributeTypes.VendorSpecific))
                WrittenAndDecoded(dictionary, attribute, text);
        }
    }

    /// <summary>Every named value, every number a name looks like, 0 and 1: formatted, then parsed back to the same number.</summary>
    private static void NumbersRoundTrip(AttributeDefinition attribute)
    {
        int width = attribute.Type switch
        {
            RadiusDataType.Byte => 1,
            RadiusDataType.Short => 2,
            RadiusDataType.Integer => 4,
            RadiusDataType.Integer64 => 8,
            _ => 0,
        };
        if (width == 0)
            return;
        ulong max = width == 8 ? ulong.MaxValue : (1UL << (8 * width)) - 1;
        var numbers = new HashSet<ulong>(attribute.ValueNames.Keys) { 0, 1 };
        foreach (var name in attribute.ValuesByName.Keys)
        {
            if (ulong.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                || name.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && ulong.TryParse(name.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out number))
                numbers.Add(number);
        }
        var wire = new byte[8];
        foreach (var number in numbers.Where(n => n <= max))
        {
            BinaryPrimitives.WriteUInt64BigEndian(wire, number);
            var value = wire.AsSpan(8 - width);
            string text = ValueCodec.Format(attribute, value);
            Targets.Require(ValueCodec.TryParse(attribute, text, out var parsed, out string error) && parsed.AsSpan().SequenceEqual(value),
                $"{attribute.Name}: {number} is shown as '{text}', which parses to {Convert.ToHexString(parsed)} ({error})");
        }
    }

    /// <summary>A value of the attribute's type that an operator could write in a reply item.</summary>
    private static string? SampleText(AttributeDefinition attribute) => attribute.Type switch
    {
        RadiusDataType.Text => "fuzz",
        RadiusDataType.Octets or RadiusDataType.AscendBinary => "0x" + new string('a', 2 * Math.Clamp(attribute.FixedLength, 1, 253)),
        RadiusDataType.Ipv4Address or RadiusDataType.ComboIp => "192.0.2.1",
        RadiusDataType.Ipv4Prefix => "192.0.2.0/24",
        RadiusDataType.Ipv6Address => "2001:db8::1",
        RadiusDataType.Ipv6Prefix => "2001:db8::/32",
        RadiusDataType.Integer or RadiusDataType.Short or RadiusDataType.Byte or RadiusDataType.Integer64 or RadiusDataType.Signed => "1",
        RadiusDataType.Date => "2026-12-07T00:00:00Z",
        RadiusDataType.InterfaceId => "0001:0203:0405:0607",
        RadiusDataType.Ether => "00:11:22:33:44:55",
        _ => null,
    };

    /// <summary>
    /// Set by name as a reply item would be, written into a packet, decoded with the same dictionary: the
    /// attribute on the wire has the definition's number, and (unless another name shares the number) the text.
    /// </summary>
    private static void WrittenAndDecoded(RadiusDictionary dictionary, AttributeDefinition attribute, string text)
    {
        if (!AttributeValue.TryParse(dictionary, attribute.Name, text, out var value, out _) || value is null)
            return;
        var packet = new byte[4096];
        var writer = new RadiusWriter(packet, RadiusCode.AccessAccept, 0);
        value.WriteTo(ref writer, dictionary, Secret, Authenticator);
        var decoded = AttributeDecoder.Decode(packet.AsSpan(20, writer.Length - 20), dictionary, Secret, Authenticator);
        Targets.Require(decoded.Count == 1 && decoded[0].VendorId == attribute.VendorId && decoded[0].Number == attribute.Number,
            $"{attribute.Name} = {text} is written as {attribute.VendorId}:{attribute.Number} (decoded: {string.Join(", ", decoded.Select(d => $"{d.VendorId}:{d.Number}"))})");
        string written = ValueCodec.Format(attribute, value.Value);
        if (ReferenceEquals(decoded[0].Definition, attribute) && attribute.Encryption == AttributeEncryption.None)
            Targets.Require(decoded[0].ValueText == written, $"{attribute.Name} = {written} decodes to '{decoded[0].ValueText}'");
    }
}
