using System.Buffers.Binary;

namespace Forewarn.Protocol.Eap;

/// <summary>EAP codes (RFC 3748 §4).</summary>
public enum EapCode : byte { Request = 1, Response = 2, Success = 3, Failure = 4 }

/// <summary>The EAP method types Forewarn speaks or names (IANA "Method Types").</summary>
public static class EapType
{
    public const byte Identity = 1;
    public const byte Notification = 2;
    public const byte Nak = 3;
    public const byte Md5 = 4;
    public const byte Gtc = 6;
    public const byte Tls = 13;
    public const byte Ttls = 21;
    public const byte Peap = 25;
    public const byte MsChapV2 = 26;
    /// <summary>PEAP's Extensions method (the Result TLV), [MS-PEAP] §2.2.5.</summary>
    public const byte Extensions = 33;
    public const byte Expanded = 254;

    public static string Name(byte type) => type switch
    {
        Identity => "Identity",
        Md5 => "EAP-MD5",
        Gtc => "EAP-GTC",
        Tls => "EAP-TLS",
        Ttls => "EAP-TTLS",
        Peap => "PEAP",
        MsChapV2 => "EAP-MSCHAPv2",
        _ => $"EAP type {type}",
    };
}

/// <summary>
/// One EAP packet (RFC 3748 §4): Code, Identifier, Length, and for requests and responses a Type and
/// its data. Parsing checks the length field against the octets given and never reads past them.
/// </summary>
public readonly ref struct EapPacket
{
    public const int HeaderLength = 4;

    public EapCode Code { get; }
    public byte Identifier { get; }
    /// <summary>The method type of a request or response; 0 for Success and Failure.</summary>
    public byte Type { get; }
    public ReadOnlySpan<byte> TypeData { get; }
    public ReadOnlySpan<byte> Bytes { get; }

    private EapPacket(ReadOnlySpan<byte> bytes, byte type, ReadOnlySpan<byte> typeData)
    {
        Bytes = bytes;
        Code = (EapCode)bytes[0];
        Identifier = bytes[1];
        Type = type;
        TypeData = typeData;
    }

    /// <summary>Parses <paramref name="bytes"/> (trailing octets past Length are ignored, RFC 3748 §4.1); the reason when it is not EAP.</summary>
    public static bool TryParse(ReadOnlySpan<byte> bytes, out EapPacket packet, out string error)
    {
        packet = default;
        if (bytes.Length < HeaderLength)
        {
            error = "shorter than an EAP header";
            return false;
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]);
        if (length < HeaderLength || length > bytes.Length)
        {
            error = $"EAP length {length} does not fit the {bytes.Length} octets received";
            return false;
        }
        var code = (EapCode)bytes[0];
        bytes = bytes[..length];
        switch (code)
        {
            case EapCode.Request:
            case EapCode.Response:
                if (length < HeaderLength + 1)
                {
                    error = "an EAP request or response without a type";
                    return false;
                }
                packet = new EapPacket(bytes, bytes[4], bytes[5..]);
                break;
            case EapCode.Success:
            case EapCode.Failure:
                packet = new EapPacket(bytes, 0, default);
                break;
            default:
                error = $"unknown EAP code {(byte)code}";
                return false;
        }
        error = "";
        return true;
    }

    /// <summary>A request or response of <paramref name="type"/> with <paramref name="typeData"/>.</summary>
    public static byte[] Build(EapCode code, byte identifier, byte type, ReadOnlySpan<byte> typeData)
    {
        int length = HeaderLength + 1 + typeData.Length;
        if (length > ushort.MaxValue)
            throw new ArgumentException("An EAP packet holds at most 65,535 octets.", nameof(typeData));
        var packet = new byte[length];
        packet[0] = (byte)code;
        packet[1] = identifier;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)length);
        packet[4] = type;
        typeData.CopyTo(packet.AsSpan(5));
        return packet;
    }

    /// <summary>EAP-Success or EAP-Failure: four octets.</summary>
    public static byte[] Outcome(bool success, byte identifier) =>
        [(byte)(success ? EapCode.Success : EapCode.Failure), identifier, 0, 4];
}
