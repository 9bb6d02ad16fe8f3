using System.Net;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Relay;
using Forewarn.Server.Health;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Tests;

/// <summary>radclient/radtest → `forewarn relay` (127.0.90.9) → two Forewarn servers (127.0.90.1, .2), on loopback.</summary>
[Collection(nameof(Serial))]
public sealed class RelayTests : IAsyncLifetime
{
    private static readonly IPAddress Relay = IPAddress.Parse("127.0.90.9");
    // Free ports chosen once, so that a restarted server comes back where the relay and its peer expect it.
    private readonly int[] _auth = [FreePorts.Udp(IPAddress.Parse("127.0.90.1")), FreePorts.Udp(IPAddress.Parse("127.0.90.2"))];
    private readonly int[] _acct = [FreePorts.Udp(IPAddress.Parse("127.0.90.1")), FreePorts.Udp(IPAddress.Parse("127.0.90.2"))];
    private readonly int[] _advisory = [FreePorts.Udp(IPAddress.Parse("127.0.90.1")), FreePorts.Udp(IPAddress.Parse("127.0.90.2"))];
    private readonly int _relayAuth = FreePorts.Udp(Relay), _relayAcct = FreePorts.Udp(Relay), _relayAdvisory = FreePorts.Udp(Relay);
    private readonly int[] _tacacs = [FreePorts.Tcp(IPAddress.Parse("127.0.90.1")), FreePorts.Tcp(IPAddress.Parse("127.0.90.2"))];
    private readonly int _relayTacacs = FreePorts.Tcp(Relay);
    private readonly TestServer?[] _servers = new TestServer?[2];
    private IHost _relay = null!;
    private readonly string _relayData = Path.Combine(Path.GetTempPath(), "forewarn-relay-" + Guid.NewGuid().ToString("N")[..12]);

    private Dictionary<string, string?> ServerSettings(int index) => new()
    {
        ["Forewarn:Listen:0"] = $"127.0.90.{index + 1}",
        ["Forewarn:AuthPort"] = $"{_auth[index]}",
        ["Forewarn:AcctPort"] = $"{_acct[index]}",
        ["Forewarn:Advisory:Port"] = $"{_advisory[index]}",
        ["Forewarn:Tacacs:Port"] = $"{_tacacs[index]}",
        ["Forewarn:Advisory:PeerSecret"] = "cluster",
        ["Forewarn:Advisory:Peers:0:Address"] = $"127.0.90.{2 - index}",
        ["Forewarn:Advisory:Peers:0:AuthPort"] = $"{_auth[1 - index]}",
        ["Forewarn:Advisory:Peers:0:AdvisoryPort"] = $"{_advisory[1 - index]}",
        ["Forewarn:Advisory:ClientPort"] = $"{_relayAdvisory}",
        ["Forewarn:Health:Weights:cpu"] = "0",
        ["Forewarn:Health:Weights:processes"] = "0",
        ["Forewarn:Health:Weights:latency"] = "0",
        ["Forewarn:Health:WarmupSeconds"] = "0",
    };

    private async Task<TestServer> StartServerAsync(int index, string? dataDirectory = null)
    {
        var server = await TestServer.StartAsync(ServerSettings(index), dataDirectory);
        await server.AddClientAsync(new ClientRecord("relay", Relay.ToString(), "upstream-secret"));
        await server.AddUserAsync("alice", "s3cret", AuthMethods.All);
        await server.AddUserAsync("john", "secret", AuthMethods.MsChapV2);
        return server;
    }

    public async Task InitializeAsync()
    {
        _servers[0] = await StartServerAsync(0);
        _servers[1] = await StartServerAsync(1);
        Directory.CreateDirectory(_relayData);
        var overrides = new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = Relay.ToString(),
            ["Forewarn:AuthPort"] = $"{_relayAuth}",
            ["Forewarn:AcctPort"] = $"{_relayAcct}",
            ["Forewarn:Advisory:Enabled"] = "false",
            ["Forewarn:Relay:AdvisoryPort"] = $"{_relayAdvisory}",
            ["Forewarn:Relay:TimeoutSeconds"] = "1",
            ["Forewarn:Relay:Retries"] = "1",
            ["Forewarn:Relay:StatusServerSeconds"] = "0.5",
            ["Forewarn:Relay:SpoolRetrySeconds"] = "0.5",
            ["Forewarn:Tacacs:Port"] = $"{_relayTacacs}",
        };
        for (int i = 0; i < 2; i++)
        {
            overrides[$"Forewarn:Relay:Upstream:{i}:Address"] = $"127.0.90.{i + 1}";
            overrides[$"Forewarn:Relay:Upstream:{i}:AuthPort"] = $"{_auth[i]}";
            overrides[$"Forewarn:Relay:Upstream:{i}:AcctPort"] = $"{_acct[i]}";
            overrides[$"Forewarn:Relay:Upstream:{i}:AdvisoryPort"] = $"{_advisory[i]}";
            overrides[$"Forewarn:Relay:Upstream:{i}:Secret"] = "upstream-secret";
            overrides[$"Forewarn:Relay:Upstream:{i}:Priority"] = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            overrides[$"Forewarn:Relay:Upstream:{i}:TacacsPort"] = $"{_tacacs[i]}";
        }
        _relay = ServerHost.Build(_relayData, null, overrides, LogLevel.Warning, (services, configuration) => services.AddForewarnRelay(configuration));
        var store = _relay.Services.GetRequiredService<IForewarnStore>();
        await store.AddClientAsync(new ClientRecord("radclient", "127.0.0.1", "testing123"));
        await _relay.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _relay.StopAsync();
        _relay.Dispose();
        foreach (var server in _servers)
        {
            if (server is not null)
                await server.DisposeAsync();
        }
    }

    private Task<Peer.Result> RadTest(string method, string user, string password) =>
        Peer.RunAsync("radtest", ["-t", method, user, password, $"{Relay}:{_relayAuth}", "0", "testing123"]);

    private RelayStatus RelayStatus() => _relay.Services.GetRequiredService<IRelayStatusSource>().Status();

    [SkippableFact]
    public async Task Authentication_AndAccounting_PassThroughTheRelay()
    {
        foreach (var method in new[] { "pap", "chap", "mschap" })
            Assert.Contains("Received Access-Accept", (await RadTest(method, "alice", "s3cret")).Output, StringComparison.Ordinal);
        Assert.Contains("Received Access-Reject", (await RadTest("pap", "alice", "wrong")).Output, StringComparison.Ordinal);

        // MS-CHAPv2 with FreeRADIUS's vector: the authenticator response is exact, the MPPE keys re-hidden for radclient.
        var vector = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Paths.ConformanceFile("freeradius", "auth-crypto.json"))).RootElement.GetProperty("mschapv2")[0];
        // Message-Authenticator: radtest sent one, so the relay now requires it from this client (BlastRADIUS auto-learn).
        var request = $"User-Name = \"john\", Message-Authenticator = 0x00, MS-CHAP-Challenge = 0x{vector.GetProperty("ms_chap_challenge").GetString()}, MS-CHAP2-Response = 0x{vector.GetProperty("ms_chap2_response").GetString()}\n";
        await _servers[0]!.AddClientAsync(new ClientRecord("localhost", "127.0.0.1", "upstream-secret"));
        var direct = await Peer.RunAsync("radclient", ["-x", $"127.0.90.1:{_auth[0]}", "auth", "upstream-secret"], request);
        var relayed = await Peer.RunAsync("radclient", ["-x", $"{Relay}:{_relayAuth}", "auth", "testing123"], request);
        Assert.True(relayed.Output.Contains($"MS-CHAP2-Success = 0x{vector.GetProperty("expect_ms_chap2_success").GetString()}", StringComparison.Ordinal), relayed.ToString());
        // radclient reveals the keys with its own secret: the relay must have re-hidden them, not copied them.
        string Keys(string output) => string.Join("|", output.Split('\n').Where(l => l.Contains("MS-MPPE-", StringComparison.Ordinal) && l.Contains("Key", StringComparison.Ordinal)).Select(l => l.Trim()));
        Assert.Equal(Keys(direct.Output), Keys(relayed.Output));
        Assert.Contains("MS-MPPE-Recv-Key = 0x", relayed.Output, StringComparison.Ordinal);

        var acct = await Peer.RunAsync("radclient", [$"{Relay}:{_relayAcct}", "acct", "testing123"], "User-Name = \"alice\", Acct-Status-Type = Start, Acct-Session-Id = \"via-relay\"\n");
        Assert.True(acct.ExitCode == 0, acct.ToString());
        Assert.Contains(await _servers[0]!.Store.QueryAsync(new AccountingQuery(UserName: "alice")), r => r.SessionId == "via-relay" && r.ClientName == "relay");
    }

    [SkippableFact]
    public async Task Tacacs_PassesThroughTheRelay_AndAnUpstreamDrainMovesIt()
    {
        var endpoint = new IPEndPoint(Relay, _relayTacacs);
        await using (var device = await TacacsPeer.ConnectAsync(endpoint))
        {
            var pap = Assert.IsType<Protocol.Tacacs.AuthenReply>(await device.ExchangeAsync(TacacsPeer.Pap("alice", "s3cret"), 1, version: Protocol.Tacacs.TacacsHeader.VersionOne));
            Assert.Equal(Protocol.Tacacs.AuthenStatus.Pass, pap.Status);
        }
        // A conversation (ASCII) stays on one upstream session; authorization and accounting pass through.
        await using (var device = await TacacsPeer.ConnectAsync(endpoint))
        {
            Assert.Equal(Protocol.Tacacs.AuthenStatus.GetPass, Assert.IsType<Protocol.Tacacs.AuthenReply>(await device.ExchangeAsync(TacacsPeer.Ascii("alice"), 2, flags: Protocol.Tacacs.TacacsFlags.SingleConnect)).Status);
            Assert.Equal(Protocol.Tacacs.AuthenStatus.Fail, Assert.IsType<Protocol.Tacacs.AuthenReply>(await device.ExchangeAsync(TacacsPeer.Continue("wrong"), 2, sequence: 3)).Status);
            Assert.Equal(Protocol.Tacacs.AuthorStatus.PassAdd, Assert.IsType<Protocol.Tacacs.AuthorResponse>(await device.ExchangeAsync(TacacsPeer.Command("alice", "service=shell", "cmd="), 3)).Status);
            Assert.Equal(Protocol.Tacacs.AcctStatus.Success, Assert.IsType<Protocol.Tacacs.AcctReply>(await device.ExchangeAsync(TacacsPeer.Accounting(Protocol.Tacacs.AcctFlags.Start, "alice", "task_id=7", "service=shell"), 4)).Status);
        }
        Assert.Equal(1, _servers[0]!.Counters.Tacacs.AuthenticationPasses);
        Assert.Equal(1, _servers[0]!.Counters.Tacacs.AuthenticationFailures);
        Assert.Single(await _servers[0]!.Store.QueryAsync(new AccountingQuery(UserName: "alice")), r => r.Protocol == "tacacs" && r.ClientName == "relay");

        // The first upstream drains: it closes the relay's idle connections and refuses new ones; the next login goes to the second at once.
        _servers[0]!.Services.GetRequiredService<HealthMonitor>().Drain();
        await Task.Delay(500);
        await using (var device = await TacacsPeer.ConnectAsync(endpoint))
        {
            var moved = System.Diagnostics.Stopwatch.StartNew();
            var pap = Assert.IsType<Protocol.Tacacs.AuthenReply>(await device.ExchangeAsync(TacacsPeer.Pap("alice", "s3cret"), 5, version: Protocol.Tacacs.TacacsHeader.VersionOne));
            Assert.Equal(Protocol.Tacacs.AuthenStatus.Pass, pap.Status);
            Assert.True(moved.Elapsed < TimeSpan.FromSeconds(1), $"the relay waited {moved.Elapsed} for the drained server");
        }
        Assert.Equal(1, _servers[1]!.Counters.Tacacs.AuthenticationPasses);
    }

    /// <summary>
    /// EAP through the relay: eapol_test's PEAP-MSCHAPv2 (server 0's CA, the MPPE keys re-hidden for the
    /// device); then a conversation begun on server 0 finishes there after server 0 drains and the relay
    /// moves, while a new conversation goes to server 1.
    /// </summary>
    [SkippableFact]
    public async Task Eap_PassesThroughTheRelay_AndAConversationFinishesWhereItBegan()
    {
        Requires.Program("eapol_test");
        var config = Path.Combine(_relayData, "peap.conf");
        await File.WriteAllTextAsync(config, $$"""
            network={
                key_mgmt=WPA-EAP
                eap=PEAP
                identity="alice"
                anonymous_identity="anonymous"
                password="s3cret"
                phase2="auth=MSCHAPV2"
                ca_cert="{{Path.Combine(_servers[0]!.DataDirectory, "tls", "ca.pem")}}"
            }
            """);
        var peap = await Peer.RunAsync("eapol_test", ["-c", config, "-a", Relay.ToString(), "-p", $"{_relayAuth}", "-s", "testing123", "-t", "10"]);
        Assert.True(peap.ExitCode == 0, peap.ToString()[^Math.Min(3000, peap.ToString().Length)..]);
        Assert.Contains("MPPE keys OK: 1  mismatch: 0", peap.Output, StringComparison.Ordinal);

        using var device = new UdpPeer();
        var relay = new IPEndPoint(Relay, _relayAuth);
        long firstBefore = _servers[0]!.Counters.AccessAccepts, secondBefore = _servers[1]!.Counters.AccessAccepts;
        var challenge = await device.ExchangeAsync(relay, EapWire.EapRequest(1, EapWire.Identity(1, "alice"), "testing123"));
        Assert.Equal(Protocol.Radius.RadiusCode.AccessChallenge, (Protocol.Radius.RadiusCode)challenge![0]);

        _servers[0]!.Services.GetRequiredService<HealthMonitor>().Drain();
        for (int i = 0; i < 50 && !RelayStatus().Upstreams[0].Deferred; i++)
            await Task.Delay(20);
        Assert.True(RelayStatus().Upstreams[0].Deferred);

        Assert.Equal(Protocol.Radius.RadiusCode.AccessAccept, (Protocol.Radius.RadiusCode)(await FinishMd5Async(device, relay, challenge, 2))[0]);
        Assert.Equal(1, _servers[0]!.Counters.AccessAccepts - firstBefore);
        var fresh = await device.ExchangeAsync(relay, EapWire.EapRequest(3, EapWire.Identity(1, "alice"), "testing123"));
        Assert.Equal(Protocol.Radius.RadiusCode.AccessAccept, (Protocol.Radius.RadiusCode)(await FinishMd5Async(device, relay, fresh!, 4))[0]);
        Assert.Equal(1, _servers[1]!.Counters.AccessAccepts - secondBefore);
    }

    /// <summary>Answers a PEAP proposal with a NAK for EAP-MD5, then the MD5 challenge with alice's response.</summary>
    private static async Task<byte[]> FinishMd5Async(UdpPeer device, IPEndPoint relay, byte[] challenge, byte id)
    {
        var request = Protocol.Eap.EapPacket.Build(Protocol.Eap.EapCode.Response, EapWire.Attribute(challenge, Protocol.Radius.AttributeTypes.EapMessage)![1], Protocol.Eap.EapType.Nak, [Protocol.Eap.EapType.Md5]);
        var md5 = await device.ExchangeAsync(relay, EapWire.EapRequest(id, request, "testing123", EapWire.Attribute(challenge, Protocol.Radius.AttributeTypes.State)));
        var eap = EapWire.Attribute(md5!, Protocol.Radius.AttributeTypes.EapMessage)!;
        Assert.Equal(Protocol.Eap.EapType.Md5, eap[4]);
        byte identifier = eap[1];
        var hash = System.Security.Cryptography.MD5.HashData([identifier, .. "s3cret"u8.ToArray(), .. eap.AsSpan(6, 16).ToArray()]);
        var response = Protocol.Eap.EapPacket.Build(Protocol.Eap.EapCode.Response, identifier, Protocol.Eap.EapType.Md5, [16, .. hash]);
        return (await device.ExchangeAsync(relay, EapWire.EapRequest((byte)(id + 100), response, "testing123", EapWire.Attribute(md5!, Protocol.Radius.AttributeTypes.State))))!;
    }

    [SkippableFact]
    public async Task AnAdvisoryMovesTheRelaysTraffic_WithNoFailedRequest()
    {
        Assert.Contains("Received Access-Accept", (await RadTest("pap", "alice", "s3cret")).Output, StringComparison.Ordinal);
        long before = _servers[1]!.Counters.AccessAccepts;
        _servers[0]!.Services.GetRequiredService<HealthMonitor>().Drain();
        for (int i = 0; i < 50 && !RelayStatus().Upstreams[0].Deferred; i++)
            await Task.Delay(20);
        Assert.True(RelayStatus().Upstreams[0].Deferred);
        var lines = string.Concat(Enumerable.Range(0, 40).Select(i => $"User-Name = \"alice\", User-Password = \"s3cret\", Message-Authenticator = 0x00\n\n"));
        var burst = await Peer.RunAsync("radclient", ["-x", "-c", "1", "-p", "10", "-t", "2", "-r", "1", $"{Relay}:{_relayAuth}", "auth", "testing123"], lines.TrimEnd() + "\n");
        Assert.True(burst.ExitCode == 0, burst.ToString());
        Assert.Equal(40, _servers[1]!.Counters.AccessAccepts - before);
    }

    [SkippableFact]
    public async Task AKilledServer_IsLeftByTimeout_AndEveryServerDown_SpoolsAccountingDeliveredOnceInOrder()
    {
        // Server 1 dies without a word: each request misses its deadline there and is hedged to server 2,
        // which answers; after three misses in a row the relay suspects server 1 and goes to server 2 at once.
        var dataDirectory = _servers[0]!.DataDirectory;
        await _servers[0]!.DisposeAsync(keepData: true);
        _servers[0] = null;
        var started = DateTime.UtcNow;
        for (int i = 0; i < 3; i++)
            Assert.Contains("Received Access-Accept", (await RadTest("pap", "alice", "s3cret")).Output, StringComparison.Ordinal);
        // Well inside what the device itself would wait (radtest: 3 tries of 3 s each), not a measured figure.
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(8));
        Assert.True(RelayStatus().Upstreams[0].Suspected);
        Assert.False(RelayStatus().Upstreams[1].Suspected);

        // Now server 2 dies too: accounting is spooled (and acknowledged to the device only once on disk).
        await _servers[1]!.DisposeAsync();
        _servers[1] = null;
        for (int i = 1; i <= 3; i++)
        {
            var acct = await Peer.RunAsync("radclient", ["-t", "8", "-r", "1", $"{Relay}:{_relayAcct}", "acct", "testing123"],
                $"User-Name = \"alice\", Acct-Status-Type = Interim-Update, Acct-Session-Id = \"outage\", Acct-Session-Time = {i}\n");
            Assert.Contains("Received Accounting-Response", acct.Output, StringComparison.Ordinal);
        }
        Assert.Equal(3, RelayStatus().SpoolDepth);
        Assert.Equal(3, RelayStatus().Spooled);

        // Server 1 comes back (same data): the Status-Server watch sees it, the spool drains in order, once.
        _servers[0] = await StartServerAsync(0, dataDirectory);
        for (int i = 0; i < 100 && RelayStatus().SpoolDepth > 0; i++)
            await Task.Delay(100);
        Assert.Equal(0, RelayStatus().SpoolDepth);
        var records = (await _servers[0]!.Store.QueryAsync(new AccountingQuery(UserName: "alice"))).Where(r => r.SessionId == "outage").ToList();
        Assert.Equal(["Acct-Session-Time = 1", "Acct-Session-Time = 2", "Acct-Session-Time = 3"],
            records.Select(r => r.Attributes.Split('\n').Single(l => l.StartsWith("Acct-Session-Time", StringComparison.Ordinal))));
        Assert.All(records, r => Assert.Contains("Acct-Delay-Time = ", r.Attributes, StringComparison.Ordinal));
    }
}
