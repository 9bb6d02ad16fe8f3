using System.Net;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>Advisories stay believable across a server's restarts, whatever its clock does.</summary>
[Collection(nameof(Serial))]
public sealed class AdvisoryFreshnessTests
{
    /// <summary>The system clock, stepped back.</summary>
    private sealed class SteppedBack(TimeSpan by) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() - by;
    }

    private static Dictionary<string, string?> Settings => new()
    {
        ["Forewarn:Listen:0"] = "127.0.62.1",
        ["Forewarn:Health:MinimumDwellSeconds"] = "1",
        ["Forewarn:Advisory:RetryAfterSeconds"] = "60",
    };

    [SkippableFact]
    public async Task ServerRestartedWithItsClockSteppedBack_IsStillBelievedByItsClients()
    {
        var server = await TestServer.StartAsync(Settings);
        var directory = server.DataDirectory;
        await server.AddClientAsync(new ClientRecord("nas", "127.4.0.0/16", "nas-secret"));
        await server.AddUserAsync("u", "pw", AuthMethods.Pap);
        var (auth, acct) = (server.Auth.Port, server.Acct.Port);
        int advisoryPort = server.Services.GetRequiredService<AdvisoryService>().Endpoint!.Port;
        await using var client = new ForewarnClient(
            new ClientOptions { LocalAddress = IPAddress.Parse("127.4.0.1"), AdvisoryPort = 1815, Timeout = TimeSpan.FromSeconds(2), Retries = 1 },
            [new PoolServer(IPAddress.Parse("127.0.62.1"), auth, acct, "nas-secret", advisoryPort: advisoryPort)]);
        try
        {
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
            server.Services.GetRequiredService<HealthMonitor>().Drain();
            await WaitAsync(() => client.Counters.Failovers == 1);
            await server.DisposeAsync(keepData: true);

            // The same server, same data directory and ports, its clock now 20 s behind (within the window).
            server = await TestServer.StartAsync(new Dictionary<string, string?>(Settings)
            {
                ["Forewarn:AuthPort"] = auth.ToString(),
                ["Forewarn:AcctPort"] = acct.ToString(),
                ["Forewarn:Advisory:Port"] = advisoryPort.ToString(),
            }, directory, services => services.AddSingleton<TimeProvider>(new SteppedBack(TimeSpan.FromSeconds(20))));
            await server.AddUserAsync("u", "pw", AuthMethods.Pap);
            // Everything else deferred, the client still asks this server; then the restarted server defers it again.
            Assert.Equal((byte)RadiusCode.AccessAccept, (await client.SendAsync(RadiusRequest.Pap("u", "pw")))[0]);
            server.Services.GetRequiredService<HealthMonitor>().Drain();

            await WaitAsync(() => client.Counters.Failovers == 2 || client.Counters.Rejected > 0);
            Assert.Equal(0, client.Counters.Rejected);
            Assert.Equal(2, client.Counters.Failovers);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static async Task WaitAsync(Func<bool> condition, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }
}
