using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Forewarn.Core.Aaa.Eap;
using Forewarn.Core.Store;
using Forewarn.Protocol.Eap;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>One server for the eapol_test cases: users bob and bob@example.org (password bob), a client certificate for bob@example.org from the data directory's CA.</summary>
public sealed class EapServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "forewarn-eap-" + Guid.NewGuid().ToString("N")[..12]);
    public string CaFile => Path.Combine(Server.DataDirectory, "tls", "ca.pem");
    public string ClientCertificate { get; private set; } = "";
    public string ClientKey { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Folder);
        Server = await TestServer.StartAsync(new() { ["Forewarn:Eap:MaxConversationsPerClient"] = "2000" });
        await Server.AddUserAsync("bob", "bob");
        await Server.AddUserAsync("bob@example.org", "bob");
        await Server.AddUserAsync("carol", "carol", AuthMethods.Passwords | AuthMethods.EapMsChapV2);
        (ClientCertificate, ClientKey) = new CertificateAuthority(Server.DataDirectory).IssueClient("bob@example.org");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>
/// EAP through real supplicants: eapol_test (wpa_supplicant's test tool) runs FreeRADIUS's own CI
/// configurations, read in place and adapted only by certificate paths (and, for TLS 1.3, by the
/// phase1 switch wpa_supplicant 2.10 needs to offer it); the MPPE keys it derives must match the
/// server's. The failures must fail.
/// </summary>
[Collection(nameof(Serial))]
public sealed partial class EapTests(EapServerFixture fixture) : IClassFixture<EapServerFixture>
{
    private static readonly string[] TlsBased =
        ["peap-mschapv2", "peap-eap-gtc", "peap-client-mschapv2", "tls", "ttls-pap", "ttls-chap", "ttls-mschapv2", "ttls-eap-mschapv2", "ttls-eap-gtc", "ttls-client-eap-mschapv2", "ttls-client-eap-tls"];

    public static TheoryData<string, string> Cases()
    {
        var cases = new TheoryData<string, string> { { "md5", "" }, { "gtc", "" }, { "mschapv2", "" } };
        foreach (var name in TlsBased)
        {
            cases.Add(name, "1.2");
            cases.Add(name, "1.3");
        }
        return cases;
    }

    /// <summary>The configuration from ../shared with this server's CA and client certificate, and TLS 1.3 offered or not.</summary>
    private string Adapt(string name, string tls, string? caFile = null, string? password = null)
    {
        var text = File.ReadAllText(Paths.ConformanceFile("freeradius", "eapol_test", name + ".conf"));
        text = CertificatePath().Replace(text, m => $"{m.Groups[1].Value}=\"{m.Groups[1].Value switch
        {
            "ca_cert" or "ca_cert2" => caFile ?? fixture.CaFile,
            "client_cert" or "client_cert2" => fixture.ClientCertificate,
            _ => fixture.ClientKey,
        }}\"");
        // The TLS-based methods check the server against the CA: the configurations that leave ca_cert out get it.
        if (TlsBased.Contains(name) && !text.Contains("ca_cert=", StringComparison.Ordinal))
            text = EapLine().Replace(text, $"\tca_cert=\"{caFile ?? fixture.CaFile}\"\n$0", 1);
        if (tls.Length > 0)
        {
            string flag = tls == "1.3" ? "tls_disable_tlsv1_3=0" : "tls_disable_tlsv1_3=1";
            text = text.Contains("phase1=\"", StringComparison.Ordinal)
                ? text.Replace("phase1=\"", $"phase1=\"{flag} ", StringComparison.Ordinal)
                : EapLine().Replace(text, $"\tphase1=\"{flag}\"\n$0", 1);
        }
        if (password is not null)
            text = text.Replace("password=\"bob\"", $"password=\"{password}\"", StringComparison.Ordinal);
        var path = Path.Combine(fixture.Folder, $"{name}-{tls}-{Guid.NewGuid():N}.conf");
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>The network block's eap= line (not phase2's autheap=).</summary>
    [GeneratedRegex(@"^\s*eap=", RegexOptions.Multiline)]
    private static partial Regex EapLine();

    [GeneratedRegex("(ca_cert2?|client_cert2?|private_key2?)=\"[^\"]*\"")]
    private static partial Regex CertificatePath();

    private static bool HasKeys(string name) => name is not ("md5" or "gtc") && !name.StartsWith("fail-", StringComparison.Ordinal);

    private Task<Peer.Result> EapolTestAsync(string config, bool keys, IPEndPoint? server = null, string secret = "testing123") =>
        Peer.RunAsync("eapol_test", ["-c", config, "-a", "127.0.0.1", "-p", (server ?? fixture.Server.Auth).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", secret, "-t", "10", .. keys ? Array.Empty<string>() : ["-n"]]);

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public async Task EapolTest_AuthenticatesEveryMethod_AndDerivesTheSameKeys(string name, string tls)
    {
        Requires.Program("eapol_test");
        var result = await EapolTestAsync(Adapt(name, tls), HasKeys(name));
        Assert.True(result.ExitCode == 0, result.ToString()[^Math.Min(4000, result.ToString().Length)..]);
        Assert.Contains("SUCCESS", result.Output, StringComparison.Ordinal);
        if (HasKeys(name))
            Assert.Contains("MPPE keys OK: 1  mismatch: 0", result.Output, StringComparison.Ordinal);
        if (tls.Length > 0)
            Assert.Contains($"TLS version TLSv{tls}", result.Output, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("fail-psk")]
    [InlineData("fail-aka-nak")]
    public async Task EapolTest_FailCases_AreRejected(string name)
    {
        Requires.Program("eapol_test");
        var result = await EapolTestAsync(Adapt(name, ""), keys: false);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("FAILURE", result.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task AWrongPassword_AWrongCa_AForeignClientCertificate_AndAMethodTheUserMayNotUse_AllFail()
    {
        Requires.Program("eapol_test");
        Assert.NotEqual(0, (await EapolTestAsync(Adapt("peap-mschapv2", "1.2", password: "wrong"), keys: true)).ExitCode);
        Assert.NotEqual(0, (await EapolTestAsync(Adapt("ttls-pap", "1.3", password: "wrong"), keys: true)).ExitCode);

        // The supplicant checks the server against a CA that did not sign it, and gives up.
        var other = new CertificateAuthority(Path.Combine(fixture.Folder, "other-" + Guid.NewGuid().ToString("N")));
        other.EnsureServer("other");
        Assert.NotEqual(0, (await EapolTestAsync(Adapt("peap-mschapv2", "1.2", caFile: other.CaFile), keys: true)).ExitCode);

        // A client certificate from another CA: EAP-TLS refuses it.
        var foreign = new CertificateAuthority(Path.Combine(fixture.Folder, "foreign-" + Guid.NewGuid().ToString("N")));
        foreign.EnsureServer("foreign");
        var (certificate, key) = foreign.IssueClient("bob@example.org");
        var config = Adapt("tls", "1.2");
        File.WriteAllText(config, File.ReadAllText(config).Replace(fixture.ClientCertificate, certificate, StringComparison.Ordinal).Replace(fixture.ClientKey, key, StringComparison.Ordinal));
        Assert.NotEqual(0, (await EapolTestAsync(config, keys: true)).ExitCode);

        // carol may use EAP-MSCHAPv2 alone but not inside PEAP.
        var carol = File.ReadAllText(Adapt("peap-mschapv2", "1.2")).Replace("bob@example.org", "carol", StringComparison.Ordinal).Replace("\"bob\"", "\"carol\"", StringComparison.Ordinal);
        var carolFile = Path.Combine(fixture.Folder, "carol-peap.conf");
        File.WriteAllText(carolFile, carol);
        Assert.NotEqual(0, (await EapolTestAsync(carolFile, keys: true)).ExitCode);
        var alone = File.ReadAllText(Adapt("mschapv2", "")).Replace("bob@example.org", "carol", StringComparison.Ordinal).Replace("\"bob\"", "\"carol\"", StringComparison.Ordinal);
        File.WriteAllText(carolFile, alone);
        Assert.Equal(0, (await EapolTestAsync(carolFile, keys: true)).ExitCode);
    }

    /// <summary>
    /// RFC 3579 on the wire: a retransmitted Access-Request gets the same Access-Challenge; a State the
    /// server never gave, or gave to another client, ends in Access-Reject; EAP-Message without
    /// Message-Authenticator is dropped.
    /// </summary>
    [SkippableFact]
    public async Task Retransmissions_ForeignStates_AndMissingMessageAuthenticators_AreHandledAsRfc3579Says()
    {
        await fixture.Server.AddClientAsync(new ClientRecord("other-nas", "127.0.0.23", "other-secret"));
        await Task.Delay(1500);
        using var peer = new UdpPeer();
        var request = EapWire.EapRequest(7, EapWire.Identity(1, "bob@example.org"), "testing123");
        var first = await peer.ExchangeAsync(fixture.Server.Auth, request);
        var again = await peer.ExchangeAsync(fixture.Server.Auth, request);
        Assert.NotNull(first);
        Assert.Equal(RadiusCode.AccessChallenge, (RadiusCode)first![0]);
        Assert.Equal(first, again);
        var state = EapWire.Attribute(first, AttributeTypes.State);
        Assert.Equal(16, state!.Length);

        // The State belongs to localhost: another client presenting it is refused.
        using var other = new UdpPeer("127.0.0.23");
        var stolen = await other.ExchangeAsync(fixture.Server.Auth, EapWire.EapRequest(8, EapPacket.Build(EapCode.Response, 2, EapType.Nak, [EapType.Md5]), "other-secret", state));
        Assert.Equal(RadiusCode.AccessReject, (RadiusCode)stolen![0]);
        var invented = await peer.ExchangeAsync(fixture.Server.Auth, EapWire.EapRequest(9, EapPacket.Build(EapCode.Response, 2, EapType.Nak, [EapType.Md5]), "testing123", RandomNumberGenerator.GetBytes(16)));
        Assert.Equal(RadiusCode.AccessReject, (RadiusCode)invented![0]);
        Assert.Equal((byte)EapCode.Failure, EapWire.Attribute(invented, AttributeTypes.EapMessage)![0]);

        Assert.Null(await peer.ExchangeAsync(fixture.Server.Auth, EapWire.EapRequest(10, EapWire.Identity(1, "bob"), "testing123", messageAuthenticator: false), timeoutMs: 1000));
    }

    /// <summary>
    /// 100,000 EAP starts from one NAS, as fast as it can send them, keep the conversation store at its
    /// per-client bound (bare starts displace bare starts) and memory bounded, while a real PEAP login
    /// from the same NAS succeeds in the middle of the flood.
    /// </summary>
    [SkippableFact]
    public async Task AFloodOfEapStarts_StaysBounded_AndRealLoginsStillSucceed()
    {
        Requires.Program("eapol_test");
        var service = fixture.Server.Services.GetRequiredService<EapService>();
        GC.Collect();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var config = Adapt("peap-mschapv2", "1.2");
        using var cts = new CancellationTokenSource();
        int sent = 0;
        var flood = Task.Run(async () =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var drain = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!cts.IsCancellationRequested)
                {
                    try
                    {
                        await socket.ReceiveAsync(buffer, cts.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            });
            for (int i = 0; i < 100_000; i++)
            {
                await socket.SendToAsync(EapWire.EapRequest((byte)i, EapWire.Identity((byte)i, $"flood{i}@example.org"), "testing123"), fixture.Server.Auth);
                sent++;
                if (i % 64 == 0)
                    await Task.Delay(1);
            }
        });
        // A real login in the middle of it.
        while (Volatile.Read(ref sent) < 20_000)
            await Task.Delay(20);
        var login = await EapolTestAsync(config, keys: true);
        await flood;
        await Task.Delay(500);
        await cts.CancelAsync();
        Assert.True(login.ExitCode == 0, login.ToString()[^Math.Min(3000, login.ToString().Length)..]);
        Assert.True(service.Conversations.CountOf("localhost") <= 2000, $"{service.Conversations.CountOf("localhost")} conversations held");
        // Most of the flood reached the store (the rest was dropped by a full socket buffer or queue) and displaced bare starts.
        Assert.True(service.Conversations.Displaced > 50_000, $"{service.Conversations.Displaced} displaced");
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 64 * 1024 * 1024, $"the heap grew by {(after - before) / 1024 / 1024} MiB");
    }
    /// <summary>
    /// Memory per conversation in progress: 2,000 PEAP conversations stopped just after the server's
    /// first TLS flight (the TLS state and the unsent fragments held) cost at most 16 KiB each, measured
    /// as the heap's growth over the last 1,600 of them. The ClientHello is a real one, from .NET's TLS
    /// client, replayed into each conversation.
    /// </summary>
    [SkippableFact]
    public async Task AConversationInProgress_HoldsAtMost16KiB()
    {
        var clientHello = await EapWire.ClientHelloAsync();
        // A NAS of its own: the conversations left in progress count against its limit, not localhost's.
        await fixture.Server.AddClientAsync(new ClientRecord("memory-nas", "127.0.0.24", "testing123"));
        await Task.Delay(1500);
        using var peer = new UdpPeer("127.0.0.24");
        const int Conversations = 2000;
        var states = new List<byte[]>(Conversations);
        for (int i = 0; i < Conversations; i++)
        {
            var start = await peer.ExchangeAsync(fixture.Server.Auth, EapWire.EapRequest((byte)i, EapWire.Identity(1, $"anonymous{i}"), "testing123"));
            states.Add(EapWire.Attribute(start!, AttributeTypes.State)!);
        }
        // The first few hundred flights pay once for what every later one shares (BouncyCastle's tables,
        // pooled buffers, the code path's statics): the cost per conversation is the slope after them.
        const int Warm = 400;
        long before = 0;
        for (int i = 0; i < Conversations; i++)
        {
            if (i == Warm)
                before = await SettledHeapAsync();
            var hello = EapPacket.Build(EapCode.Response, 2, EapType.Peap, [0, .. clientHello]);
            var flight = await peer.ExchangeAsync(fixture.Server.Auth, EapWire.EapRequest((byte)i, hello, "testing123", states[i]));
            Assert.Equal(RadiusCode.AccessChallenge, (RadiusCode)flight![0]);
            Assert.Equal(EapTlsFraming.LengthIncluded | EapTlsFraming.MoreFragments, EapWire.Attribute(flight, AttributeTypes.EapMessage)![5] & 0xC0);
        }
        long after = await SettledHeapAsync();
        double perConversation = (after - before) / (double)(Conversations - Warm);
        Assert.True(perConversation <= 16 * 1024, $"{perConversation:N0} octets per conversation in progress");
    }

    /// <summary>
    /// The live heap once the server's work behind the answers (log lines queued to the sink, the
    /// duplicate cache's bookkeeping) has settled: the least of several full collections a little
    /// apart, so what is measured is what the conversations hold, not what happened to be in flight.
    /// </summary>
    private static async Task<long> SettledHeapAsync()
    {
        long least = long.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            await Task.Delay(200);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            least = Math.Min(least, GC.GetTotalMemory(forceFullCollection: true));
        }
        return least;
    }

}

/// <summary>EAP inside RADIUS packets, built and read by hand for the wire-level tests.</summary>
internal static class EapWire
{
    public static byte[] Identity(byte identifier, string name) => EapPacket.Build(EapCode.Response, identifier, EapType.Identity, Encoding.UTF8.GetBytes(name));

    public static byte[] EapRequest(byte id, byte[] eap, string secret, byte[]? state = null, bool messageAuthenticator = true)
    {
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccessRequest, id, UdpPeer.RandomAuthenticator());
        if (messageAuthenticator)
            writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, "bob");
        writer.AddSplit(AttributeTypes.EapMessage, eap);
        if (state is not null)
            writer.Add(AttributeTypes.State, state);
        return buffer.AsSpan(0, writer.Complete(Encoding.UTF8.GetBytes(secret))).ToArray();
    }

    /// <summary>A ClientHello from .NET's own TLS client (TLS 1.2 and 1.3 offered), captured as it writes it.</summary>
    public static async Task<byte[]> ClientHelloAsync()
    {
        var capture = new CaptureStream();
        // No server ever answers: the handshake stops after the ClientHello, so no certificate is ever checked.
        using var tls = new System.Net.Security.SslStream(capture, leaveInnerStreamOpen: true);
        var handshake = tls.AuthenticateAsClientAsync("forewarn");
        var hello = await capture.FirstWrite.Task.WaitAsync(TimeSpan.FromSeconds(10));
        capture.Close();
        try
        {
            await handshake;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
        }
        return hello;
    }

    /// <summary>Takes the first write and then reads nothing: the handshake stops after the ClientHello.</summary>
    private sealed class CaptureStream : Stream
    {
        public TaskCompletionSource<byte[]> FirstWrite { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _closed.Task.WaitAsync(cancellationToken);
            return 0;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => FirstWrite.TrySetResult(buffer.AsSpan(offset, count).ToArray());
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            FirstWrite.TrySetResult(buffer.ToArray());
            return ValueTask.CompletedTask;
        }
        public override void Close()
        {
            _closed.TrySetResult();
            base.Close();
        }
    }

    public static byte[]? Attribute(byte[] packet, byte type)
    {
        RadiusPacket.TryParse(packet, out var parsed);
        return parsed.TryGetAttribute(type, out var value) ? value.ToArray() : null;
    }
}

/// <summary>The README's first steps with the real command: serve, add a user, and eapol_test with the data directory's CA; a client certificate from <c>forewarn certs client</c> for EAP-TLS.</summary>
[Collection(nameof(Serial))]
public sealed class EapProcessTests : IDisposable
{
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-eap-process-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Task<Peer.Result> Run(params string[] arguments) => Peer.RunAsync("/usr/bin/env", ["dotnet", Program, .. arguments]);

    [SkippableFact]
    public async Task ServeMakesItsCa_AndPeapAndEapTlsWorkWithIt()
    {
        Requires.Program("eapol_test");
        var added = await Peer.RunAsync("/usr/bin/env", ["dotnet", Program, "users", "add", "alice", "--password", "-", "--data", _data], input: "Secret-1\n");
        Assert.True(added.ExitCode == 0, added.ToString());
        await using var server = await ServerProcess.StartAsync(_data);
        var ca = Path.Combine(_data, "tls", "ca.pem");
        Assert.True(File.Exists(ca));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_data, "tls", "server.key")));
        var certs = await Run("certs", "client", "alice", "--data", _data);
        Assert.True(certs.ExitCode == 0, certs.ToString());

        var peap = Path.Combine(_data, "peap-mschapv2.conf");
        await File.WriteAllTextAsync(peap, $"network={{\n\tkey_mgmt=WPA-EAP\n\teap=PEAP\n\tidentity=\"alice\"\n\tpassword=\"Secret-1\"\n\tphase2=\"auth=MSCHAPV2\"\n\tca_cert=\"{ca}\"\n}}\n");
        var tls = Path.Combine(_data, "tls.conf");
        await File.WriteAllTextAsync(tls, $"network={{\n\tkey_mgmt=WPA-EAP\n\teap=TLS\n\tidentity=\"alice\"\n\tca_cert=\"{ca}\"\n" +
            $"\tclient_cert=\"{Path.Combine(_data, "tls", "clients", "alice.pem")}\"\n\tprivate_key=\"{Path.Combine(_data, "tls", "clients", "alice.key")}\"\n}}\n");
        foreach (var config in new[] { peap, tls })
        {
            var result = await Peer.RunAsync("eapol_test", ["-c", config, "-a", "127.0.0.1", "-p", server.AuthPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-s", "testing123", "-t", "10"]);
            Assert.True(result.ExitCode == 0, result.ToString()[^Math.Min(3000, result.ToString().Length)..]);
            Assert.Contains("MPPE keys OK: 1  mismatch: 0", result.Output, StringComparison.Ordinal);
        }
    }
}
