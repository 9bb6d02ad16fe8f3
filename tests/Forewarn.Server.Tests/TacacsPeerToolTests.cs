using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Forewarn.Core.Store;
using Forewarn.Protocol.Tacacs;
using Forewarn.Server.Tacacs;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>TACACS+ seen by independent tools: tshark's dissector decodes every reply; openssl and .NET's TLS client check RFC 9887.</summary>
public sealed class TacacsPeerToolTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "forewarn-tacacs-tools-" + Guid.NewGuid().ToString("N")[..12]);

    public TacacsPeerToolTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [SkippableFact]
    public async Task Tshark_DecodesEveryReplyForewarnSends_WithTheKey_AndNoMalformedPacket()
    {
        Requires.Program("tshark");
        Requires.Root("tshark captures on the loopback interface");
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("ivan", "pw");
        await server.AddClientAsync(new ClientRecord("capture-device", "127.0.0.7", "testing123"));
        await server.Store.SetCommandSetAsync(new CommandSet("show", [new CommandRule(true, "^show ")]));
        await server.Store.SetGroupAsync(new GroupRecord("ops", [], [], Arguments: [new TacacsArgument("shell", "priv-lvl", "15")], CommandSets: [new CommandSetBinding("show")]));
        await server.Store.UpdateUserAsync((await server.Store.FindUserAsync("ivan"))! with { Group = "ops" });
        await Task.Delay(1500);
        int port = server.Services.GetRequiredService<TacacsServer>().EndpointOf(tls: false)!.Port;
        var device = IPAddress.Parse("127.0.0.7");
        var capture = Path.Combine(_dir, "tacacs.pcap");
        var info = new ProcessStartInfo("tshark") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-i", "lo", "-f", $"tcp port {port} and host 127.0.0.7", "-w", capture })
            info.ArgumentList.Add(a);
        using var tshark = Process.Start(info)!;
        // Capturing once it says so on standard error.
        var started = new TaskCompletionSource();
        tshark.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("Capturing on", StringComparison.Ordinal) == true) started.TrySetResult(); };
        tshark.BeginErrorReadLine();
        await started.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await Task.Delay(500);

        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        int replies = 0;
        await using (var peer = await TacacsPeer.ConnectAsync(endpoint, from: device))
        {
            Assert.Equal(AuthenStatus.GetUser, Assert.IsType<AuthenReply>(await peer.ExchangeAsync(TacacsPeer.Ascii(), 10, flags: TacacsFlags.SingleConnect)).Status);
            Assert.Equal(AuthenStatus.GetPass, Assert.IsType<AuthenReply>(await peer.ExchangeAsync(TacacsPeer.Continue("ivan"), 10, sequence: 3)).Status);
            Assert.Equal(AuthenStatus.Pass, Assert.IsType<AuthenReply>(await peer.ExchangeAsync(TacacsPeer.Continue("pw"), 10, sequence: 5)).Status);
            Assert.Equal(AuthenStatus.Fail, Assert.IsType<AuthenReply>(await peer.ExchangeAsync(TacacsPeer.Pap("ivan", "wrong"), 11, version: TacacsHeader.VersionOne)).Status);
            Assert.Equal(AuthorStatus.PassAdd, Assert.IsType<AuthorResponse>(await peer.ExchangeAsync(TacacsPeer.Command("ivan", "service=shell", "cmd="), 12)).Status);
            Assert.Equal(AuthorStatus.PassReplace, Assert.IsType<AuthorResponse>(await peer.ExchangeAsync(TacacsPeer.Command("ivan", "service=shell", "cmd=", "priv-lvl=1"), 13)).Status);
            Assert.Equal(AuthorStatus.Fail, Assert.IsType<AuthorResponse>(await peer.ExchangeAsync(TacacsPeer.Command("ivan", "service=shell", "cmd=reload", "cmd-arg=<cr>"), 14)).Status);
            Assert.Equal(AcctStatus.Success, Assert.IsType<AcctReply>(await peer.ExchangeAsync(TacacsPeer.Accounting(AcctFlags.Start, "ivan", "task_id=1", "service=shell"), 15)).Status);
            Assert.Equal(AcctStatus.Error, Assert.IsType<AcctReply>(await peer.ExchangeAsync(TacacsPeer.Accounting(AcctFlags.None, "ivan", "task_id=2"), 16)).Status);
            Assert.Equal(AuthenStatus.Error, Assert.IsType<AuthenReply>(await peer.ExchangeAsync(TacacsPeer.Continue("x"), 17, sequence: 3)).Status);
            replies = 10;
        }
        await Task.Delay(1000);
        await Peer.RunAsync("kill", ["-INT", tshark.Id.ToString(CultureInfo.InvariantCulture)]);
        await tshark.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));

        var decoded = await Peer.RunAsync("tshark", ["-r", capture, "-d", $"tcp.port=={port},tacplus", "-o", "tacplus.key:testing123", "-V", "-Y", "tacplus && ip.dst == 127.0.0.7"]);
        Assert.True(decoded.ExitCode == 0, decoded.ToString());
        var text = decoded.Output;
        Assert.DoesNotContain("Malformed", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Expert Info (Error", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Expert Info (Warning", text, StringComparison.Ordinal);
        Assert.Equal(replies, CountOf(text, "Decrypted Reply"));
        string[] expected = ["Send Username", "Send Password", "Authentication Passed", "Authentication Failed", "PASS_ADD", "PASS_REPL", "FAIL",
            // The dissector shows an authorization reply's message by its length only ("Command authorization failed": 28).
            "priv-lvl=15", "Server Msg length: 28", "Success"];
        Assert.Equal([], expected.Where(e => !text.Contains(e, StringComparison.Ordinal)));
    }

    private static int CountOf(string text, string what)
    {
        int count = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    private sealed record Pki(string CaFile, X509Certificate2 Ca, string ServerFile, string ServerKey, X509Certificate2 Client, X509Certificate2 Foreign, string ClientFile, string ClientKey);

    /// <summary>A CA, a server certificate for 127.0.0.1, a device certificate from the CA, and one from another CA.</summary>
    private Pki MakePki()
    {
        static X509Certificate2 Authority(string name)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        }
        static X509Certificate2 Leaf(X509Certificate2 issuer, string name, bool server, IPAddress? ip)
        {
            var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
            if (ip is not null)
            {
                var san = new SubjectAlternativeNameBuilder();
                san.AddIpAddress(ip);
                request.CertificateExtensions.Add(san.Build());
            }
            var serial = RandomNumberGenerator.GetBytes(8);
            using var cert = request.Create(issuer, DateTimeOffset.UtcNow.AddDays(-1), issuer.NotAfter.AddDays(-1), serial);
            return cert.CopyWithPrivateKey(key);
        }
        var ca = Authority("Forewarn test CA");
        var other = Authority("Someone else's CA");
        var server = Leaf(ca, "forewarn", true, IPAddress.Loopback);
        var client = Leaf(ca, "switch-1", false, IPAddress.Loopback);
        var foreign = Leaf(other, "intruder", false, IPAddress.Loopback);
        string Write(string name, string pem)
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllText(path, pem);
            return path;
        }
        return new Pki(Write("ca.pem", ca.ExportCertificatePem()), ca,
            Write("server.pem", server.ExportCertificatePem()), Write("server.key", server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()),
            client, foreign,
            Write("client.pem", client.ExportCertificatePem()), Write("client.key", client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()));
    }

    private static async Task<(TcpClient, SslStream)?> TlsAsync(IPEndPoint endpoint, X509Certificate2 ca, X509Certificate2 client, SslProtocols protocols = SslProtocols.Tls13)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endpoint);
        var ssl = new SslStream(tcp.GetStream(), false);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                EnabledSslProtocols = protocols,
                ClientCertificates = [client],
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return certificate is X509Certificate2 c && chain.Build(c);
                },
            });
            return (tcp, ssl);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
            return null;
        }
    }

    [SkippableFact]
    public async Task Tls13_WithAClientCertificate_Serves_RefusesTls12_AForeignCa_AndObfuscation()
    {
        Requires.Program("openssl");
        var pki = MakePki();
        await using var server = await TestServer.StartAsync(new()
        {
            ["Forewarn:Tacacs:TlsPort"] = "0",
            ["Forewarn:Tacacs:CertificateFile"] = pki.ServerFile,
            ["Forewarn:Tacacs:CertificateKeyFile"] = pki.ServerKey,
            ["Forewarn:Tacacs:ClientCaFile"] = pki.CaFile,
        });
        await server.AddUserAsync("judy", "pw");
        var endpoint = server.Services.GetRequiredService<TacacsServer>().EndpointOf(tls: true)!;

        // TLS 1.3 with the CA's device certificate: served, the packets unobfuscated (RFC 9887 §4).
        var tls = await TlsAsync(endpoint, pki.Ca, pki.Client);
        Assert.NotNull(tls);
        Assert.Equal(SslProtocols.Tls13, tls.Value.Item2.SslProtocol);
        await using (var device = TacacsPeer.Over(tls.Value.Item1, tls.Value.Item2))
        {
            var pass = Assert.IsType<AuthenReply>(await device.ExchangeAsync(TacacsPeer.Pap("judy", "pw"), 1, flags: TacacsFlags.Unencrypted | TacacsFlags.SingleConnect, version: TacacsHeader.VersionOne));
            Assert.Equal(AuthenStatus.Pass, pass.Status);
            // An obfuscated packet inside TLS: ERROR, then the connection is closed.
            var key = new byte[TacacsHeader.Size + 512];
            int length = TacacsPacket.Encode(TacacsPeer.Pap("judy", "pw"), TacacsHeader.VersionOne, 1, TacacsFlags.None, 2, "testing123"u8, key);
            await device.SendRawAsync(key[..length]);
            var error = await device.ReceiveAsync();
            Assert.Equal(AuthenStatus.Error, Assert.IsType<AuthenReply>(error?.Body).Status);
            Assert.True(await device.ClosedWithinAsync(2000));
        }
        Assert.Equal(1, server.Counters.Tacacs.Dropped(TacacsDrop.ObfuscationRefused));

        // A certificate from another CA: the handshake (or the first read after it, TLS 1.3 checks the client last) fails.
        var foreign = await TlsAsync(endpoint, pki.Ca, pki.Foreign);
        if (foreign is { } f)
        {
            await using var intruder = TacacsPeer.Over(f.Item1, f.Item2);
            await intruder.SendAsync(TacacsPeer.Pap("judy", "pw"), 3, flags: TacacsFlags.Unencrypted, version: TacacsHeader.VersionOne);
            Assert.Null(await intruder.ReceiveAsync(3000));
        }

        // No TLS 1.2, and no plain TACACS+ on the TLS port.
        Assert.Null(await TlsAsync(endpoint, pki.Ca, pki.Client, SslProtocols.Tls12));
        {
            var tls12 = await Peer.RunAsync("openssl", ["s_client", "-connect", endpoint.ToString(), "-tls1_2", "-cert", pki.ClientFile, "-key", pki.ClientKey, "-CAfile", pki.CaFile], input: "");
            Assert.Contains("Cipher is (NONE)", tls12.Output, StringComparison.Ordinal);
            var tls13 = await Peer.RunAsync("openssl", ["s_client", "-connect", endpoint.ToString(), "-tls1_3", "-cert", pki.ClientFile, "-key", pki.ClientKey, "-CAfile", pki.CaFile], input: "");
            Assert.Contains("TLSv1.3", tls13.Output, StringComparison.Ordinal);
            Assert.Contains("Verify return code: 0", tls13.Output, StringComparison.Ordinal);
        }
        await using (var plain = await TacacsPeer.ConnectAsync(endpoint))
        {
            await plain.SendAsync(TacacsPeer.Pap("judy", "pw"), 4, version: TacacsHeader.VersionOne);
            Assert.Null(await plain.ReceiveAsync(3000));
        }
        tls.Value.Item1.Dispose();
    }
}
