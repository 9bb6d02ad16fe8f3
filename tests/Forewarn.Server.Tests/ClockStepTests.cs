using System.Net;
using System.Text;
using Forewarn.Bench.Faults;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server.Tests;

/// <summary>
/// The wall clock stepped under a running server (NTP correcting a bad boot time, an operator's
/// <c>date -s</c>): an hour forward, then two hours back, while NASes send accounting. The server's
/// clock is moved with libfaketime (Debian's faketime), for its process alone, the monotonic clock left
/// alone as the kernel leaves it. Nothing may notice but the timestamps: no zone change, no alert, and a
/// retransmission that straddles a step is still recognised as the record already stored.
/// </summary>
[Collection(nameof(Serial))]
public sealed class ClockStepTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const string Secret = "clock-secret";
    private static readonly string FakeTime = $"/usr/lib/{(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "aarch64" : "x86_64")}-linux-gnu/faketime/libfaketime.so.1";
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "forewarn-clock-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [SkippableFact]
    public async Task ClockSteppedForwardAndBack_NoZoneChangeNoAlert_RetransmissionsAcrossTheStepStoredOnce()
    {
        Requires.That(File.Exists(FakeTime), $"needs libfaketime ({FakeTime}, Debian package faketime)");
        var data = Path.Combine(_root, "data");
        var secretFile = Path.Combine(_root, "secret");
        await File.WriteAllTextAsync(secretFile, Secret);
        var added = await Peer.RunAsync("/usr/bin/env", ["dotnet", Program, "clients", "add", "fleet", "--address", "127.3.0.0/16", "--secret-file", secretFile, "--data", data]);
        Assert.True(added.ExitCode == 0, added.ToString());
        var offset = Path.Combine(_root, "offset");
        await File.WriteAllTextAsync(offset, "+0\n");
        var environment = new Dictionary<string, string>
        {
            ["LD_PRELOAD"] = FakeTime,
            ["FAKETIME_TIMESTAMP_FILE"] = offset,
            // Read the file again at most every second; fake CLOCK_REALTIME only, as a real step does.
            ["FAKETIME_CACHE_DURATION"] = "1",
            ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1",
            // Without this, libfaketime rewrites the timeouts of .NET's monotonic condition waits and its
            // timer, finalizer and I/O threads spin (two cores busy on an idle server).
            ["FAKETIME_FORCE_MONOTONIC_FIX"] = "0",
        };
        await using var server = await ServerProcess.StartAsync(data, environment);
        var acct = new IPEndPoint(IPAddress.Loopback, server.AcctPort);
        using var fleet = new AccountingFleet(acct, Secret, nases: 4, window: 16, rate: 200, TimeSpan.FromSeconds(1));
        using var nas = new UdpPeer("127.3.1.1");
        var status = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept && fleet.Acknowledged > 400, TimeSpan.FromSeconds(20));
        Assert.Equal(Zone.Accept, status.Health.Zone);
        // Start-up settled first (warm-up over, every probe at full headroom): the first seconds of a
        // fresh server are slow for reasons of their own, and this test is about the clock.
        status = await server.WaitForAsync(s => !s.Health.WarmingUp && s.Health.Probes.All(p => p.Headroom >= 0.9), TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(2));
        status = await server.StatusAsync();
        int changesBefore = status.Health.RecentChanges.Count;
        var before = status.Health.At;
        // Every probe that dips, as the server reported it, for the reader of a failure.
        var dips = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stopWatching = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stopWatching.IsCancellationRequested)
            {
                var s = await server.StatusAsync();
                foreach (var p in s.Health.Probes.Where(p => p.Headroom < 0.5))
                    dips.Enqueue($"{s.Health.At:HH:mm:ss.f} {p.Name} {p.Headroom:0.00}: {p.Detail}");
                await Task.Delay(100);
            }
        });

        // A record stored; its answer "lost"; the step; the NAS retransmits it (Acct-Delay-Time grown).
        Assert.True(await SendAsync(nas, acct, "straddles-forward", delay: 0));
        await StepAsync(offset, "+3600");
        status = await server.StatusAsync();
        output.WriteLine($"server clock before {before:HH:mm:ss}, after the forward step {status.Health.At:HH:mm:ss}");
        Assert.True(status.Health.At - before > TimeSpan.FromMinutes(55), $"the server's clock did not move: {before:O} -> {status.Health.At:O}");
        Assert.True(await SendAsync(nas, acct, "straddles-forward", delay: 3));
        await Task.Delay(TimeSpan.FromSeconds(3));

        Assert.True(await SendAsync(nas, acct, "straddles-back", delay: 0));
        await StepAsync(offset, "-3600");
        Assert.True(await SendAsync(nas, acct, "straddles-back", delay: 3));
        Assert.True(await SendAsync(nas, acct, "straddles-forward", delay: 9));
        await Task.Delay(TimeSpan.FromSeconds(4));

        await stopWatching.CancelAsync();
        await watcher;
        foreach (var dip in dips)
            output.WriteLine("dip: " + dip);
        status = await server.StatusAsync();
        output.WriteLine($"zone {status.Health.Zone}; changes: {string.Join("; ", status.Health.RecentChanges.Select(c => $"{c.From}->{c.To} {c.Cause}"))}; " +
            $"alerts: {string.Join("; ", status.Health.RecentAlerts.Select(a => $"{a.Source}: {a.Message}"))}; " +
            $"probes: {string.Join("; ", status.Health.Probes.Select(p => $"{p.Name} {p.Headroom:0.00} {p.Detail}"))}");
        Assert.Equal(Zone.Accept, status.Health.Zone);
        Assert.Equal(changesBefore, status.Health.RecentChanges.Count);
        Assert.DoesNotContain(status.Health.RecentAlerts, a => a.Severity != AlertSeverity.Info);

        Assert.True(await fleet.DrainAsync(TimeSpan.FromSeconds(20)), $"{fleet.Pending} records unacknowledged");
        await server.KillAsync();
        using var store = StoreFactory.Open(data, postgres: null);
        var count = await fleet.CountAsync(store);
        output.WriteLine(count.ToString());
        var records = await store.QueryAsync(new AccountingQuery(Limit: int.MaxValue));
        Assert.Single(records, r => r.SessionId == "straddles-forward");
        Assert.Single(records, r => r.SessionId == "straddles-back");
        // The fleet's records, each once, beside the two sent by hand (which the fleet counts as unknown).
        Assert.Equal(count.Issued + 2, records.Count);
        Assert.True(count is { Missing: 0, Duplicates: 0, NeverAcknowledged: 0, Unknown: 2 }, count.ToString());
    }

    /// <summary>Writes the new offset for libfaketime and waits until the server has read it (its cache lasts a second).</summary>
    private static async Task StepAsync(string offsetFile, string offset)
    {
        await File.WriteAllTextAsync(offsetFile, offset + "\n");
        await Task.Delay(TimeSpan.FromSeconds(2.5));
    }

    /// <summary>An Accounting-Request Start for <paramref name="session"/> (Acct-Delay-Time when retransmitted); true when a verified answer came.</summary>
    private static async Task<bool> SendAsync(UdpPeer nas, IPEndPoint server, string session, uint delay)
    {
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, (byte)Random.Shared.Next(256), new byte[16]);
        writer.AddText(AttributeTypes.UserName, "clock");
        writer.AddUInt32(AttributeTypes.AcctStatusType, (uint)AcctStatusType.Start);
        writer.AddText(AttributeTypes.AcctSessionId, session);
        writer.Add(AttributeTypes.NasIpAddress, [127, 3, 1, 1]);
        if (delay > 0)
            writer.AddUInt32(AttributeTypes.AcctDelayTime, delay);
        var packet = buffer.AsSpan(0, writer.Complete(Encoding.UTF8.GetBytes(Secret))).ToArray();
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var answer = await nas.ExchangeAsync(server, packet);
            if (answer is not null && RadiusCrypto.VerifyResponseAuthenticator(answer, packet.AsSpan(4, 16), Encoding.UTF8.GetBytes(Secret)))
                return true;
        }
        return false;
    }
}
