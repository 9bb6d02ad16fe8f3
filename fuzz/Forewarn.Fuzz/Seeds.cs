using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Forewarn.Protocol.Advisory;

namespace Forewarn.Fuzz;

/// <summary>
/// Each target's starting corpus: packets other implementations wrote (the conformance vectors, read in
/// place from ../shared/conformance, never copied here) and messages built with Forewarn's own encoders.
/// </summary>
public static class Seeds
{
    public static IEnumerable<byte[]> For(string target, string? conformance) => target switch
    {
        "radius" => Radius(conformance),
        "tacacs" => Cases(conformance, "freeradius/tacacs-cases.jsonl", "decode-proto")
            // An ASCII authentication START for alice, in the clear (header, then action, priv-lvl, type, service, lengths, user).
            .Append(Convert.FromHexString("c1010101000000010000000d" + "0101010105000000" + "616c696365")),
        "advisory" => Advisories(),
        "eap" => Eap(),
        "dictionary" => Dictionaries(),
        _ => [],
    };

    private static IEnumerable<byte[]> Radius(string? conformance)
    {
        foreach (var packet in Cases(conformance, "freeradius/radius-cases.jsonl", "decode-proto"))
            yield return packet;
        // Attribute blocks alone, behind an Accounting-Request header (the code that takes attributes without Message-Authenticator).
        foreach (var attributes in Cases(conformance, "freeradius/radius-cases.jsonl", "decode-pair"))
        {
            if (attributes.Length > 4096 - 20)
                continue;
            var packet = new byte[20 + attributes.Length];
            packet[0] = 4;
            packet[2] = (byte)(packet.Length >> 8);
            packet[3] = (byte)packet.Length;
            attributes.CopyTo(packet, 20);
            yield return packet;
        }
        if (conformance is not null && Directory.Exists(Path.Combine(conformance, "node-radius", "captures")))
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(conformance, "node-radius", "captures"), "*.packet").Order(StringComparer.Ordinal))
                yield return File.ReadAllBytes(file);
        }
        // A PAP Access-Request with Message-Authenticator (zeroed: the fuzzer does not know the secret either).
        yield return Convert.FromHexString("0101003f" + new string('0', 32) + "0107616c696365" + "0212" + new string('1', 32) + "5012" + new string('0', 32));
    }

    private static IEnumerable<byte[]> Cases(string? conformance, string file, string command)
    {
        if (conformance is null || !File.Exists(Path.Combine(conformance, file)))
            yield break;
        foreach (var line in File.ReadLines(Path.Combine(conformance, file)))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (root.GetProperty("cmd").GetString() != command || !root.TryGetProperty("input_resolved", out var input) || input.GetString() is not { } text)
                continue;
            var hex = text.Replace(" ", "", StringComparison.Ordinal);
            if (hex.Length % 2 != 0 || !hex.All(Uri.IsHexDigit))
                continue;
            yield return Convert.FromHexString(hex);
        }
    }

    private static IEnumerable<byte[]> Advisories()
    {
        var key = SHA256.HashData("forewarn-fuzz advisory key"u8);
        AdvisoryMessage[] messages =
        [
            new() { Type = AdvisoryType.Failover, Reason = AdvisoryReason.Forecast, Sequence = 7, Timestamp = 1_764_000_000_000, RetryAfter = 30,
                Server = IPAddress.Parse("127.0.0.1"), Client = IPAddress.Parse("127.0.0.2"), Score = 420, Zone = 2, ServicePort = 1812, TacacsPort = 49,
                Alternates = [new Alternate(IPAddress.Parse("127.0.0.3"), 1812, 10, 49), new Alternate(IPAddress.Parse("::1"), 11812, 5)] },
            new() { Type = AdvisoryType.Ack, Sequence = 8, Timestamp = 1_764_000_000_001, Server = IPAddress.Parse("10.0.0.1"), Client = IPAddress.Parse("10.0.0.2"), AckedSequence = 7 },
            new() { Type = AdvisoryType.Invite, Sequence = 9, Timestamp = 1_764_000_000_002, Server = IPAddress.Parse("2001:db8::1"), Client = IPAddress.Parse("2001:db8::2") },
        ];
        var buffer = new byte[AdvisoryCodec.MaxLength];
        foreach (var message in messages)
        {
            int n = AdvisoryCodec.Encode(message, key, buffer);
            yield return buffer[..n];                                     // signed: the forgery path's one valid input
            yield return buffer[..(n - AdvisoryCodec.DigestLength)];      // unsigned: the target signs it to reach the parser
        }
    }

    /// <summary>Debian's freeradius-common dictionaries (read in place, when installed), then small ones written here for each keyword.</summary>
    private static IEnumerable<byte[]> Dictionaries()
    {
        const string debian = "/usr/share/freeradius";
        if (Directory.Exists(debian))
        {
            foreach (var file in Directory.EnumerateFiles(debian, "dictionary*").Order(StringComparer.Ordinal))
                yield return File.ReadAllBytes(file);
        }
        yield return """
            ATTRIBUTE    Service-Type        6       integer
            VALUE        Service-Type        Login-User   1
            VALUE        Service-Type        Framed-User  2
            ATTRIBUTE    Tunnel-Password     69      string    has_tag,encrypt=2
            ATTRIBUTE    EAP-Message         79      octets    concat
            ATTRIBUTE    Framed-IPv6-Prefix  97      ipv6prefix
            ATTRIBUTE    Event-Timestamp     55      date
            """u8.ToArray();
        yield return """
            VENDOR       Example             32473   format=2,2
            BEGIN-VENDOR Example
            ATTRIBUTE    Example-Level       300     short
            VALUE        Example-Level       High    3
            ATTRIBUTE    Example-Mac         2       ether
            ATTRIBUTE    Example-Key         3       octets[4] encrypt=1
            END-VENDOR   Example
            """u8.ToArray();
        yield return """
            VENDOR       Tlvs                9999    format=1,1,c
            ATTRIBUTE    Tlvs-Group          1       tlv       Tlvs
            BEGIN-TLV    Tlvs-Group
            ATTRIBUTE    Tlvs-Member         1       byte
            END-TLV      Tlvs-Group
            ATTRIBUTE    Extended-1          241     extended
            ATTRIBUTE    Extended-1-Id       241.1   ifid
            $INCLUDE     dictionary.other
            """u8.ToArray();
        yield return """
            # a comment
            VALUE      Unknown  Thing  1
            ATTRIBUTE  Speed    100    integer64
            VALUE      Speed    56     1
            VALUE      Speed    0x10   2
            """u8.ToArray();
    }

    private static IEnumerable<byte[]> Eap()
    {
        yield return Convert.FromHexString("0201000a01616c696365");                       // Response/Identity "alice"
        yield return Convert.FromHexString("0102000619" + "20");                            // Request/PEAP Start
        yield return Convert.FromHexString("0203000f0d" + "c0" + "0000000a" + "1603010005" + "01"); // Response/TLS, length and more-fragments flags
        yield return Convert.FromHexString("0204001615" + "00" + "0000000180000010000000016a6f6520"); // Response/TTLS carrying a User-Name AVP
        yield return Convert.FromHexString("0000000180000010000000016a6f6520");              // a Diameter AVP alone
    }
}
