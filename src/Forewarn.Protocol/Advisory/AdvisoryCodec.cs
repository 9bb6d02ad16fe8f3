using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Forewarn.Protocol.Advisory;

/// <summary>Why an advisory was not accepted. Every rejection is counted and alerted on by the receiver.</summary>
public enum AdvisoryError
{
    None = 0,
    Malformed,
    UnsupportedVersion,
    UnknownKey,
    BadDigest,
    Expired,
    Replayed,
    MisaddressedServer,
    MisaddressedClient,
}

/// <summary>
/// The advisory wire format (docs/protocol.md §2): a fixed header, the two addresses, a TLV area, and
/// an HMAC-SHA256 over everything before it.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      'F'      |      'W'      |    Version    |     Type      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |            Length             |    Key Id     |    Reason     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Sequence (64)                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Timestamp (64, Unix ms)                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Retry-After          | Server family | Server (4|16) |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Client family | Client (4|16) | TLVs ...      | HMAC (32)     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// Length counts the whole message, HMAC included. Families: 4 (IPv4, 4 octets), 6 (IPv6, 16 octets).
/// TLV: Type(1) Length(1, value only) Value. Unknown TLVs are skipped (they are still signed).
/// </summary>
public static class AdvisoryCodec
{
    public const int DigestLength = 32;
    public const int FixedHeaderLength = 2 + 1 + 1 + 2 + 1 + 1 + 8 + 8 + 2; // magic, version, type, length, key id, reason, sequence, timestamp, retry-after = 26
    public const int MaxLength = 1200; // fits any path MTU with room; an ICMP Echo payload too

    private const byte TlvAlternate = 1;     // family(1) address(4|16) port(2) weight(1)
    private const byte TlvAckedSequence = 2; // sequence(8)
    private const byte TlvScore = 3;         // thousandths(2)
    private const byte TlvZone = 4;          // zone(1)
    private const byte TlvServicePort = 5;   // port(2)
    private const byte TlvTacacsPort = 6;    // port(2): the sender's TACACS+ port
    private const byte TlvAlternateTacacs = 7; // family(1) address(4|16) port(2): the TACACS+ port of the alternate at that address
    private const byte TlvSubject = 8;       // family(1) address(4|16): PeerDown's silent server
    private const byte TlvPeerClient = 9;    // family(1) address(4|16): PeerHealth, one client the sender serves

    /// <summary>Encodes and signs; returns the octets written.</summary>
    public static int Encode(AdvisoryMessage message, ReadOnlySpan<byte> key, Span<byte> destination)
    {
        int offset = 0;
        destination[offset++] = (byte)'F';
        destination[offset++] = (byte)'W';
        destination[offset++] = message.Version;
        destination[offset++] = (byte)message.Type;
        int lengthAt = offset;
        offset += 2;
        destination[offset++] = message.KeyId;
        destination[offset++] = (byte)message.Reason;
        BinaryPrimitives.WriteUInt64BigEndian(destination[offset..], message.Sequence);
        offset += 8;
        BinaryPrimitives.WriteInt64BigEndian(destination[offset..], message.Timestamp);
        offset += 8;
        BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], message.RetryAfter);
        offset += 2;
        offset += WriteAddress(message.Server, destination[offset..]);
        offset += WriteAddress(message.Client, destination[offset..]);
        foreach (var alternate in message.Alternates)
        {
            int family = alternate.Address.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;
            destination[offset++] = TlvAlternate;
            destination[offset++] = (byte)(1 + family + 2 + 1);
            offset += WriteAddress(alternate.Address, destination[offset..]);
            BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], alternate.Port);
            offset += 2;
            destination[offset++] = alternate.Weight;
            if (alternate.TacacsPort != 0)
            {
                destination[offset++] = TlvAlternateTacacs;
                destination[offset++] = (byte)(1 + family + 2);
                offset += WriteAddress(alternate.Address, destination[offset..]);
                BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], alternate.TacacsPort);
                offset += 2;
            }
        }
        if (message.AckedSequence != 0)
        {
            destination[offset++] = TlvAckedSequence;
            destination[offset++] = 8;
            BinaryPrimitives.WriteUInt64BigEndian(destination[offset..], message.AckedSequence);
            offset += 8;
        }
        if (message.Score != 0)
        {
            destination[offset++] = TlvScore;
            destination[offset++] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], message.Score);
            offset += 2;
        }
        if (message.Zone != 0)
        {
            destination[offset++] = TlvZone;
            destination[offset++] = 1;
            destination[offset++] = message.Zone;
        }
        if (message.ServicePort != 0)
        {
            destination[offset++] = TlvServicePort;
            destination[offset++] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], message.ServicePort);
            offset += 2;
        }
        if (message.TacacsPort != 0)
        {
            destination[offset++] = TlvTacacsPort;
            destination[offset++] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], message.TacacsPort);
            offset += 2;
        }
        if (message.Subject is { } subject)
        {
            destination[offset++] = TlvSubject;
            destination[offset++] = (byte)(subject.AddressFamily == AddressFamily.InterNetwork ? 5 : 17);
            offset += WriteAddress(subject, destination[offset..]);
        }
        foreach (var client in message.Clients)
        {
            destination[offset++] = TlvPeerClient;
            destination[offset++] = (byte)(client.AddressFamily == AddressFamily.InterNetwork ? 5 : 17);
            offset += WriteAddress(client, destination[offset..]);
        }
        int total = offset + DigestLength;
        if (total > MaxLength)
            throw new InvalidOperationException($"An advisory of {total} octets exceeds {MaxLength}.");
        BinaryPrimitives.WriteUInt16BigEndian(destination[lengthAt..], (ushort)total);
        HMACSHA256.HashData(key, destination[..offset], destination.Slice(offset, DigestLength));
        return total;
    }

    private static int WriteAddress(IPAddress address, Span<byte> destination)
    {
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        destination[0] = v4 ? (byte)4 : (byte)6;
        address.TryWriteBytes(destination[1..], out int written);
        return 1 + written;
    }

    /// <summary>Reads the key id without verifying anything, so the receiver can pick the key. False if the octets are not an advisory.</summary>
    public static bool TryPeekKeyId(ReadOnlySpan<byte> data, out byte keyId)
    {
        keyId = 0;
        if (data.Length < FixedHeaderLength + DigestLength || data[0] != 'F' || data[1] != 'W')
            return false;
        keyId = data[6];
        return true;
    }

    /// <summary>
    /// Verifies the HMAC with <paramref name="key"/> (in constant time) and decodes. Structure is checked
    /// before the digest so that no malformed input is ever parsed past its end; nothing is trusted until
    /// the digest matches. Freshness and addressing are the <see cref="AdvisoryReceiver"/>'s job.
    /// </summary>
    public static AdvisoryError TryDecode(ReadOnlySpan<byte> data, ReadOnlySpan<byte> key, out AdvisoryMessage? message)
    {
        message = null;
        if (data.Length < FixedHeaderLength + DigestLength || data[0] != 'F' || data[1] != 'W')
            return AdvisoryError.Malformed;
        if (data[2] != AdvisoryMessage.CurrentVersion)
            return AdvisoryError.UnsupportedVersion;
        int length = BinaryPrimitives.ReadUInt16BigEndian(data[4..]);
        if (length != data.Length || length > MaxLength)
            return AdvisoryError.Malformed;
        var signed = data[..(length - DigestLength)];
        Span<byte> expected = stackalloc byte[DigestLength];
        HMACSHA256.HashData(key, signed, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, data[(length - DigestLength)..length]))
            return AdvisoryError.BadDigest;
        if (!Enum.IsDefined((AdvisoryType)data[3]))
            return AdvisoryError.Malformed;

        int offset = FixedHeaderLength;
        if (!TryReadAddress(signed, ref offset, out var server) || !TryReadAddress(signed, ref offset, out var client))
            return AdvisoryError.Malformed;
        var alternates = new List<Alternate>();
        ulong acked = 0;
        ushort score = 0, servicePort = 0, tacacsPort = 0;
        var alternateTacacs = new Dictionary<IPAddress, ushort>();
        byte zone = 0;
        IPAddress? subject = null;
        var clients = new List<IPAddress>();
        while (offset < signed.Length)
        {
            if (signed.Length - offset < 2)
                return AdvisoryError.Malformed;
            byte type = signed[offset];
            int valueLength = signed[offset + 1];
            offset += 2;
            if (signed.Length - offset < valueLength)
                return AdvisoryError.Malformed;
            var value = signed.Slice(offset, valueLength);
            offset += valueLength;
            switch (type)
            {
                case TlvAlternate:
                    int at = 0;
                    if (!TryReadAddress(value, ref at, out var address) || value.Length != at + 3)
                        return AdvisoryError.Malformed;
                    alternates.Add(new Alternate(address!, BinaryPrimitives.ReadUInt16BigEndian(value[at..]), value[at + 2]));
                    break;
                case TlvAckedSequence when valueLength == 8:
                    acked = BinaryPrimitives.ReadUInt64BigEndian(value);
                    break;
                case TlvScore when valueLength == 2:
                    score = BinaryPrimitives.ReadUInt16BigEndian(value);
                    break;
                case TlvZone when valueLength == 1:
                    zone = value[0];
                    break;
                case TlvServicePort when valueLength == 2:
                    servicePort = BinaryPrimitives.ReadUInt16BigEndian(value);
                    break;
                case TlvTacacsPort when valueLength == 2:
                    tacacsPort = BinaryPrimitives.ReadUInt16BigEndian(value);
                    break;
                case TlvAlternateTacacs:
                    int tat = 0;
                    if (!TryReadAddress(value, ref tat, out var tacacsAddress) || value.Length != tat + 2)
                        return AdvisoryError.Malformed;
                    alternateTacacs[tacacsAddress!] = BinaryPrimitives.ReadUInt16BigEndian(value[tat..]);
                    break;
                case TlvSubject:
                    int sat = 0;
                    if (subject is not null || !TryReadAddress(value, ref sat, out subject) || value.Length != sat)
                        return AdvisoryError.Malformed;
                    break;
                case TlvPeerClient:
                    int cat = 0;
                    if (!TryReadAddress(value, ref cat, out var peerClient) || value.Length != cat)
                        return AdvisoryError.Malformed;
                    clients.Add(peerClient!);
                    break;
                case TlvAlternate or TlvAckedSequence or TlvScore or TlvZone or TlvServicePort or TlvTacacsPort:
                    return AdvisoryError.Malformed;
                default:
                    break; // unknown TLVs are skipped; they were signed all the same
            }
        }
        // A PeerDown says whom to leave, or it says nothing.
        if ((AdvisoryType)data[3] == AdvisoryType.PeerDown && subject is null)
            return AdvisoryError.Malformed;
        message = new AdvisoryMessage
        {
            Version = data[2],
            Type = (AdvisoryType)data[3],
            KeyId = data[6],
            Reason = (AdvisoryReason)data[7],
            Sequence = BinaryPrimitives.ReadUInt64BigEndian(data[8..]),
            Timestamp = BinaryPrimitives.ReadInt64BigEndian(data[16..]),
            RetryAfter = BinaryPrimitives.ReadUInt16BigEndian(data[24..]),
            Server = server!,
            Client = client!,
            // An alternate's TACACS+ port travels in its own TLV (older receivers skip it), matched by address.
            Alternates = alternateTacacs.Count == 0 ? alternates
                : [.. alternates.Select(a => alternateTacacs.TryGetValue(a.Address, out var port) ? a with { TacacsPort = port } : a)],
            AckedSequence = acked,
            Score = score,
            Zone = zone,
            ServicePort = servicePort,
            TacacsPort = tacacsPort,
            Subject = subject,
            Clients = clients.Count == 0 ? Array.Empty<IPAddress>() : clients,
        };
        return AdvisoryError.None;
    }

    private static bool TryReadAddress(ReadOnlySpan<byte> data, ref int offset, out IPAddress? address)
    {
        address = null;
        if (offset >= data.Length)
            return false;
        int size = data[offset] switch { 4 => 4, 6 => 16, _ => -1 };
        if (size < 0 || data.Length - offset - 1 < size)
            return false;
        address = new IPAddress(data.Slice(offset + 1, size));
        offset += 1 + size;
        return true;
    }
}
