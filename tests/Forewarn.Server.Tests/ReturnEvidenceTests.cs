using System.Net;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>
/// A degradation that shows only under load: server A defers its clients to B, then its store slows while
/// they are away. A, idle, reads healthy and invites; the return is judged by the last seconds' requests,
/// so a few clients come back to test it, their slow answers hold the rest away, and once the store is
/// fast again every client comes back.
/// </summary>
[Collection(nameof(Serial))]
public sealed class ReturnEvidenceTests : IAsyncLifetime
{
    private const int Clients = 40;
    private const string FleetSecret = "fleet-secret";
    private static readonly IPAddress[] ServerAddresses = [IPAddress.Parse("127.0.62.1"), IPAddress.Parse("127.0.62.2")];
    private readonly List<TestServer> _servers = [];
    private readonly List<ForewarnClient> _clients = [];
    private readonly int _auth = FreePorts.Udp(ServerAddresses[0]), _acct = FreePorts.Udp(ServerAddresses[0]), _advisory = FreePorts.Udp(ServerAddresses[0]);

    public async Task InitializeAsync()
    {
        foreach (var address in ServerAddresses)
        {
            var server = await TestServer.StartAsync(new Dictionary<string, string?>
            {
                ["Forewarn:Listen:0"] = address.ToString(),
                ["Forewarn:AuthPort"] = $"{_auth}",
                ["Forewarn:AcctPort"] = $"{_acct}",
                ["Forewarn:Advisory:Port"] = $"{_advisory}",
                ["Forewarn:Advisory:InviteBatchSize"] = "20",
                ["Forewarn:Advisory:InviteSpacingMs"] = "200",
                // The clients come back only when invited (not on their own after Retry-After).
                ["Forewarn:Advisory:RetryAfterSeconds"] = "120",
                ["Forewarn:Health:MinimumDwellSeconds"] = "1",
                ["Forewarn:Health:LatencyWindowSeconds"] = "3",
                ["Forewarn:Health:Weights:cpu"] = "0",
                ["Forewarn:Health:Weights:processes"] = "0",
            });
            await server.AddClientAsync(new ClientRecord("fleet", "127.2.62.0/24", FleetSecret));
            await server.AddUserAsync("u", "pw", AuthMethods.Pap);
            _servers.Add(server);
        }
        for (int i = 0; i < Clients; i++)
        {
            _clients.Add(new ForewarnClient(
                new ClientOptions { LocalAddress = IPAddress.Parse($"127.2.62.{i + 1}"), AdvisoryPort = 1815, Timeout = TimeSpan.FromSeconds(2), Retries = 2, ReturnJitter = TimeSpan.FromMilliseconds(200) },
                [
                    new PoolServer(ServerAddresses[0], _auth, _acct, FleetSecret, priority: 1, advisoryPort: _advisory),
                    new PoolServer(ServerAddresses[1], _auth, _acct, FleetSecret, priority: 2, advisoryPort: _advisory),
                ]));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
        foreach (var server in _servers)
            await server.DisposeAsync();
    }

    private int OnA => _clients.Count(c => !c.Pool.Servers[0].Deferred);

    [SkippableFact]
    public async Task ASlowStoreSeenInTheFirstReturns_HoldsTheRest_UntilItIsFastAgain()
    {
        var a = _servers[0];
        var monitor = a.Services.GetRequiredService<HealthMonitor>();
        var advisory = a.Services.GetRequiredService<AdvisoryService>();
        var drill = a.Services.GetRequiredService<DrillState>();
        using var stop = new CancellationTokenSource();
        long failed = 0;
        // Every client sends four requests a second to whichever server its pool prefers now.
        var senders = _clients.Select(client => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var answer = await client.SendAsync(RadiusRequest.Pap("u", "pw"));
                    if (answer[0] != (byte)RadiusCode.AccessAccept)
                        Interlocked.Increment(ref failed);
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref failed);
                }
                await Task.Delay(250);
            }
        })).ToList();
        try
        {
            // Long enough for A to know each client's rate: a return is sized by the rates clients left with.
            await Task.Delay(5000);

            // A sends every client to B; while they are away its store slows to 80 ms a lookup (the
            // latency objective is 50 ms), which A, idle, cannot see.
            monitor.Drain();
            await WaitAsync(() => OnA == 0, seconds: 5);
            drill.Start(DrillKind.SlowStore, seconds: 120, intensity: 0.4);
            // Away long enough that nothing A answered before they left is recent evidence any more.
            await Task.Delay(3500);
            monitor.Resume();

            // A returns to Accept once its latency window has emptied, and invites a probe's worth of
            // clients (20 requests a second: five of these clients). Their answers take 80 ms: the rest stay on B.
            await WaitAsync(() => advisory.Counters.Invites > 0, seconds: 15);
            await WaitAsync(() => advisory.Counters.Held > 0, seconds: 10);
            await Task.Delay(4000);
            long invitedWhileSlow = advisory.Counters.Invites;
            Assert.InRange(invitedWhileSlow, 1, Clients / 2);
            Assert.True(OnA < Clients / 2, $"{OnA} of {Clients} clients on A while its store is slow");

            // The store is fast again: the next probe's answers say so, and every client comes back.
            drill.Stop();
            await WaitAsync(() => OnA == Clients, seconds: 30,
                () => $"{OnA} of {Clients} back on A; A's zone {monitor.ZoneOf(null).Current}, invites {advisory.Counters.Invites}, held {advisory.Counters.Held}, budget {advisory.BudgetLimit}");
            Assert.True(advisory.Counters.Invites >= Clients);
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAll(senders);
        }
        // Nothing was lost on the way: every request was answered, by A or by B.
        Assert.Equal(0, Interlocked.Read(ref failed));
    }

    private static async Task WaitAsync(Func<bool> condition, double seconds, Func<string>? state = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition(), $"condition not met in {seconds} s{(state is null ? "" : ": " + state())}");
    }
}
