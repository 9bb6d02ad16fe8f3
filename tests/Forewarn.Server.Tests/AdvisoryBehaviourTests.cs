using System.Net;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>Client-initiated return (Probe answered by Refuse, then Invite) and reminders to a client that ignores advisories.</summary>
[Collection(nameof(Serial))]
public sealed class AdvisoryBehaviourTests : IAsyncLifetime
{
    private static readonly IPAddress ServerAddress = IPAddress.Parse("127.0.60.1");
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = ServerAddress.ToString(),
            ["Forewarn:Advisory:Port"] = "1814",
            ["Forewarn:Advisory:RetryAfterSeconds"] = "1",
            ["Forewarn:Advisory:RefuseRetryAfterSeconds"] = "1",
            ["Forewarn:Advisory:ReminderSeconds"] = "1",
            ["Forewarn:Health:MinimumDwellSeconds"] = "1",
            ["Forewarn:Health:Weights:cpu"] = "0",
            ["Forewarn:Health:Weights:processes"] = "0",
            ["Forewarn:Health:Weights:latency"] = "0",
        });
        await _server.AddClientAsync(new ClientRecord("nas", "127.2.0.0/16", "nas-secret"));
        await _server.AddUserAsync("u", "pw", AuthMethods.Pap);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ForewarnClient Client(string address, int advisoryPort) => new(
        new ClientOptions { LocalAddress = IPAddress.Parse(address), AdvisoryPort = advisoryPort, Timeout = TimeSpan.FromSeconds(2), Retries = 1, ReturnJitter = TimeSpan.FromMilliseconds(200) },
        [new PoolServer(ServerAddress, _server.Auth.Port, _server.Acct.Port, "nas-secret", advisoryPort: 1814)]);

    [SkippableFact]
    public async Task ProbeIsRefusedWhileDeferring_ThenInvited()
    {
        await using var client = Client("127.2.0.1", 1815);
        Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
        var monitor = _server.Services.GetRequiredService<HealthMonitor>();
        var advisory = _server.Services.GetRequiredService<AdvisoryService>();
        monitor.Drain();
        await WaitAsync(() => client.Pool.Servers[0].Deferred);
        // Retry-After 1 s: the client probes, and while the drain lasts it is refused.
        await WaitAsync(() => client.Counters.Refusals > 0, seconds: 6);
        Assert.True(advisory.Counters.Probes > 0);
        Assert.True(client.Pool.Servers[0].Deferred);
        // Once the server admits returning clients again, the next probe (or the batch invitation) brings it back.
        monitor.Resume();
        await WaitAsync(() => !client.Pool.Servers[0].Deferred, seconds: 10);
        Assert.True(client.Counters.Invites > 0);
    }

    [SkippableFact]
    public async Task AClientThatIgnoresAdvisories_IsStillServed_AndReminded()
    {
        // AdvisoryPort 0: this NAS has no listener, like a device that does not speak the protocol.
        await using var client = Client("127.2.0.2", 0);
        Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
        var advisory = _server.Services.GetRequiredService<AdvisoryService>();
        _server.Services.GetRequiredService<HealthMonitor>().Drain();
        await WaitAsync(() => advisory.Counters.Failovers > 0);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
            await Task.Delay(100);
        }
        // Served every time; reminded about once a second, not once a request; the unanswered FAILOVER given up on.
        Assert.InRange(advisory.Counters.Reminders, 1, 5);
        await WaitAsync(() => advisory.Counters.GivenUp > 0, seconds: 10);
    }

    private static async Task WaitAsync(Func<bool> condition, double seconds = 3)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition(), "condition not met in time");
    }
}
