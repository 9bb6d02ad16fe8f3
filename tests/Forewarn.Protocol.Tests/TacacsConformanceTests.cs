using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Protocol.Tests;

/// <summary>
/// The TACACS+ codec against FreeRADIUS's TACACS+ test cases (../shared/conformance/freeradius/tacacs-cases.jsonl,
/// read in place): real packets from a pam_tacplus capture obfuscated with key "testing123", hand-built
/// ones in the clear, and malformed ones that must be rejected.
/// </summary>
public partial class TacacsConformanceTests
{
    private static readonly byte[] Key = "testing123"u8.ToArray();

    /// <summary>Where FreeRADIUS's re-encoding is not a byte-for-byte echo of the packet it decoded.</summary>
    private static readonly Dictionary<string, string> KnownDifferences = new()
    {
        // FreeRADIUS types start_time as a date and re-encodes it one octet shorter; the packet as sent is what we echo.
        ["base.txt:64"] = "FreeRADIUS re-types the start_time argument",
    };

    /// <summary><paramref name="OfPrevious"/>: the case's input is the previous case's output ("-").</summary>
    private sealed record Case(string File, int Line, string Cmd, string? Input, string Expect, bool ExpectIsError, bool OfPrevious);

    private static List<Case> Cases()
    {
        var path = Paths.ConformanceFile("freeradius", "tacacs-cases.jsonl");
        var cases = new List<Case>();
        foreach (var line in File.ReadLines(path))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            cases.Add(new Case(root.GetProperty("file").GetString()!, root.GetProperty("line").GetInt32(), root.GetProperty("cmd").GetString()!,
                root.GetProperty("input_resolved").GetString(), root.GetProperty("expect").GetString()!, root.GetProperty("expect_is_error").GetBoolean(),
                root.GetProperty("input").GetString() == "-"));
        }
        return cases;
    }

    private static byte[] Hex(string text) => Paths.Hex(text);

    private static string Encode(TacacsHeader header, TacacsBody body)
    {
        var buffer = new byte[TacacsHeader.Size + TacacsPacket.MaxBodyLength];
        int length = TacacsPacket.Encode(body, header.Version, header.Sequence, header.Flags | TacacsFlags.Unencrypted, header.SessionId, Key, buffer);
        return Convert.ToHexStringLower(buffer, 0, length);
    }

    [SkippableFact]
    public void EveryValidPacket_Decodes_AndReEncodesByteForByte()
    {
        var cases = Cases();
        var failures = new List<string>();
        int checkedRoundTrips = 0, decoded = 0;
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            if (c.Cmd != "decode-proto" || c.ExpectIsError || c.File.EndsWith(".ignore", StringComparison.Ordinal))
                continue;
            var packet = Hex(c.Input!);
            var error = TacacsPacket.TryDecode(packet, Key, out var header, out var body);
            if (error != TacacsError.None)
            {
                failures.Add($"{c.File}:{c.Line}: {error}");
                continue;
            }
            decoded++;
            foreach (var failure in FieldMismatches(c.Expect, header, body!))
                failures.Add($"{c.File}:{c.Line}: {failure}");
            // FreeRADIUS re-encodes what it decoded (in the clear): the next case, when it is that encoding.
            if (i + 1 < cases.Count && cases[i + 1] is { Cmd: "encode-proto", OfPrevious: true } next && next.File == c.File && next.Line > c.Line && !next.ExpectIsError)
            {
                var key = $"{next.File}:{next.Line}";
                var ours = Encode(header, body!);
                var theirs = Convert.ToHexStringLower(Hex(next.Expect));
                if (ours != theirs && !KnownDifferences.ContainsKey(key))
                    failures.Add($"{key}: encoded {ours}, FreeRADIUS {theirs}");
                checkedRoundTrips++;
            }
            // A packet in the clear re-encodes to itself.
            if ((header.Flags & TacacsFlags.Unencrypted) != 0 && Encode(header, body!) != Convert.ToHexStringLower(packet))
                failures.Add($"{c.File}:{c.Line}: does not re-encode to itself");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(decoded >= 25 && checkedRoundTrips >= 5, $"{decoded} decoded, {checkedRoundTrips} compared with FreeRADIUS's encoding");
    }

    [SkippableFact]
    public void EveryMalformedPacket_IsRejected_NeverThrows()
    {
        var failures = new List<string>();
        int rejected = 0;
        foreach (var c in Cases().Where(c => c.Cmd == "decode-proto" && c.ExpectIsError))
        {
            var error = TacacsPacket.TryDecode(Hex(c.Input!), Key, out _, out _);
            if (error == TacacsError.None)
                failures.Add($"{c.File}:{c.Line}: accepted, FreeRADIUS says {c.Expect}");
            else
                rejected++;
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(rejected >= 30, $"only {rejected} malformed cases found");
    }

    /// <summary>
    /// ansible's tacacs_plus client (../shared/conformance/tacacs-misc): its bodies decode, and the
    /// obfuscation vector matches. Its reply_streams_full_packets are left out: they number a server's
    /// reply 1, which RFC 8907 reserves for the client's START (upstream's tests never check it).
    /// </summary>
    [SkippableFact]
    public void AnsibleTacacsPlus_BodiesDecode_AndTheObfuscationVectorMatches()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Paths.ConformanceFile("tacacs-misc", "ansible-tacacs_plus.json")));
        var root = json.RootElement;
        var vector = root.GetProperty("obfuscation_roundtrip");
        Assert.Equal(TacacsError.None, TacacsPacket.TryReadHeader(Hex(vector.GetProperty("header_hex").GetString()!), out var header));
        var body = Hex(vector.GetProperty("body_hex").GetString()!);
        TacacsPacket.Obfuscate(body, header, Encoding.UTF8.GetBytes(vector.GetProperty("secret").GetString()!));
        Assert.Equal(vector.GetProperty("obfuscated_body_hex_computed_here").GetString(), Convert.ToHexStringLower(body));

        var session = new TacacsHeader(TacacsHeader.VersionDefault, TacacsType.Authentication, 1, TacacsFlags.Unencrypted, 12345, 0);
        foreach (var start in root.GetProperty("authen_start_bodies").EnumerateArray())
        {
            Assert.Equal(TacacsError.None, TacacsBody.TryDecode(session, Hex(start.GetProperty("body_hex").GetString()!), out var decoded));
            Assert.Equal(start.GetProperty("user").GetString(), TacacsBody.Text(((AuthenStart)decoded!).User));
        }
        foreach (var next in root.GetProperty("authen_continue_bodies").EnumerateArray())
        {
            Assert.Equal(TacacsError.None, TacacsBody.TryDecode(session with { Sequence = 3 }, Hex(next.GetProperty("body_hex").GetString()!), out var decoded));
            Assert.Equal(next.GetProperty("user_msg").GetString(), TacacsBody.Text(((AuthenContinue)decoded!).UserMessage));
        }
        foreach (var reply in root.GetProperty("authen_reply_bodies").EnumerateArray())
        {
            Assert.Equal(TacacsError.None, TacacsBody.TryDecode(session with { Sequence = 2 }, Hex(reply.GetProperty("body_hex").GetString()!), out var decoded));
            var status = reply.GetProperty("status").GetString()!;
            Assert.Equal(int.Parse(status[(status.IndexOf('(') + 1)..^1], System.Globalization.CultureInfo.InvariantCulture), (int)((AuthenReply)decoded!).Status);
            if (reply.TryGetProperty("server_msg", out var message))
                Assert.Equal(message.GetString(), TacacsBody.Text(((AuthenReply)decoded).ServerMessage));
        }
    }

    [Fact]
    public void EveryTruncationOfAValidPacket_IsAnErrorNotAnException()
    {
        var request = new AuthorRequest(AuthenMethod.TacacsPlus, 15, AuthenType.Ascii, AuthenService.Login, "admin"u8.ToArray(), "tty0"u8.ToArray(), "10.0.0.1"u8.ToArray(),
            ["service=shell"u8.ToArray(), "cmd=show"u8.ToArray(), "cmd-arg=running-config"u8.ToArray()]);
        var buffer = new byte[1024];
        int length = TacacsPacket.Encode(request, TacacsHeader.VersionDefault, 1, TacacsFlags.None, 0xdeadbeef, Key, buffer);
        Assert.Equal(TacacsError.None, TacacsPacket.TryDecode(buffer.AsSpan(0, length), Key, out _, out var body));
        Assert.Equal(["service=shell", "cmd=show", "cmd-arg=running-config"], ((AuthorRequest)body!).Arguments.Select(TacacsBody.Text));
        for (int cut = 0; cut < length; cut++)
            Assert.NotEqual(TacacsError.None, TacacsPacket.TryDecode(buffer.AsSpan(0, cut), Key, out _, out _));
        // With a wrong key the body is noise: an error, or (rarely) a body that happens to parse, never an exception.
        _ = TacacsPacket.TryDecode(buffer.AsSpan(0, length), "wrong key"u8, out _, out _);
    }

    [GeneratedRegex("""(?<name>[A-Za-z-]+) = "(?<value>(?:[^"\\]|\\.)*)"(?:,|$)""")]
    private static partial Regex StringField();

    /// <summary>The text fields FreeRADIUS printed that have a plain counterpart in our bodies.</summary>
    private static IEnumerable<string> FieldMismatches(string expect, TacacsHeader header, TacacsBody body)
    {
        var ours = body switch
        {
            AuthenStart s => new Dictionary<string, byte[]> { ["User-Name"] = s.User, ["Client-Port"] = s.Port, ["Remote-Address"] = s.RemoteAddress },
            AuthenReply r => new() { ["Server-Message"] = r.ServerMessage },
            AuthenContinue k => new() { ["User-Message"] = k.UserMessage },
            AuthorRequest a => new() { ["User-Name"] = a.User, ["Client-Port"] = a.Port, ["Remote-Address"] = a.RemoteAddress },
            AuthorResponse a => new() { ["Server-Message"] = a.ServerMessage },
            AcctRequest a => new() { ["User-Name"] = a.User, ["Client-Port"] = a.Port, ["Remote-Address"] = a.RemoteAddress },
            AcctReply a => new() { ["Server-Message"] = a.ServerMessage },
            _ => [],
        };
        foreach (Match match in StringField().Matches(expect))
        {
            var name = match.Groups["name"].Value;
            if (ours.TryGetValue(name, out var value) && Encoding.UTF8.GetString(value) != Regex.Unescape(match.Groups["value"].Value))
                yield return $"{name}: ours \"{Encoding.UTF8.GetString(value)}\", FreeRADIUS \"{match.Groups["value"].Value}\"";
        }
        if (!expect.Contains($"Session-Id = {header.SessionId},", StringComparison.Ordinal) || !expect.Contains($"Sequence-Number = {header.Sequence},", StringComparison.Ordinal))
            yield return "header fields differ";
    }
}
