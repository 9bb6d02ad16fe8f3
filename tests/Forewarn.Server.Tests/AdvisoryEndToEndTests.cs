using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Forewarn.Client;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Advisory;
using Forewarn.Protocol.Radius;
using Forewarn.Server.Advisories;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>
/// Three servers on 127.0.50.1–3 and 200 clients, each on its own 127.1.x.y address, all on loopback:
/// a drained server moves its clients to the healthy alternates with no request lost, forged and
/// replayed advisories change nothing, and recovery brings the clients back batch by batch.
/// </summary>
[Collection(nameof(Serial))]
public sealed class AdvisoryEndToEndTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private const int Clients = 200;
    private const string FleetSecret = "fleet-secret";
    private static readonly IPAddress[] ServerAddresses = [IPAddress.Parse("127.0.50.1"), IPAddress.Parse("127.0.50.2"), IPAddress.Parse("127.0.50.3")];
    private readonly List<TestServer> _servers = [];
    private readonly List<ForewarnClient> _clients = [];
    // Free ports, not 1812–1814: a system FreeRADIUS holds those on every address.
    private readonly int _auth = FreePorts.Udp(ServerAddresses[0]), _acct = FreePorts.Udp(ServerAddresses[0]), _advisory = FreePorts.Udp(ServerAddresses[0]);

    public async Task InitializeAsync()
    {
        for (int s = 0; s < ServerAddresses.Length; s++)
            _servers.Add(await StartServerAsync(s));
        for (int i = 0; i < Clients; i++)
        {
            var address = IPAddress.Parse($"127.1.{i / 250}.{i % 250 + 1}");
            _clients.Add(new ForewarnClient(new ClientOptions { LocalAddress = address, AdvisoryPort = 1815, Timeout = TimeSpan.FromSeconds(5), Retries = 3, ReturnJitter = TimeSpan.FromSeconds(1) },
            [
                new PoolServer(ServerAddresses[0], _auth, _acct, FleetSecret, priority: 1, advisoryPort: _advisory),
                new PoolServer(ServerAddresses[1], _auth, _acct, FleetSecret, priority: 2, advisoryPort: _advisory),
                new PoolServer(ServerAddresses[2], _auth, _acct, FleetSecret, priority: 2, advisoryPort: _advisory),
            ]));
        }
    }

    private async Task<TestServer> StartServerAsync(int s)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = ServerAddresses[s].ToString(),
            ["Forewarn:AuthPort"] = $"{_auth}",
            ["Forewarn:AcctPort"] = $"{_acct}",
            ["Forewarn:Advisory:Port"] = $"{_advisory}",
            ["Forewarn:Advisory:PeerSecret"] = "cluster-secret",
            ["Forewarn:Advisory:InviteBatchSize"] = "25",
            ["Forewarn:Advisory:InviteSpacingMs"] = "200",
            ["Forewarn:Health:MinimumDwellSeconds"] = "1",
            // Machine-wide probes read the one test machine all servers share: leave them out.
            ["Forewarn:Health:Weights:cpu"] = "0",
            ["Forewarn:Health:Weights:processes"] = "0",
            ["Forewarn:Health:Weights:latency"] = "0",
        };
        int peer = 0;
        for (int p = 0; p < ServerAddresses.Length; p++)
        {
            if (p == s)
                continue;
            settings[$"Forewarn:Advisory:Peers:{peer}:Address"] = ServerAddresses[p].ToString();
            settings[$"Forewarn:Advisory:Peers:{peer}:AuthPort"] = $"{_auth}";
            settings[$"Forewarn:Advisory:Peers:{peer}:AdvisoryPort"] = $"{_advisory}";
            peer++;
        }
        var server = await TestServer.StartAsync(settings);
        await server.AddClientAsync(new ClientRecord("fleet", "127.1.0.0/16", FleetSecret));
        await server.AddUserAsync("u", "pw", AuthMethods.Pap);
        return server;
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
        foreach (var server in _servers)
        {
            try
            {
                await server.DisposeAsync();
            }
            catch (ObjectDisposedException)
            {
                // server 1 of the stopped-server test, stopped there and not restarted (it failed before the restart)
            }
        }
    }

    private sealed class Traffic
    {
        public long Sent, Answered, Failed, Late;
    }

    /// <summary>Each client sends a PAP request about every 500 ms until stopped; every request must be answered, and within T.</summary>
    private static async Task RunTrafficAsync(List<ForewarnClient> clients, Traffic traffic, CancellationToken stop)
    {
        await Task.WhenAll(clients.Select(async (client, index) =>
        {
            await Task.Delay(index * 500 / clients.Count, CancellationToken.None);
            while (!stop.IsCancellationRequested)
            {
                var watch = Stopwatch.StartNew();
                Interlocked.Increment(ref traffic.Sent);
                try
                {
                    var response = await client.SendAsync(RadiusRequest.Pap("u", "pw"), CancellationToken.None);
                    Assert.Equal((byte)RadiusCode.AccessAccept, response[0]);
                    Interlocked.Increment(ref traffic.Answered);
                    if (watch.Elapsed > TimeSpan.FromSeconds(5))
                        Interlocked.Increment(ref traffic.Late);
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref traffic.Failed);
                }
                try
                {
                    await Task.Delay(500, stop);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }));
    }

    private int OnServer(int index) => _clients.Count(c => !c.Pool.Servers[index].Deferred);

    [SkippableFact]
    public async Task DrainedServer_MovesItsClients_ThenInvitesThemBackInBatches()
    {
        var traffic = new Traffic();
        using var stop = new CancellationTokenSource();
        var load = RunTrafficAsync(_clients, traffic, stop.Token);
        // Every client starts on server 1 (priority 1); the peers learn each other's health.
        await Task.Delay(TimeSpan.FromSeconds(3));
        var first = _servers[0];
        var advisory = first.Services.GetRequiredService<AdvisoryService>();
        Assert.Equal(2, advisory.Alternates().Count);
        Assert.Equal(Clients, first.Services.GetRequiredService<Core.Deferrals.ClientRegistry>().Count);

        var monitor = first.Services.GetRequiredService<HealthMonitor>();
        var drainedAt = Stopwatch.StartNew();
        monitor.Drain();
        while (OnServer(0) > 0 && drainedAt.Elapsed < TimeSpan.FromSeconds(5))
            await Task.Delay(10);
        var moved = drainedAt.Elapsed;
        output.WriteLine($"all {Clients} clients off server 1 {moved.TotalMilliseconds:0} ms after the drain; failovers {advisory.Counters.Failovers}, acks {advisory.Counters.Acks}, retransmissions {advisory.Counters.Retransmissions}");
        Assert.Equal(0, OnServer(0));
        // Before a classic client would even have noticed: its first timeout (T = 5 s) has not run out.
        Assert.True(moved < TimeSpan.FromSeconds(5), $"took {moved}");

        // Traffic keeps flowing to the alternates, and spreads over both.
        await Task.Delay(TimeSpan.FromSeconds(2));
        long onSecond = _servers[1].Counters.AccessAccepts, onThird = _servers[2].Counters.AccessAccepts;
        Assert.True(onSecond > 50 && onThird > 50, $"alternates served {onSecond} and {onThird}");

        // Recovery: invitations go out in batches; clients come back over time, not all at once.
        var resumedAt = Stopwatch.StartNew();
        monitor.Resume();
        var samples = new List<(double Seconds, int Back)>();
        while (OnServer(0) < Clients && resumedAt.Elapsed < TimeSpan.FromSeconds(20))
        {
            samples.Add((resumedAt.Elapsed.TotalSeconds, OnServer(0)));
            await Task.Delay(100);
        }
        await stop.CancelAsync();
        await load;
        output.WriteLine($"return: {string.Join(", ", samples.Where((_, i) => i % 5 == 0).Select(s => $"{s.Seconds:0.0}s:{s.Back}"))}; invites {advisory.Counters.Invites}");
        output.WriteLine($"traffic: sent {traffic.Sent}, answered {traffic.Answered}, failed {traffic.Failed}, later than T {traffic.Late}");
        Assert.Equal(Clients, OnServer(0));
        Assert.Contains(samples, s => s.Back > 0 && s.Back < Clients); // staggered: a moment with some back and some not
        // The return did not push the server out of the Accept zone again.
        var last = monitor.Current.RecentChanges[^1];
        Assert.Equal(Zone.Accept, last.To);
        Assert.Equal(Zone.Accept, monitor.Current.Zone);
        Assert.Equal(0, traffic.Failed);
        Assert.Equal(0, traffic.Late);
        Assert.Equal(traffic.Sent, traffic.Answered);
        Assert.All(_clients, c => Assert.Equal(0, c.Counters.Rejected));
    }

    [SkippableFact]
    public async Task StoppedServer_ItsIdleClientsAreToldByTheSurvivors_AndComeBackOnlyOnItsInvite()
    {
        // The clients use server 1 for a few seconds, then fall idle; server 1 has told its peers who they are.
        var traffic = new Traffic();
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
            await RunTrafficAsync(_clients, traffic, stop.Token);
        Assert.Equal(0, traffic.Failed);

        // Server 1 stops without a word. Its peers hear it no more, and within about a second they tell its
        // clients, split between them, to leave it: no client has to send a request to find out.
        var stoppedAt = Stopwatch.StartNew();
        await _servers[0].DisposeAsync();
        while (_clients.Any(c => !c.Pool.Servers[0].Suspected) && stoppedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        var told = stoppedAt.Elapsed;
        var second = _servers[1].Services.GetRequiredService<AdvisoryService>().Counters;
        var third = _servers[2].Services.GetRequiredService<AdvisoryService>().Counters;
        output.WriteLine($"all clients told {told.TotalMilliseconds:0} ms after the stop; PeerDowns sent {second.PeerDowns} + {third.PeerDowns}");
        Assert.All(_clients, c => Assert.True(c.Pool.Servers[0].Suspected));
        Assert.True(told < TimeSpan.FromSeconds(3), $"took {told}");
        Assert.Equal(Clients, _clients.Sum(c => c.Counters.PeerDowns)); // each told once
        Assert.Equal(Clients, second.PeerDowns + third.PeerDowns);
        Assert.True(second.PeerDowns > 0 && third.PeerDowns > 0, "the survivors share the work");

        // The next request goes straight to a survivor: no deadline waited out, nothing hedged (hedges before the
        // stop, a request of the traffic above past its deadline on a busy machine, are not this claim's).
        long hedgesBefore = _clients.Sum(c => c.Counters.Hedges);
        var answers = await Task.WhenAll(_clients.Take(50).Select(c => c.SendAsync(RadiusRequest.Pap("u", "pw"))));
        Assert.All(answers, a => Assert.Equal((byte)RadiusCode.AccessAccept, a[0]));
        Assert.Equal(hedgesBefore, _clients.Sum(c => c.Counters.Hedges));

        // No timer brings them back: server 1 restarted invites them, answering their probes at its admission pace.
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.All(_clients, c => Assert.True(c.Pool.Servers[0].Suspected));
        _servers[0] = await StartServerAsync(0);
        var restartedAt = Stopwatch.StartNew();
        while (_clients.Any(c => c.Pool.Servers[0].Suspected) && restartedAt.Elapsed < TimeSpan.FromSeconds(40))
            await Task.Delay(50);
        output.WriteLine($"all back {restartedAt.Elapsed.TotalSeconds:0.0} s after the restart; invites {_servers[0].Services.GetRequiredService<AdvisoryService>().Counters.Invites}");
        Assert.All(_clients, c => Assert.False(c.Pool.Servers[0].Suspected));
        Assert.Equal(Clients, _clients.Sum(c => c.Counters.Invites));
    }

    [SkippableFact]
    public async Task ForgedReplayedAndMisaddressedAdvisories_ChangeNothing_AndAreReported()
    {
        var client = _clients[0];
        var rejected = new List<AdvisoryError>();
        client.AdvisoryRejected += (_, error) => { lock (rejected) rejected.Add(error); };
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(ServerAddresses[0], 0)); // the server's own address: only the key is missing
        var target = client.AdvisoryEndpoint!;
        var rightKey = AdvisoryKeys.FromSharedSecret("fleet-secret"u8).Current;
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        byte[] Build(ulong sequence, byte[] key, IPAddress? to = null, long? at = null)
        {
            var buffer = new byte[AdvisoryCodec.MaxLength];
            int length = AdvisoryCodec.Encode(new AdvisoryMessage
            {
                Type = AdvisoryType.Failover, Sequence = sequence, Timestamp = at ?? now, Server = ServerAddresses[0], Client = to ?? target.Address,
                Alternates = [new Alternate(ServerAddresses[1], 1812, 255)],
            }, key, buffer);
            return buffer[..length];
        }
        async Task Send(byte[] bytes)
        {
            await socket.SendToAsync(bytes, SocketFlags.None, target);
            await Task.Delay(100);
        }

        await Send(Build(10, AdvisoryKeys.Derive("guessed"u8, 0)));                     // forged: wrong key
        await Send(Build(11, rightKey, to: IPAddress.Parse("127.1.0.99")));             // addressed to another client
        await Send(Build(12, rightKey, at: now - 60_000));                              // expired
        Assert.False(client.Pool.Servers[0].Deferred);

        // A genuine one is acted on; replaying an older one after a newer is not.
        var older = Build(20, rightKey);
        var newer = Build(21, rightKey);
        await Send(older);
        await Send(newer);
        Assert.True(client.Pool.Servers[0].Deferred);
        await Send(older);
        // Each datagram is given 100 ms; a loaded machine may take longer for the last: wait for its verdict (up to 5 s).
        for (var deadline = DateTime.UtcNow.AddSeconds(5); DateTime.UtcNow < deadline; await Task.Delay(20))
        {
            lock (rejected)
            {
                if (rejected.Count >= 4)
                    break;
            }
        }
        lock (rejected)
            Assert.Equal([AdvisoryError.BadDigest, AdvisoryError.MisaddressedClient, AdvisoryError.Expired, AdvisoryError.Replayed], rejected);
        Assert.Equal(4, client.Counters.Rejected);
        Assert.Equal(2, client.Counters.Failovers);
    }
}
