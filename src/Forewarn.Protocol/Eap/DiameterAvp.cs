using System.Buffers.Binary;

namespace Forewarn.Protocol.Eap;

/// <summary>
/// EAP-TTLS carries its inner authentication as Diameter AVPs (RFC 5281 §10.1): Code (4), flags
/// (V: vendor, M: mandatory), a 24-bit length including the header, the Vendor-ID when V is set, the
/// data, then padding to a four-octet boundary.
/// </summary>
public static class DiameterAvp
{
    public const byte VendorFlag = 0x80;
    public const byte MandatoryFlag = 0x40;

    public readonly record struct Avp(uint Code, uint Vendor, bool Mandatory, byte[] Data);

    /// <summary>Every AVP in <paramref name="data"/>; false with the reason when one is malformed (no partial list).</summary>
    public static bool TryParse(ReadOnlySpan<byte> data, out List<Avp> avps, out string error)
    {
        avps = [];
        while (!data.IsEmpty)
        {
            if (data.Length < 8)
            {
                error = "a truncated AVP header";
                return false;
            }
            uint code = BinaryPrimitives.ReadUInt32BigEndian(data);
            byte flags = data[4];
            int length = (data[5] << 16) | (data[6] << 8) | data[7];
            int header = (flags & VendorFlag) != 0 ? 12 : 8;
            if (length < header || length > data.Length)
            {
                error = $"AVP {code} has length {length} with {data.Length} octets left";
                return false;
            }
            uint vendor = header == 12 ? BinaryPrimitives.ReadUInt32BigEndian(data[8..]) : 0;
            avps.Add(new Avp(code, vendor, (flags & MandatoryFlag) != 0, data[header..length].ToArray()));
            int padded = (length + 3) & ~3;
            data = data[Math.Min(padded, data.Length)..];
        }
        error = "";
        return true;
    }

    /// <summary>Appends one AVP (mandatory, padded) to <paramref name="output"/>.</summary>
    public static void Write(List<byte> output, uint code, uint vendor, ReadOnlySpan<byte> value)
    {
        int header = vendor != 0 ? 12 : 8;
        int length = header + value.Length;
        Span<byte> head = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(head, code);
        head[4] = (byte)(MandatoryFlag | (vendor != 0 ? VendorFlag : 0));
        head[5] = (byte)(length >> 16);
        head[6] = (byte)(length >> 8);
        head[7] = (byte)length;
        if (vendor != 0)
            BinaryPrimitives.WriteUInt32BigEndian(head[8..], vendor);
        foreach (byte b in head[..header])
            output.Add(b);
        foreach (byte b in value)
            output.Add(b);
        for (int pad = ((length + 3) & ~3) - length; pad > 0; pad--)
            output.Add(0);
    }
}
