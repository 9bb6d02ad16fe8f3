using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Client;
using Forewarn.Core.Aaa;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>PBKDF2 and store lookups run on the slow-work pool, in each client's turn, never on the receiving threads.</summary>
[Collection(nameof(Serial))]
public sealed class SlowWorkTests
{
    private const int Iterations = 50_000;

    [SkippableFact]
    public async Task WrongPasswordFlood_AtTenTimesThePool_LeavesStatusServerAndOtherClientsLogins()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Forewarn:SlowWork:Threads"] = "1" });
        await server.AddClientAsync(new ClientRecord("other-nas", "127.5.0.1", "other-secret"));
        await server.AddUserAsync("target", "the-real-one", AuthMethods.Pap, iterations: Iterations);
        for (int i = 0; i < 20; i++)
            await server.AddUserAsync($"user{i}", $"password{i}", AuthMethods.Pap, iterations: Iterations);
        var pool = server.Services.GetRequiredService<SlowWork>();

        // What the pool can verify: one thread, one derivation at a time.
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 5; i++)
            Rfc2898DeriveBytes.Pbkdf2("x"u8, new byte[16], new byte[32], Iterations, HashAlgorithmName.SHA256);
        double perSecond = 5 / clock.Elapsed.TotalSeconds;
        int floodRate = (int)Math.Ceiling(perSecond * 10);

        // The flood: spoofed PAP from the localhost client (no Message-Authenticator, as the auto policy allows), a new wrong password each time.
        using var stop = new CancellationTokenSource();
        long flooded = 0;
        var flood = Task.Run(async () =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var started = Stopwatch.StartNew();
            byte id = 0;
            while (!stop.IsCancellationRequested)
            {
                long due = (long)(started.Elapsed.TotalSeconds * floodRate);
                for (; flooded < due; flooded++)
                {
                    var packet = UdpPeer.AccessRequest(id++, "target", Convert.ToHexString(RandomNumberGenerator.GetBytes(8)), "testing123", messageAuthenticator: false);
                    await socket.SendToAsync(packet, SocketFlags.None, server.Auth);
                }
                await Task.Delay(5);
            }
        });
        await Task.Delay(1000);

        // Meanwhile another NAS logs in twenty users no cache has seen, and the server answers Status-Server.
        await using var nas = new ForewarnClient(
            new ClientOptions { LocalAddress = IPAddress.Parse("127.5.0.1"), AdvisoryPort = 0, Timeout = TimeSpan.FromSeconds(1), MaxTimeout = TimeSpan.FromSeconds(1), Retries = 2, StatusServerInterval = TimeSpan.Zero },
            [new PoolServer(IPAddress.Loopback, server.Auth.Port, server.Acct.Port, "other-secret")]);
        using var status = new UdpPeer();
        int accepted = 0, statusAnswered = 0;
        for (int i = 0; i < 20; i++)
        {
            var response = await nas.SendAsync(RadiusRequest.Pap($"user{i}", $"password{i}"));
            if (response[0] == (byte)RadiusCode.AccessAccept)
                accepted++;
            if (await status.ExchangeAsync(server.Auth, UdpPeer.StatusServer((byte)i, "testing123"), timeoutMs: 1000) is not null)
                statusAnswered++;
        }
        await stop.CancelAsync();
        await flood;

        Assert.Equal(20, accepted);
        Assert.Equal(20, statusAnswered);
        // The flood was real: far more than the pool could verify, refused rather than queued without end.
        Assert.True(flooded > perSecond * 10, $"{flooded} flooded");
        Assert.True(server.Counters.Dropped(DropReason.SlowWorkFull) > 0, "the flooding client's queue on the pool never filled");
    }
}
