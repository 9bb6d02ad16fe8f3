using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Forewarn.Core.Aaa;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Protocol.Advisory;
using Forewarn.Server;
using Forewarn.Server.Advisories;
using Forewarn.Server.Eap;
using Forewarn.Server.Health;
using Forewarn.Server.Tacacs;
using Microsoft.Extensions.Logging.Console;

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
        "config" => Configurations(),
        _ => [],
    };

    /// <summary>
    /// Words for AFL's dictionary, which it splices into inputs: for the config target, the settings' names
    /// (read from the options classes), the sections and the values that bind oddly. Other targets: none.
    /// </summary>
    public static IEnumerable<string> Tokens(string target)
    {
        if (target != "config")
            return [];
        Type[] options = [typeof(ForewarnOptions), typeof(HealthOptions), typeof(Thresholds), typeof(AdvisoryOptions), typeof(PeerOptions), typeof(SelectionOptions),
            typeof(AdminOptions), typeof(TacacsOptions), typeof(EapOptions), typeof(SlowWorkOptions), typeof(ConsoleLoggerOptions), typeof(SimpleConsoleFormatterOptions)];
        string[] sections = ["Forewarn", "Tacacs", "Eap", "Admin", "Health", "Advisory", "SlowWork", "Logging", "LogLevel", "Console", "FormatterOptions", "Default"];
        string[] strings = ["NaN", "Infinity", "-Infinity", "1e309", "-1", "4294967296", "", "0x10", "Verbose", "::", "127.0.0.1:0"];
        return options.SelectMany(o => o.GetProperties()).Select(p => p.Name).Concat(sections).Concat(strings).Distinct(StringComparer.Ordinal)
            .Select(text => $"\"{text}\"").Concat(["true", "null", "[]", "{}"]);
    }

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

    /// <summary>forewarn.json as operators write it: docs/configuration.md's example, each section's settings, the logging levels.</summary>
    private static IEnumerable<byte[]> Configurations()
    {
        yield return "{}"u8.ToArray();
        yield return """{ "Forewarn": { "Listen": ["0.0.0.0", "::"], "Workers": 128, "Dictionaries": ["/usr/share/freeradius/dictionary"] } }"""u8.ToArray();
        yield return """
            {
              "Logging": { "LogLevel": { "Default": "Information", "Forewarn": "Debug" }, "Console": { "LogToStandardErrorThreshold": "Warning", "FormatterOptions": { "IncludeScopes": true } } },
              "Forewarn": {
                "AuthPort": 1812, "AcctPort": 1813, "Receivers": 2, "QueueCapacity": 8192, "QueueTimeoutMs": 5000, "DuplicateWindowSeconds": 30,
                "Postgres": "Host=10.0.0.5;Database=forewarn;Username=forewarn", "FreeRadiusSchema": true, "AccountingSpillAfterMs": 2000,
                "SlowWork": { "Threads": 2, "QueueCapacity": 1024, "PerClientQueue": 64, "WaitObjectiveMs": 500 },
                "Tacacs": { "Enabled": true, "Port": 49, "TlsPort": 300, "IdleTimeoutSeconds": 120, "MaxConnections": 4096, "MaxSessionsPerConnection": 32 },
                "Eap": { "Enabled": true, "Methods": ["peap", "eap-tls"], "FragmentSize": 1024, "IdleSeconds": 30, "MinTlsVersion": "1.2", "MaxTlsVersion": "1.3" },
                "Admin": { "Listen": "127.0.0.1:0", "Drills": true, "Https": false },
                "Health": {
                  "SampleHz": 10, "WarmupSeconds": 5, "ScoreFunction": "weighted-mean", "Weights": { "cpu": 0.5, "latency": 2 },
                  "Thresholds": { "Failover": 0.25, "ConnectNew": 0.45, "ConnectReturning": 0.5 },
                  "ClassThresholds": { "gold": { "Failover": 0.1 } }, "Interfaces": ["eth0"], "AlertWebhook": "http://127.0.0.1:9000/alerts",
                  "ForecastHorizonSeconds": 5, "BreachSamples": 3, "BreachWindowSamples": 5, "LatencyObjectiveMs": 50
                },
                "Advisory": {
                  "Port": 1814, "Carrier": "udp", "ClientPort": 1815, "Address": "192.0.2.1", "PeerSecret": "s3cret",
                  "Peers": [{ "Address": "192.0.2.2", "AuthPort": 1812, "AdvisoryPort": 1814 }],
                  "Select": { "Strategy": "list", "Clients": ["core-sw"] }, "BudgetBackoff": 0.95, "PeerHealthIntervalMs": 250, "PeerSilentMs": 1000
                }
              }
            }
            """u8.ToArray();
        yield return """{ "Forewarn": { "AuthPort": "abc", "Listen": ["not-an-address"], "Health": { "SampleHz": 0 }, "Admin": { "Listen": "0.0.0.0:8443" } } }"""u8.ToArray();
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
