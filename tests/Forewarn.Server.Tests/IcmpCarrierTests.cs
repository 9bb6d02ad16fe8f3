using System.Net;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>The patent's carrier: advisories and their ACKs as ICMP Echo payloads (raw sockets: run as root, as CI does).</summary>
[Collection(nameof(Serial))]
public sealed class IcmpCarrierTests
{
    [SkippableFact]
    public async Task Advisories_TravelAsIcmpEcho_BothWays()
    {
        Requires.That(Environment.UserName == "root" || Environment.IsPrivilegedProcess, "the ICMP Echo carrier needs raw sockets: run the tests as root");
        var serverAddress = IPAddress.Parse("127.0.70.1");
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = serverAddress.ToString(),
            ["Forewarn:Advisory:Carrier"] = "icmp",
            ["Forewarn:Advisory:InviteSpacingMs"] = "100",
            ["Forewarn:Health:MinimumDwellSeconds"] = "1",
            ["Forewarn:Health:Weights:cpu"] = "0",
            ["Forewarn:Health:Weights:processes"] = "0",
            ["Forewarn:Health:Weights:latency"] = "0",
        });
        await server.AddClientAsync(new ClientRecord("icmp-nas", "127.3.0.0/16", "icmp-secret"));
        await server.AddUserAsync("u", "pw", AuthMethods.Pap);
        var clients = Enumerable.Range(1, 10).Select(i => new ForewarnClient(
            new ClientOptions { LocalAddress = IPAddress.Parse($"127.3.0.{i}"), Carrier = "icmp", Timeout = TimeSpan.FromSeconds(2), Retries = 1, ReturnJitter = TimeSpan.FromMilliseconds(100) },
            [new PoolServer(serverAddress, server.Auth.Port, server.Acct.Port, "icmp-secret")])).ToList();
        try
        {
            foreach (var client in clients)
                Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
            var advisory = server.Services.GetRequiredService<AdvisoryService>();
            var monitor = server.Services.GetRequiredService<HealthMonitor>();
            monitor.Drain();
            await WaitAsync(() => clients.All(c => c.Pool.Servers[0].Deferred) && advisory.Counters.Acks >= clients.Count);
            Assert.Equal(0, advisory.Counters.GivenUp);
            monitor.Resume();
            await WaitAsync(() => clients.All(c => !c.Pool.Servers[0].Deferred), seconds: 10);
            Assert.All(clients, c => Assert.Equal(0, c.Counters.Rejected));
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }

    private static async Task WaitAsync(Func<bool> condition, double seconds = 5)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition(), "condition not met in time");
    }
}
