using System.Net;
using System.Net.Sockets;
using System.Text;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Advisory;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>NASes of one client block share a RADIUS secret; with per-NAS advisory keys none can sign advisories to another.</summary>
[Collection(nameof(Serial))]
public sealed class PerNasAdvisoryKeyTests
{
    private static readonly IPAddress ServerAddress = IPAddress.Parse("127.0.63.1");
    private const string BlockSecret = "block-radius-secret";
    private const string ServersOnly = "known-to-the-servers-only";

    [SkippableFact]
    public async Task OneNasOfABlock_CannotSignAdvisoriesToAnother()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = ServerAddress.ToString(),
            ["Forewarn:Health:MinimumDwellSeconds"] = "1",
            ["Forewarn:Advisory:RetryAfterSeconds"] = "60",
        });
        await server.AddClientAsync(new ClientRecord("block", "127.6.0.0/16", BlockSecret, AdvisorySecret: ServersOnly));
        await server.AddUserAsync("u", "pw", AuthMethods.Pap);
        int advisoryPort = server.Services.GetRequiredService<AdvisoryService>().Endpoint!.Port;
        var mallory = IPAddress.Parse("127.6.0.1");
        var victim = IPAddress.Parse("127.6.0.2");
        string KeyOf(IPAddress nas) => Convert.ToHexString(AdvisoryKeys.DeriveForNas(Encoding.UTF8.GetBytes(ServersOnly), nas));
        await using var client = new ForewarnClient(
            new ClientOptions { LocalAddress = victim, AdvisoryPort = 1815, Timeout = TimeSpan.FromSeconds(2), Retries = 1 },
            [new PoolServer(ServerAddress, server.Auth.Port, server.Acct.Port, BlockSecret, advisoryPort: advisoryPort, advisoryKey: KeyOf(victim))]);
        Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);

        // Mallory, another NAS of the block, knows the RADIUS secret and its own advisory key, and forges a
        // FAILOVER to the victim from the server's address with each.
        using var forger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        forger.Bind(new IPEndPoint(ServerAddress, 0));
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        ulong sequence = ulong.MaxValue / 2;
        foreach (var key in new[] { AdvisoryKeys.FromSharedSecret(Encoding.UTF8.GetBytes(BlockSecret)).Current, Convert.FromHexString(KeyOf(mallory)) })
        {
            var buffer = new byte[AdvisoryCodec.MaxLength];
            int length = AdvisoryCodec.Encode(new AdvisoryMessage
            {
                Type = AdvisoryType.Failover, Sequence = sequence++, Timestamp = now, Server = ServerAddress, Client = victim, Reason = AdvisoryReason.Overload,
            }, key, buffer);
            await forger.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, client.AdvisoryEndpoint!);
        }
        await WaitAsync(() => client.Counters.Rejected >= 2);
        Assert.Equal(2, client.Counters.Rejected);
        Assert.False(client.Pool.Servers[0].Deferred);

        // The server itself, with the victim's own key: believed.
        server.Services.GetRequiredService<HealthMonitor>().Drain();
        await WaitAsync(() => client.Counters.Failovers == 1);
        Assert.Equal(1, client.Counters.Failovers);
        Assert.True(client.Pool.Servers[0].Deferred);
    }

    private static async Task WaitAsync(Func<bool> condition, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }
}
