using System.Diagnostics;
using System.Globalization;
using System.Net;
using Forewarn.Bench.Failover;
using Forewarn.Bench.Load;

namespace Forewarn.Bench.Noise;

/// <summary>How quickly the monitor sees one true degradation.</summary>
public sealed record DetectionResult
{
    public required string Degradation { get; init; }
    public required string How { get; init; }
    /// <summary>Seconds from the start of the degradation to the first zone change away from Accept; null if none within the limit.</summary>
    public double? ZoneChangeAfter { get; init; }
    public string? To { get; init; }
    public string? Cause { get; init; }
    /// <summary>For a forecast move: how long before the sustained score crossed.</summary>
    public double? LeadSeconds { get; init; }
    /// <summary>For the overload ramp: the offered load, as a share of the measured capacity, when the zone moved.</summary>
    public double? OfferedShareAtChange { get; init; }
    public long Failovers { get; init; }
}

/// <summary>
/// The other half of the noise benchmark: true degradations of a server carrying a steady load, each on
/// a fresh server, and how long the monitor takes to move the zone. A calmer monitor must not be a
/// blinder one.
/// </summary>
public sealed class DetectRunner(NoiseOptions options)
{
    private const string Secret = "fleet-secret";
    private const double BaseRate = 200;

    public static readonly string[] All = ["workers", "slow-store", "cpu-hog", "fail-accounting", "overload"];

    public async Task<IReadOnlyList<DetectionResult>> RunAsync(IReadOnlyList<string> degradations, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(options.WorkDirectory);
        var results = new List<DetectionResult>();
        double? capacity = null;
        foreach (var degradation in degradations)
        {
            if (degradation == "overload")
                capacity ??= await new NoiseRunner(options with { WorkDirectory = Path.Combine(options.WorkDirectory, "capacity") }).MeasureCapacityAsync(log, cancellationToken).ConfigureAwait(false);
            var result = await RunOneAsync(degradation, capacity ?? 0, cancellationToken).ConfigureAwait(false);
            log?.Invoke(Describe(result));
            results.Add(result);
        }
        return results;
    }

    public static string Describe(DetectionResult r)
    {
        var c = CultureInfo.InvariantCulture;
        return string.Create(c, $"{r.Degradation} ({r.How}): ")
            + (r.ZoneChangeAfter is { } after ? string.Create(c, $"zone -> {r.To} after {after:0.000} s by {r.Cause}") : "no zone change")
            + (r.LeadSeconds is { } lead ? string.Create(c, $", forecast lead {lead:0.0} s") : "")
            + (r.OfferedShareAtChange is { } share ? string.Create(c, $", at {share:0} % of capacity") : "");
    }

    private FailoverOptions NodeOptions(string directory) => new() { ServerCommand = options.ServerCommand, WorkDirectory = directory, Secret = Secret };

    private async Task<ServerNode> StartAsync(string name, IEnumerable<string> settings, CancellationToken cancellationToken)
    {
        var node = await ServerNode.PrepareAsync(0, options.ServerAddress, NodeOptions(Path.Combine(options.WorkDirectory, name)), [.. settings], cancellationToken).ConfigureAwait(false);
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        return node;
    }

    private LoadOptions Load(double rate, TimeSpan duration, LoadKind kind = LoadKind.Pap) => new()
    {
        Server = new IPEndPoint(options.ServerAddress, kind == LoadKind.Accounting ? 1813 : 1812),
        Secret = System.Text.Encoding.UTF8.GetBytes(Secret),
        Kind = kind,
        UserFormat = "u",
        Password = "pw",
        Rate = rate,
        Outstanding = 64,
        Duration = duration,
        Warmup = TimeSpan.FromSeconds(1),
        Sockets = 4,
        SourceAddresses = [IPAddress.Parse("127.3.0.1"), IPAddress.Parse("127.3.0.2")],
        Timeout = TimeSpan.FromSeconds(5),
    };

    private async Task<DetectionResult> RunOneAsync(string degradation, double capacity, CancellationToken cancellationToken)
    {
        string[] settings = degradation is "workers" or "slow-store" ? ["Forewarn:Workers=16"] : [];
        await using var node = await StartAsync("detect-" + degradation, settings, cancellationToken).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromSeconds(6), cancellationToken).ConfigureAwait(false);
        var kind = degradation == "fail-accounting" ? LoadKind.Accounting : LoadKind.Pap;
        var limit = TimeSpan.FromSeconds(25);
        // A steady load for 5 s, then the degradation while the same load goes on.
        // The stalled and slow stores carry the failover benchmark's fleet: 1,000 devices at a login a second.
        double rate = degradation is "workers" or "slow-store" ? 1000 : BaseRate;
        var steady = new LoadGenerator(Load(rate, TimeSpan.FromSeconds(5) + limit, kind)).RunAsync(null, cancellationToken);
        Process? hog = null;
        string how = "";
        var ramp = Task.CompletedTask;
        await Task.Delay(TimeSpan.FromSeconds(6), cancellationToken).ConfigureAwait(false);
        var degradedAt = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        switch (degradation)
        {
            case "workers":
                how = "16 workers, 1,000 logins/s, every lookup stalls 5 s";
                await node.DrillAsync("slow-store", limit.TotalSeconds, 25, cancellationToken).ConfigureAwait(false);
                break;
            case "slow-store":
                how = "16 workers, 1,000 logins/s, lookups ramped from 5 to 50 ms over 10 s (capacity falls below the load at 16 ms)";
                ramp = Task.Run(async () =>
                {
                    for (int step = 0; step <= 20; step++)
                    {
                        await node.DrillAsync("slow-store", limit.TotalSeconds, 0.025 + 0.225 * step / 20, cancellationToken).ConfigureAwait(false);
                        await Task.Delay(500, cancellationToken).ConfigureAwait(false);
                    }
                }, cancellationToken);
                break;
            case "cpu-hog":
                if (Environment.UserName == "root" && node.ProcessId is int pid)
                {
                    how = "server pinned to core 0, a SCHED_FIFO process there busy 90 ms of every 100";
                    using var pin = Process.Start(new ProcessStartInfo("taskset", ["-a", "-p", "-c", "0", pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false, RedirectStandardOutput = true })!;
                    await pin.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                    hog = Process.Start(new ProcessStartInfo("chrt", ["-f", "50", "taskset", "-c", "0", "/usr/bin/python3", "-c",
                        "import time\nwhile True:\n    t = time.monotonic()\n    while time.monotonic() - t < 0.09: pass\n    time.sleep(0.01)\n"]) { UseShellExecute = false });
                }
                else
                {
                    how = "drill: a spinning thread per core inside the server (not root: no real-time hog)";
                    await node.DrillAsync("cpu-hog", limit.TotalSeconds, 1, cancellationToken).ConfigureAwait(false);
                }
                break;
            case "fail-accounting":
                how = "accounting commits fail (200 accounting requests/s)";
                await node.DrillAsync("fail-accounting", limit.TotalSeconds, 1, cancellationToken).ConfigureAwait(false);
                break;
            case "overload":
                how = $"offered load ramped from 50 % of the capacity within the objective ({capacity:0}/s) by +10 %/s to 200 %";
                ramp = new LoadGenerator(Load(capacity * 0.5, limit) with { RampPerSecond = capacity * 0.1, RampTo = capacity * 2 }).RunAsync(null, cancellationToken);
                break;
            default:
                throw new ArgumentException($"unknown degradation '{degradation}': {string.Join(", ", All)}");
        }
        // A drill starts inside the server: its own clock says when (the admin call itself may take a while on a busy machine).
        if (hog is null && degradation != "overload" && await node.DrillStartedAsync(cancellationToken).ConfigureAwait(false) is { } started)
            degradedAt = started;
        (DateTimeOffset At, string To, string Cause, double? LeadSeconds)? change = null;
        try
        {
            while (clock.Elapsed < limit && change is null)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                var changes = await node.ZoneChangesAsync(cancellationToken).ConfigureAwait(false);
                change = changes.Where(c => c.At >= degradedAt && c.To != "Accept").Cast<(DateTimeOffset, string, string, double?)?>().FirstOrDefault();
            }
            // Let a forecast move's lead time be measured.
            await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
            if (change is { Cause: "Forecast" } first)
                change = (await node.ZoneChangesAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(c => c.At == first.At);
        }
        finally
        {
            hog?.Kill();
            hog?.Dispose();
        }
        var advisories = await node.AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);
        await node.StopDrillAsync(cancellationToken).ConfigureAwait(false);
        await node.CrashAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(steady, ramp).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException)
        {
            // The drill ramp's last steps may meet the stopped server.
        }
        double? after = change is { } c ? (c.At - degradedAt).TotalSeconds : null;
        return new DetectionResult
        {
            Degradation = degradation,
            How = how,
            ZoneChangeAfter = after is null ? null : Math.Round(after.Value, 3),
            To = change?.To,
            Cause = change?.Cause,
            LeadSeconds = change?.LeadSeconds is { } lead ? Math.Round(lead, 2) : null,
            OfferedShareAtChange = degradation == "overload" && after is { } a ? Math.Round(50 + 10 * a) : null,
            Failovers = advisories.Failovers,
        };
    }

    public static string Table(IReadOnlyList<DetectionResult> results)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine("| degradation | how | zone change after (s) | to | cause | forecast lead (s) |");
        text.AppendLine("|---|---|---:|---|---|---:|");
        foreach (var r in results)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Degradation} | {r.How} | {(r.ZoneChangeAfter is { } a ? a.ToString("0.000", CultureInfo.InvariantCulture) : "none in 25 s")}{(r.OfferedShareAtChange is { } s ? $" ({s:0} % of capacity)" : "")} | {r.To ?? "–"} | {r.Cause ?? "–"} | {(r.LeadSeconds is { } l ? l.ToString("0.0", CultureInfo.InvariantCulture) : "–")} |"));
        }
        return text.ToString();
    }
}
