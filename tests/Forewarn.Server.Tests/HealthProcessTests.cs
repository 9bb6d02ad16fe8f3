using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Forewarn.Core.Health;
using Forewarn.Server.Health;

namespace Forewarn.Server.Tests;

/// <summary>Machine-wide measurements (CPU, run queue) would see other tests' load: these run alone.</summary>
[CollectionDefinition(nameof(Serial), DisableParallelization = true)]
public sealed class Serial;

/// <summary>The health monitor of a real server process, seen through its admin API (what `forewarn status` prints).</summary>
[Collection(nameof(Serial))]
public sealed class HealthProcessTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    /// <summary>Leaves machine-wide probes out of the score, for tests about one cause.</summary>
    private static readonly string[] OnlyTheCauseUnderTest =
        ["--set", "Forewarn:Health:Weights:cpu=0", "--set", "Forewarn:Health:Weights:processes=0", "--set", "Forewarn:Health:Weights:latency=0"];

    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-health-" + Guid.NewGuid().ToString("N")[..12]);

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

    private static readonly string[] ProbeNames =
        ["workers", "queue", "latency", "slow-work", "drops", "cpu", "memory", "network", "processes", "drill", "radius-listeners", "tacacs-listeners", "user-store", "accounting-sink", "log-sink"];

    [SkippableFact]
    public async Task Status_ShowsRealFiguresForEveryProbe()
    {
        await using var server = await ServerProcess.StartAsync(_data);
        // Let the service checks run once and the CPU probe take two readings.
        var status = await server.WaitForAsync(s => s.Health.Probes.All(p => p.Detail != "not checked yet"), TimeSpan.FromSeconds(10));
        Assert.Equal(ProbeNames, status.Health.Probes.Select(p => p.Name));
        foreach (var probe in status.Health.Probes)
        {
            Assert.False(double.IsNaN(probe.Raw), $"{probe.Name} has no figure: {probe.Detail}");
            Assert.InRange(probe.Headroom, 0, 1);
            Assert.True(probe.Healthy, $"{probe.Name}: {probe.Detail}");
        }
        Assert.Contains("2 listeners answered", status.Health.Probes.Single(p => p.Name == "radius-listeners").Detail, StringComparison.Ordinal);
        Assert.Contains("1 TACACS+ listener answered", status.Health.Probes.Single(p => p.Name == "tacacs-listeners").Detail, StringComparison.Ordinal);
        Assert.Contains("MiB available", status.Health.Probes.Single(p => p.Name == "memory").Detail, StringComparison.Ordinal);
        Assert.Contains("run queue", status.Health.Probes.Single(p => p.Name == "processes").Detail, StringComparison.Ordinal);

        // The command line renders the same.
        var text = await Peer.RunAsync("/usr/bin/env", ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll"), "status", "--data", _data]);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("Zone [default]", text.Output, StringComparison.Ordinal);
        foreach (var name in ProbeNames)
            Assert.Contains(name, text.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// Sends PAP Access-Requests at <paramref name="rate"/>(elapsed seconds) per second; answers are read
    /// and counted. <c>LongestGap</c> is the longest this sender went without a turn (a stall of the test
    /// process itself, which the server reads as a lull in the load).
    /// </summary>
    private static async Task<(int Sent, int Answered, TimeSpan LongestGap)> LoadAsync(int port, Func<double, double> rate, TimeSpan duration)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int answered = 0;
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                    Interlocked.Increment(ref answered);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        var target = new IPEndPoint(IPAddress.Loopback, port);
        var clock = Stopwatch.StartNew();
        int sent = 0;
        double credit = 0;
        var last = TimeSpan.Zero;
        var longestGap = TimeSpan.Zero;
        while (clock.Elapsed < duration)
        {
            await Task.Delay(5);
            var now = clock.Elapsed;
            if (now - last > longestGap)
                longestGap = now - last;
            // At most 20 ms of sends at once: if this process stalls, the missed sends are skipped, not
            // released as one burst (a burst would queue at the server and read as a latency breach).
            double perSecond = rate(now.TotalSeconds);
            credit = Math.Min(credit + perSecond * (now - last).TotalSeconds, Math.Max(1, perSecond * 0.02));
            last = now;
            for (; credit >= 1; credit--)
            {
                var request = UdpPeer.AccessRequest((byte)sent, "load", "pw", "testing123");
                await socket.SendToAsync(request, SocketFlags.None, target);
                sent++;
            }
        }
        await Task.Delay(500);
        await stop.CancelAsync();
        await reader;
        return (sent, answered, longestGap);
    }

    /// <summary>
    /// A slow user store (drill: 12.5 ms per lookup) and a load that ramps up: the workers fill, and the
    /// zone leaves Accept — moved by the forecast — before p99 latency breaches the 50 ms objective.
    /// The ramp is this test's premise: when the test process itself stalls (measured in CI: 1 s without
    /// a send, read by the server as a lull, so the score recovered before it crossed), the attempt says
    /// nothing about the forecast and is made again on a fresh server, at most three times.
    /// </summary>
    [SkippableFact]
    public async Task SlowStore_ExhaustsWorkers_TheForecastMovesTheZoneBeforeLatencyBreaches()
    {
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll"), "users", "add", "load", "--password", "pw", "--methods", "pap,mschapv2", "--data", _data])).ExitCode);
        for (int attempt = 1; ; attempt++)
        {
            var (stalled, verdict) = await SlowStoreRampAsync();
            if (verdict is null)
                return;
            if (stalled is null || attempt == 3)
                Assert.Fail(verdict);
            output.WriteLine($"attempt {attempt}: the load generator stalled for {stalled.Value.TotalMilliseconds:0} ms, so the ramp was not one; again ({verdict})");
        }
    }

    /// <summary>One attempt of the slow-store ramp: null when the forecast led, else why not; and the sender's stall, if it had one.</summary>
    private async Task<(TimeSpan? Stalled, string? Verdict)> SlowStoreRampAsync()
    {
        await using var server = await ServerProcess.StartAsync(_data, ["--set", "Forewarn:Admin:Drills=true", "--set", "Forewarn:Workers=4", "--set", "Forewarn:QueueCapacity=2000",
            "--set", "Forewarn:Health:LatencyWindowSeconds=3", "--set", "Forewarn:Health:ForecastHorizonSeconds=8", .. OnlyTheCauseUnderTest]);
        await server.WaitForAsync(s => s.Health.Zone == Zone.Accept && s.Health.Probes.All(p => p.Healthy), TimeSpan.FromSeconds(10));
        // Warm up (the first requests pay for JIT compilation), then let the latency window forget them.
        await LoadAsync(server.AuthPort, _ => 100, TimeSpan.FromSeconds(1));
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        await server.PostAsync("/api/drill?kind=slow-store&seconds=40&intensity=0.0625");

        // 4 workers × 12.5 ms = 320 requests/s at most; ramp from 40/s to 390/s over 14 s. Latency
        // breaches 50 ms only once requests queue for 37.5 ms, well after the workers' trend is clear.
        var watch = Task.Run(async () =>
        {
            // A breach of the objective is p99 above it for three polls running (300 ms), not one spike.
            DateTimeOffset? moved = null, breached = null, over = null;
            int overCount = 0;
            var trace = new List<string>();
            var deadline = DateTime.UtcNow.AddSeconds(18);
            while (DateTime.UtcNow < deadline && (moved is null || breached is null))
            {
                var s = await server.StatusAsync();
                trace.Add($"{s.Health.At:HH:mm:ss.f} {s.Health.Zone} score {s.Health.Score:0.000} pred {s.Health.Predicted:0.000} " +
                    string.Join(" ", s.Health.Probes.Where(p => p.Headroom < 1).Select(p => $"{p.Name}={p.Headroom:0.00}({p.Raw:0.#})")));
                moved ??= s.Health.Zone != Zone.Accept ? s.Health.At : null;
                if (s.Health.Probes.Single(p => p.Name == "latency").Raw > 50)
                {
                    over ??= s.Health.At;
                    if (++overCount >= 3)
                        breached ??= over;
                }
                else
                {
                    over = null;
                    overCount = 0;
                }
                await Task.Delay(100);
            }
            return (moved, breached, trace);
        });
        var (_, _, longestGap) = await LoadAsync(server.AuthPort, t => 40 + 25 * t, TimeSpan.FromSeconds(14));
        var (polledMove, breachedAt, trace) = await watch;
        foreach (var line in trace)
            output.WriteLine(line);
        TimeSpan? stalled = longestGap > TimeSpan.FromMilliseconds(250) ? longestGap : null;
        var status = await server.StatusAsync();
        var changes = string.Join("; ", status.Health.RecentChanges.Select(c => $"{c.At:HH:mm:ss.f} {c.From}->{c.To} {c.Cause} {c.LeadTime}"));
        var change = status.Health.RecentChanges.FirstOrDefault(c => c.From == Zone.Accept);
        if (polledMove is null || change is null)
            return (stalled, "the zone never left Accept: " + changes);
        // The server's own record of the move: exact even if this process's poller was late.
        if (breachedAt is not null && change.At >= breachedAt)
            return (stalled, $"zone moved at {change.At:HH:mm:ss.f}, latency breached at {breachedAt:HH:mm:ss.f}");
        // The forecast made a move during the ramp (Accept -> Hold or Hold -> Defer), and its lead time was measured.
        var forecast = status.Health.RecentChanges.FirstOrDefault(c => c.Cause == ZoneCause.Forecast && c.LeadTime is not null);
        if (forecast is null || forecast.LeadTime <= TimeSpan.Zero)
            return (stalled, "no forecast move with a lead time: " + changes);
        output.WriteLine($"forecast lead time {forecast.LeadTime!.Value.TotalSeconds:0.0} s; zone moved {(breachedAt is null ? "and latency never breached" : $"{(breachedAt - change.At)!.Value.TotalSeconds:0.0} s before latency breached")}");
        return (stalled, null);
    }

    /// <summary>
    /// A CPU hog that leaves the service within its objective defers no one: one spinning process per
    /// core and one more take the whole machine for 15 s while the server answers 50 logins a second.
    /// The machine reads saturated; the service does not strain, so the zone stays.
    /// </summary>
    [SkippableFact]
    public async Task CpuHog_ThatLeavesLatencyWithinTheObjective_DefersNoOne()
    {
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll"), "users", "add", "load", "--password", "pw", "--methods", "pap", "--data", _data])).ExitCode);
        await using var server = await ServerProcess.StartAsync(_data);
        await Task.Delay(TimeSpan.FromSeconds(6));
        await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(10));
        // The user's first login (a PBKDF2 derivation, then remembered) and the request path's first
        // compilation happen before the hog: this test is about a saturated machine, not a cold server.
        await LoadAsync(server.AuthPort, _ => 50, TimeSpan.FromSeconds(2));
        var hogs = Enumerable.Range(0, Environment.ProcessorCount + 1)
            .Select(_ => Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!).ToList();
        double busiest = 0, worstLatency = 0;
        // The lowest headroom each server-side probe showed, for the reader of a failure.
        var lowest = new Dictionary<string, (double Headroom, string? Detail)>();
        try
        {
            var load = LoadAsync(server.AuthPort, _ => 50, TimeSpan.FromSeconds(15));
            while (!load.IsCompleted)
            {
                var s = await server.StatusAsync();
                busiest = Math.Max(busiest, s.Health.Probes.Single(p => p.Name == "cpu").Raw);
                worstLatency = Math.Max(worstLatency, s.Health.Probes.Single(p => p.Name == "latency").Raw);
                foreach (var probe in s.Health.Probes.Where(p => p.Kind == ProbeKind.Server))
                {
                    if (!lowest.TryGetValue(probe.Name, out var low) || probe.Headroom < low.Headroom)
                        lowest[probe.Name] = (probe.Headroom, probe.Detail);
                }
                await Task.Delay(250);
            }
            var (sent, answered, _) = await load;
            Assert.True(answered >= sent * 0.99, $"{answered} of {sent} answered");
        }
        finally
        {
            foreach (var hog in hogs)
            {
                hog.Kill();
                hog.Dispose();
            }
        }
        var status = await server.StatusAsync();
        output.WriteLine($"machine CPU up to {busiest:0} %, latency figure up to {worstLatency:0.###} ms; zone changes {status.Health.RecentChanges.Count}");
        Assert.True(busiest > 90, $"the hog did not saturate the machine: {busiest:0} %");
        // No one deferred: never Defer, no FAILOVER (the saturated machine may hold new clients back at most).
        Assert.True(status.Health.RecentChanges.All(c => c.To != Zone.Defer), string.Join("; ", status.Health.RecentChanges.Select(c => $"{c.From}->{c.To} by {c.Cause} (score {c.Score:0.000})"))
            + "; lowest headroom seen: " + string.Join("; ", lowest.Select(l => $"{l.Key} {l.Value.Headroom:0.000} ({l.Value.Detail})")));
        Assert.Equal(0, status.Advisory!.Failovers);
    }

    /// <summary>
    /// A CPU hog that breaks the latency objective moves the zone: the server is pinned to one core, and
    /// a real-time process (SCHED_FIFO) on that core takes 90 ms of every 100, so requests wait up to
    /// 90 ms; the machine as a whole is half idle. Needs root (chrt -f).
    /// </summary>
    [SkippableFact]
    public async Task CpuHog_ThatBreaksTheLatencyObjective_MovesTheZone()
    {
        Requires.Root("a SCHED_FIFO hog (chrt -f) on the server's core");
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll"), "users", "add", "load", "--password", "pw", "--methods", "pap", "--data", _data])).ExitCode);
        await using var server = await ServerProcess.StartAsync(_data);
        var pin = await Peer.RunAsync("taskset", ["-a", "-p", "-c", "0", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(pin.ExitCode == 0, pin.ToString());
        await Task.Delay(TimeSpan.FromSeconds(6));
        await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(10));
        var hog = Process.Start(new ProcessStartInfo("chrt", ["-f", "50", "taskset", "-c", "0", "/usr/bin/python3", "-c",
            "import time\nwhile True:\n    t = time.monotonic()\n    while time.monotonic() - t < 0.09: pass\n    time.sleep(0.01)\n"]) { UseShellExecute = false })!;
        ServerStatus status;
        try
        {
            var load = LoadAsync(server.AuthPort, _ => 100, TimeSpan.FromSeconds(15));
            status = await server.WaitForAsync(s => s.Health.Zone != Zone.Accept, TimeSpan.FromSeconds(15));
            await load;
        }
        finally
        {
            hog.Kill();
            hog.Dispose();
        }
        Assert.True(status.Health.Zone != Zone.Accept, $"zone {status.Health.Zone}; " + string.Join(" ", status.Health.Probes.Select(p => $"{p.Name}={p.Headroom:0.00} ({p.Detail})")));
        // Moved by the service's own evidence: latency, queueing or the slow-work pool's wait past its
        // objective (which of them depends on where the hog preempts the server), not by machine CPU.
        output.WriteLine(string.Join("\n", status.Health.Probes.Select(p => $"{p.Name}={p.Headroom:0.00} ({p.Detail})")));
        var lowest = status.Health.Probes.Where(p => p.Kind == ProbeKind.Server).MinBy(p => p.Headroom)!;
        Assert.True(lowest.Name is "latency" or "queue" or "workers" or "slow-work", $"lowest {lowest.Name}: {lowest.Detail}");
        var recovered = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(30));
        Assert.Equal(Zone.Accept, recovered.Health.Zone);
    }

    [SkippableFact]
    public async Task FailingAccountingSink_DefersEveryClient_Alerts_AndSendsNoUndurableAnswer()
    {
        await using var webhook = new WebhookReceiver();
        await using var server = await ServerProcess.StartAsync(_data, [.. OnlyTheCauseUnderTest, "--set", "Forewarn:Admin:Drills=true", "--set", $"Forewarn:Health:AlertWebhook={webhook.Url}"]);
        await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(10));
        await server.PostAsync("/api/drill?kind=fail-accounting&seconds=6");
        var status = await server.WaitForAsync(s => s.Health.Zone == Zone.Defer, TimeSpan.FromSeconds(10));
        Assert.Equal(Zone.Defer, status.Health.Zone);
        Assert.Equal(ZoneCause.DependentService, status.Health.RecentChanges[^1].Cause);
        Assert.Contains(status.Health.RecentAlerts, a => a.Severity == AlertSeverity.Critical && a.Source == "accounting-sink");
        Assert.False(status.Health.Probes.Single(p => p.Name == "accounting-sink").Healthy);
        for (int i = 0; i < 50 && !webhook.Bodies.Any(b => b.Contains("accounting-sink", StringComparison.Ordinal)); i++)
            await Task.Delay(100);
        var alert = Assert.Single(webhook.Bodies, b => b.Contains("accounting-sink", StringComparison.Ordinal) && b.Contains("Critical", StringComparison.Ordinal));
        Assert.Contains("deferring every client", alert, StringComparison.Ordinal);

        // While the sink fails, an Accounting-Request gets no answer: nothing is acknowledged that is not on disk.
        var radclient = await Peer.RunAsync("radclient", ["-r", "1", "-t", "1", $"127.0.0.1:{server.AcctPort}", "acct", "testing123"],
            "User-Name = \"x\", Acct-Status-Type = Start, Acct-Session-Id = \"during-drill\"\n");
        Assert.DoesNotContain("Received Accounting-Response", radclient.Output, StringComparison.Ordinal);

        var restored = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(20));
        Assert.Equal(Zone.Accept, restored.Health.Zone);
        Assert.Contains(restored.Health.RecentAlerts, a => a.Source == "accounting-sink" && a.Message.Contains("restored", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task DrainAndResume_ThroughTheCommandLine()
    {
        await using var server = await ServerProcess.StartAsync(_data, OnlyTheCauseUnderTest);
        await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(15));
        var forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
        var drain = await Peer.RunAsync("/usr/bin/env", ["dotnet", forewarn, "drain", "--data", _data]);
        Assert.True(drain.ExitCode == 0, drain.ToString());
        var status = await server.WaitForAsync(s => s.Health.Zone == Zone.Defer, TimeSpan.FromSeconds(5));
        Assert.True(status.Health.Draining);
        Assert.Equal(ZoneCause.Drain, status.Health.RecentChanges[^1].Cause);
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["dotnet", forewarn, "resume", "--data", _data])).ExitCode);
        status = await server.WaitForAsync(s => s.Health.Zone == Zone.Accept, TimeSpan.FromSeconds(15));
        Assert.False(status.Health.Draining);
        Assert.Equal(Zone.Accept, status.Health.Zone);
    }
}
