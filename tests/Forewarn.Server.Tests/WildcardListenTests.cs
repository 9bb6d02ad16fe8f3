using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Forewarn.Server.Tests;

/// <summary>A server on 0.0.0.0 (the operations guide's unit listens so) answers and advises from the address each NAS asked.</summary>
[Collection(nameof(Serial))]
public sealed class WildcardListenTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = "0.0.0.0",
            ["Forewarn:Advisory:RetryAfterSeconds"] = "30",
            ["Forewarn:Health:MinimumDwellSeconds"] = "1",
        });
        await _server.AddClientAsync(new ClientRecord("nas", "127.3.0.0/16", "nas-secret"));
        await _server.AddUserAsync("u", "pw", AuthMethods.Pap);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [SkippableTheory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.2")]
    [InlineData("127.0.0.3")]
    public async Task WildcardListener_AnswersFromTheAddressAsked(string asked)
    {
        using var nas = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        nas.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var secret = Encoding.UTF8.GetBytes("testing123");
        var request = new byte[4096];
        var writer = new RadiusWriter(request, RadiusCode.StatusServer, 7, RandomNumberGenerator.GetBytes(16));
        writer.AddMessageAuthenticator();
        int length = writer.Complete(secret);
        var server = new IPEndPoint(IPAddress.Parse(asked), _server.Auth.Port);

        await nas.SendToAsync(request.AsMemory(0, length), SocketFlags.None, server);
        var answer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var received = await nas.ReceiveFromAsync(answer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);

        Assert.Equal(server, received.RemoteEndPoint);
        Assert.True(RadiusCrypto.VerifyResponseAuthenticator(answer.AsSpan(0, received.ReceivedBytes), request.AsSpan(4, 16), secret));
    }

    [SkippableFact]
    public async Task WildcardListener_AnswersRadtestAtEachAddress()
    {
        Requires.Program("radtest");
        foreach (var asked in new[] { "127.0.0.1", "127.0.0.2" })
        {
            var result = await Peer.RunAsync("radtest", ["-t", "pap", "u", "pw", $"{asked}:{_server.Auth.Port}", "0", "testing123"]);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("Received Access-Accept", result.Output, StringComparison.Ordinal);
            Assert.Contains($"Access-Accept Id", result.Output, StringComparison.Ordinal);
            Assert.Contains($"from {asked}:{_server.Auth.Port} ", result.Output, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task WildcardListener_SignsEachClientsAdvisoriesWithTheAddressItAsked()
    {
        var advisoryPort = _server.Services.GetRequiredService<AdvisoryService>().Endpoint!.Port;
        var asked = new[] { "127.0.0.2", "127.0.0.3" };
        var clients = asked.Select((server, i) => new ForewarnClient(
            new ClientOptions { LocalAddress = IPAddress.Parse($"127.3.0.{i + 1}"), AdvisoryPort = 1815, Timeout = TimeSpan.FromSeconds(2), Retries = 1 },
            [new PoolServer(IPAddress.Parse(server), _server.Auth.Port, _server.Acct.Port, "nas-secret", advisoryPort: advisoryPort)])).ToList();
        try
        {
            foreach (var client in clients)
                Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);

            _server.Services.GetRequiredService<HealthMonitor>().Drain();

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (clients.Any(c => !c.Pool.Servers[0].Deferred) && DateTime.UtcNow < deadline)
                await Task.Delay(50);
            Assert.All(clients, c => Assert.True(c.Pool.Servers[0].Deferred, $"{c.Pool.Servers[0]} did not defer its client"));
            Assert.All(clients, c => Assert.Equal(0, c.Counters.Rejected));
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }
}
