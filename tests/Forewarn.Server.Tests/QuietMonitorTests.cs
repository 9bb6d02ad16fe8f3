using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Forewarn.Bench.Noise;
using Forewarn.Core.Health;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server.Tests;

/// <summary>
/// The monitor must not cry wolf: a healthy server at light load, under the noise a real machine makes,
/// changes no zone and sends no FAILOVER. Every probe counts (no weights set to 0 here).
/// </summary>
[Collection(nameof(Serial))]
public sealed class QuietMonitorTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-quiet-" + Guid.NewGuid().ToString("N")[..12]);

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

    /// <summary>
    /// 60 s at 5 PAP logins a second from radclient (a process each), `forewarn status` run every second,
    /// the admin API polled four times a second, two 2 s bursts of another process at 100 % of a core, and
    /// 200,000 invalid datagrams from the known client's address (bad Message-Authenticators and bad
    /// accounting authenticators, as fast as this process can send them): no zone change, no FAILOVER,
    /// every login answered.
    /// </summary>
    [SkippableFact]
    public async Task LightLoad_UnderMachineNoise_StatusPolling_AndAnInvalidFlood_NoZoneChange_NoFailover()
    {
        Peer.Require("radclient");
        var add = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "users", "add", "light", "--password", "pw", "--methods", "pap", "--data", _data]);
        Assert.True(add.ExitCode == 0, add.ToString());
        await using var server = await ServerProcess.StartAsync(_data);
        // Past warm-up (5 s), with the service checks run.
        await Task.Delay(TimeSpan.FromSeconds(6));
        var start = await server.StatusAsync();
        Assert.True(start.Health.Zone == Zone.Accept, Describe(start));
        Assert.Empty(start.Health.RecentChanges);

        var duration = TimeSpan.FromSeconds(60);
        var clock = Stopwatch.StartNew();
        int logins = 0, accepted = 0, statusRuns = 0, statusFailures = 0;
        double lowestSustained = 1, lowestScore = 1;
        string lowestAt = "";

        var load = Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var tick = Task.Delay(200);
                Interlocked.Increment(ref logins);
                var r = await Peer.RunAsync("radclient", ["-r", "3", "-t", "2", $"127.0.0.1:{server.AuthPort}", "auth", "testing123"], "User-Name = \"light\", User-Password = \"pw\"\n");
                if (r.Output.Contains("Received Access-Accept", StringComparison.Ordinal))
                    Interlocked.Increment(ref accepted);
                await tick;
            }
        });
        var status = Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var tick = Task.Delay(1000);
                var r = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "status", "--data", _data]);
                Interlocked.Increment(ref statusRuns);
                if (r.ExitCode != 0)
                    Interlocked.Increment(ref statusFailures);
                await tick;
            }
        });
        var watch = Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var s = await server.StatusAsync();
                if (s.Health.Sustained < lowestSustained || s.Health.Score < lowestScore)
                {
                    lowestSustained = Math.Min(lowestSustained, s.Health.Sustained);
                    lowestScore = Math.Min(lowestScore, s.Health.Score);
                    lowestAt = $"{clock.Elapsed.TotalSeconds:0.0} s: score {s.Health.Score:0.000}, sustained {s.Health.Sustained:0.000}, service {s.Health.ServiceScore:0.000}, machine {s.Health.SystemScore:0.000}; "
                        + string.Join(" ", s.Health.Probes.Where(p => p.Headroom < 1).Select(p => $"{p.Name}={p.Headroom:0.00} ({p.Detail})"));
                }
                await Task.Delay(250);
            }
        });
        var noise = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(12));
            await NoiseSources.BurstAsync(TimeSpan.FromSeconds(2));
            await Task.Delay(TimeSpan.FromSeconds(10));
            long sent = await Task.Run(() => NoiseSources.Flood(IPAddress.Loopback, new IPEndPoint(IPAddress.Loopback, server.AuthPort), new IPEndPoint(IPAddress.Loopback, server.AcctPort), 200_000));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: sent {sent} invalid datagrams");
            await Task.Delay(TimeSpan.FromSeconds(10));
            await NoiseSources.BurstAsync(TimeSpan.FromSeconds(2));
        });
        await Task.WhenAll(load, status, watch, noise);

        var end = await server.StatusAsync();
        output.WriteLine($"logins {logins}, accepted {accepted}; status runs {statusRuns} ({statusFailures} failed)");
        output.WriteLine($"lowest at {lowestAt}");
        output.WriteLine("drops: " + string.Join(", ", (end.Counters.DropsByReason ?? new Dictionary<string, long>()).Select(d => $"{d.Key} {d.Value}")));
        foreach (var change in end.Health.RecentChanges)
            output.WriteLine($"zone change {change.At:HH:mm:ss.f} {change.From} -> {change.To} by {change.Cause} (score {change.Score:0.000}, predicted {change.Predicted:0.000})");

        Assert.Empty(end.Health.RecentChanges);
        Assert.Equal(Zone.Accept, end.Health.Zone);
        Assert.NotNull(end.Advisory);
        Assert.Equal(0, end.Advisory!.Failovers);
        Assert.True(end.Advisory.ActiveClients >= 1, "the radclient source was seen, so a deferral would have sent it a FAILOVER");
        Assert.Equal(logins, accepted);
        Assert.Equal(0, statusFailures);
        // The flood was received and counted by reason, not ignored.
        var reasons = end.Counters.DropsByReason!;
        Assert.True(reasons.GetValueOrDefault(nameof(DropReason.BadMessageAuthenticator)) + reasons.GetValueOrDefault(nameof(DropReason.BadRequestAuthenticator)) > 100_000,
            string.Join(", ", reasons.Select(d => $"{d.Key} {d.Value}")));
    }

    /// <summary>Socket overflows are scored by the share of valid datagrams received alongside them.</summary>
    [Theory]
    [InlineData(0, 0, 1.0)]          // nothing received: an overflow with a stalled receive loop is all distress
    [InlineData(1000, 0, 1.0)]       // an overload of real requests
    [InlineData(100_000, 99_995, 0.00005)] // a forged flood beside 5 logins
    [InlineData(10, 12, 0.0)]        // counters read a moment apart: never negative
    public void SocketOverflows_AreScoredByTheValidShareReceived(long received, long invalid, double share) =>
        Assert.Equal(share, Health.DropsProbe.ValidShare(received, invalid), 6);

    private static string Describe(Server.Health.ServerStatus s) =>
        $"zone {s.Health.Zone}, score {s.Health.Score:0.000}, sustained {s.Health.Sustained:0.000}; changes: "
        + string.Join("; ", s.Health.RecentChanges.Select(c => $"{c.From}->{c.To} by {c.Cause} (score {c.Score:0.000})"))
        + "; probes: " + string.Join(" ", s.Health.Probes.Select(p => $"{p.Name}={p.Headroom:0.00} {(p.Healthy ? "" : "DOWN ")}({p.Detail})"));
}
