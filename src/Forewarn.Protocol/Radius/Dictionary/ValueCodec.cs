using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Forewarn.Protocol.Radius.Dictionary;

/// <summary>
/// Converts attribute values between their wire form and the text operators write (RFC 8044 data
/// types). Used off the hot path: configuration, the command line, stored records.
/// </summary>
public static class ValueCodec
{
    /// <summary>Parses operator text into the value's wire octets (no tag, no hiding). False with a reason on bad input.</summary>
    public static bool TryParse(AttributeDefinition definition, string text, out byte[] value, out string error)
    {
        error = "";
        value = [];
        try
        {
            value = Parse(definition, text);
            if (definition.FixedLength > 0 && value.Length != definition.FixedLength)
            {
                error = $"{definition.Name} takes exactly {definition.FixedLength} octets.";
                return false;
            }
            if (value.Length > 253 && !definition.Concat)
            {
                error = $"{definition.Name} value is longer than 253 octets.";
                return false;
            }
            return true;
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            error = $"'{text}' is not a valid {Describe(definition.Type)} for {definition.Name}: {e.Message}";
            return false;
        }
    }

    public static string Describe(RadiusDataType type) => type switch
    {
        RadiusDataType.Text => "string",
        RadiusDataType.Ipv4Address => "IPv4 address",
        RadiusDataType.Ipv6Address => "IPv6 address",
        RadiusDataType.Ipv6Prefix => "IPv6 prefix",
        RadiusDataType.Ipv4Prefix => "IPv4 prefix",
        RadiusDataType.Integer => "32-bit unsigned integer or value name",
        RadiusDataType.Integer64 => "64-bit unsigned integer",
        RadiusDataType.Date => "date (seconds since 1970 or ISO 8601)",
        _ => type.ToString(),
    };

    private static byte[] Parse(AttributeDefinition d, string text)
    {
        switch (d.Type)
        {
            case RadiusDataType.Text:
                return Encoding.UTF8.GetBytes(text);
            case RadiusDataType.Ipv4Address:
                return ParseAddress(text, AddressFamily.InterNetwork);
            case RadiusDataType.Ipv6Address:
                return ParseAddress(text, AddressFamily.InterNetworkV6);
            case RadiusDataType.ComboIp:
                return IPAddress.Parse(text).GetAddressBytes();
            case RadiusDataType.Ipv6Prefix:
            case RadiusDataType.Ipv4Prefix:
                return ParsePrefix(text, d.Type == RadiusDataType.Ipv6Prefix);
            case RadiusDataType.Integer:
            {
                var bytes = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(bytes, checked((uint)ParseEnumOrNumber(d, text)));
                return bytes;
            }
            case RadiusDataType.Signed:
            {
                var bytes = new byte[4];
                BinaryPrimitives.WriteInt32BigEndian(bytes, int.Parse(text, CultureInfo.InvariantCulture));
                return bytes;
            }
            case RadiusDataType.Short:
            {
                var bytes = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(bytes, checked((ushort)ParseEnumOrNumber(d, text)));
                return bytes;
            }
            case RadiusDataType.Byte:
                return [checked((byte)ParseEnumOrNumber(d, text))];
            case RadiusDataType.Integer64:
            {
                var bytes = new byte[8];
                BinaryPrimitives.WriteUInt64BigEndian(bytes, ParseEnumOrNumber(d, text));
                return bytes;
            }
            case RadiusDataType.Date:
            {
                var bytes = new byte[4];
                uint seconds = uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var s)
                    ? s
                    : checked((uint)DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUnixTimeSeconds());
                BinaryPrimitives.WriteUInt32BigEndian(bytes, seconds);
                return bytes;
            }
            case RadiusDataType.InterfaceId:
                return ParseGroups(text, ':', 4, 2);
            case RadiusDataType.Ether:
                return ParseGroups(text, ':', 6, 1);
            default:
                return ParseHex(text);
        }
    }

    private static ulong ParseEnumOrNumber(AttributeDefinition d, string text)
    {
        if (d.ValuesByName.TryGetValue(text, out var named))
            return named;
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return ulong.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
    }

    private static byte[] ParseAddress(string text, AddressFamily family)
    {
        var address = IPAddress.Parse(text);
        if (address.AddressFamily != family)
            throw new FormatException($"expected an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        return address.GetAddressBytes();
    }

    /// <summary>RFC 3162 §2.3 / RFC 8044 §3.11: Reserved(1) Prefix-Length(1) Prefix(only the octets the length needs).</summary>
    private static byte[] ParsePrefix(string text, bool v6)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        var address = IPAddress.Parse(slash < 0 ? text : text[..slash]);
        int max = v6 ? 128 : 32;
        int length = slash < 0 ? max : int.Parse(text.AsSpan(slash + 1), CultureInfo.InvariantCulture);
        if (length < 0 || length > max)
            throw new FormatException($"prefix length must be 0 to {max}");
        var bytes = address.GetAddressBytes();
        if (bytes.Length != (v6 ? 16 : 4))
            throw new FormatException("wrong address family");
        int octets = v6 ? (length + 7) / 8 : 4;
        var value = new byte[2 + octets];
        value[1] = (byte)length;
        bytes.AsSpan(0, octets).CopyTo(value.AsSpan(2));
        return value;
    }

    private static byte[] ParseGroups(string text, char separator, int groups, int groupOctets)
    {
        var parts = text.Split(separator);
        if (parts.Length != groups)
            throw new FormatException($"expected {groups} groups separated by '{separator}'");
        var value = new byte[groups * groupOctets];
        for (int i = 0; i < groups; i++)
        {
            ulong g = ulong.Parse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            for (int b = 0; b < groupOctets; b++)
                value[i * groupOctets + b] = (byte)(g >> (8 * (groupOctets - 1 - b)));
        }
        return value;
    }

    public static byte[] ParseHex(string text)
    {
        var s = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        return Convert.FromHexString(s);
    }

    /// <summary>Formats wire octets as operator text. Values of the wrong length for their type are shown as hex.</summary>
    public static string Format(AttributeDefinition? definition, ReadOnlySpan<byte> value)
    {
        if (definition is null)
            return Hex(value);
        switch (definition.Type)
        {
            case RadiusDataType.Text:
                return IsPrintableUtf8(value) ? Encoding.UTF8.GetString(value) : Hex(value);
            case RadiusDataType.Ipv4Address when value.Length == 4:
            case RadiusDataType.Ipv6Address when value.Length == 16:
            case RadiusDataType.ComboIp when value.Length is 4 or 16:
                return new IPAddress(value).ToString();
            case RadiusDataType.Ipv6Prefix when value.Length is >= 2 and <= 18 && value[1] <= 128 && value.Length - 2 >= (value[1] + 7) / 8:
            {
                Span<byte> address = stackalloc byte[16];
                address.Clear();
                value[2..].CopyTo(address);
                MaskHostBits(address, value[1]);
                return $"{new IPAddress(address)}/{value[1]}";
            }
            case RadiusDataType.Ipv4Prefix when value.Length == 6 && value[1] <= 32:
                return $"{new IPAddress(value[2..])}/{value[1]}";
            case RadiusDataType.Integer when value.Length == 4:
                return Named(definition, BinaryPrimitives.ReadUInt32BigEndian(value));
            case RadiusDataType.Signed when value.Length == 4:
                return BinaryPrimitives.ReadInt32BigEndian(value).ToString(CultureInfo.InvariantCulture);
            case RadiusDataType.Short when value.Length == 2:
                return Named(definition, BinaryPrimitives.ReadUInt16BigEndian(value));
            case RadiusDataType.Byte when value.Length == 1:
                return Named(definition, value[0]);
            case RadiusDataType.Integer64 when value.Length == 8:
                return Named(definition, BinaryPrimitives.ReadUInt64BigEndian(value));
            case RadiusDataType.Date when value.Length == 4:
                return DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadUInt32BigEndian(value)).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            case RadiusDataType.InterfaceId when value.Length == 8:
                return $"{value[0]:x2}{value[1]:x2}:{value[2]:x2}{value[3]:x2}:{value[4]:x2}{value[5]:x2}:{value[6]:x2}{value[7]:x2}";
            case RadiusDataType.Ether when value.Length == 6:
                return $"{value[0]:x2}:{value[1]:x2}:{value[2]:x2}:{value[3]:x2}:{value[4]:x2}:{value[5]:x2}";
            default:
                return Hex(value);
        }
    }

    /// <summary>RFC 8044 §3.11: bits beyond the prefix length are zero; a sender's stray bits are not shown.</summary>
    private static void MaskHostBits(Span<byte> address, int prefixLength)
    {
        for (int bit = prefixLength; bit < address.Length * 8; bit++)
            address[bit / 8] &= (byte)~(0x80 >> (bit % 8));
    }

    private static string Named(AttributeDefinition d, ulong number)
    {
        if (d.ValueNames.TryGetValue(number, out var name))
            return name;
        // A value may be named with another number's digits (dictionary.usr: VALUE USR-Speed-Of-Connection 56 1):
        // then this number is shown in hex, which no name takes, so that the text parses back to it.
        string text = number.ToString(CultureInfo.InvariantCulture);
        for (int zeros = 0; d.ValuesByName.ContainsKey(text); zeros++)
            text = "0x" + new string('0', zeros) + number.ToString("x", CultureInfo.InvariantCulture);
        return text;
    }

    public static string Hex(ReadOnlySpan<byte> value) => "0x" + Convert.ToHexStringLower(value);

    private static bool IsPrintableUtf8(ReadOnlySpan<byte> value)
    {
        if (!System.Text.Unicode.Utf8.IsValid(value))
            return false;
        foreach (byte b in value)
        {
            if (b < 0x20 && b is not (byte)'\t' and not (byte)'\n' and not (byte)'\r')
                return false;
        }
        return true;
    }
}
