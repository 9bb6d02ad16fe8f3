using System.Globalization;
using System.Net;
using System.Text;
using Forewarn.Bench.Failover;
using Forewarn.Bench.Load;

namespace Forewarn.Bench.Faults;

/// <summary>An overload run: a server whose capacity its user directory sets, offered multiples of that capacity in an open loop.</summary>
public sealed record OverloadOptions
{
    public required IReadOnlyList<string> ServerCommand { get; init; }
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "forewarn-overload-" + Guid.NewGuid().ToString("N")[..8]);
    /// <summary>
    /// What one user lookup costs (the slow-store drill, all run long) and the workers: a server whose
    /// directory is its limit (LDAP, SQL), as a production AAA server is, rather than a generator and a
    /// server fighting over two cores. 4 workers × 4 ms: about 1,000 logins a second.
    /// </summary>
    public double LookupMs { get; init; } = 4;
    public int Workers { get; init; } = 4;
    /// <summary>Offered load as multiples of the measured capacity, one phase each, in order.</summary>
    public IReadOnlyList<double> Multiples { get; init; } = [0.5, 1, 2, 5];
    public double PhaseSeconds { get; init; } = 15;
    /// <summary>After the last phase, 1-second windows at this multiple until one is as good as the first phase (at most <see cref="RecoveryWindows"/>).</summary>
    public double RecoveryMultiple { get; init; } = 0.5;
    public int RecoveryWindows { get; init; } = 30;
    /// <summary>A NAS's timeout: an answer later than this is a failure (goodput counts answers within it).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Extra server settings (--set), e.g. to compare queue disciplines in one run.</summary>
    public IReadOnlyList<string> Settings { get; init; } = [];
    public string Secret { get; init; } = "overload-secret";
    public IPAddress ServerAddress { get; init; } = IPAddress.Parse("127.0.91.1");
}

/// <summary>One phase: what was offered, what came back in time, and what the server said it dropped.</summary>
public readonly record struct OverloadPhase(string Name, double Multiple, double OfferedPerSecond, double GoodputPerSecond, long Sent, long Answered, long Lost,
    long ServerDropped, IReadOnlyDictionary<string, long> DropsByReason, double P50Ms, double P99Ms, double? ResidentMiB);

public sealed record OverloadResult(double CapacityPerSecond, IReadOnlyList<OverloadPhase> Phases, double? RecoverySeconds, IReadOnlyList<OverloadPhase> Recovery)
{
    /// <summary>The best goodput of any phase: what the server carries at its best.</summary>
    public double PeakGoodput => Phases.Max(p => p.GoodputPerSecond);
}

/// <summary>
/// Open-loop overload (issue 18): a server process with a fixed cost per lookup, its capacity measured in
/// a closed loop, then offered 0.5×, 1×, 2× and 5× of it on a fixed schedule whatever it answers. Each
/// phase reports goodput (valid answers within the timeout, per second), latency, the generator's
/// losses against the drops the server counted (a loss the server did not count is a silent one), and
/// the server's resident memory. After the last phase the load falls to 0.5×, and 1-second windows
/// measure how soon the server answers as it did before.
/// </summary>
public sealed class OverloadRunner(OverloadOptions options)
{
    private static readonly IPAddress[] Sources = [.. Enumerable.Range(1, 4).Select(i => IPAddress.Parse($"127.3.250.{i}"))];

    public async Task<OverloadResult> RunAsync(Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(options.WorkDirectory);
        await using var node = await ServerNode.PrepareAsync(0, options.ServerAddress, options.ServerCommand, options.WorkDirectory, options.Secret,
            [$"Forewarn:Workers={options.Workers}", "Forewarn:Advisory:Enabled=false", .. options.Settings], cancellationToken).ConfigureAwait(false);
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        var server = new IPEndPoint(options.ServerAddress, 1812);
        // Warm the request path before the directory slows down (the first requests pay for compilation).
        await Load(server, rate: 0, TimeSpan.FromSeconds(3), node).RunAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await node.DrillAsync("slow-store", 3600, options.LookupMs / 200, cancellationToken).ConfigureAwait(false);
        var capacity = await Load(server, rate: 0, TimeSpan.FromSeconds(8), node).RunAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        progress?.Invoke($"capacity {capacity.Throughput:0}/s (closed loop, {options.Workers} workers, {options.LookupMs} ms a lookup), p99 {capacity.LatencyP99Ms:0.0} ms");

        var phases = new List<OverloadPhase>();
        foreach (double multiple in options.Multiples)
        {
            var phase = await PhaseAsync(node, server, $"{multiple:0.##}×", multiple, capacity.Throughput, TimeSpan.FromSeconds(options.PhaseSeconds), cancellationToken).ConfigureAwait(false);
            phases.Add(phase);
            progress?.Invoke(Describe(phase));
        }
        var recovery = new List<OverloadPhase>();
        double? recoveredAfter = null;
        var reference = phases[0];
        for (int i = 0; i < options.RecoveryWindows && recoveredAfter is null; i++)
        {
            var window = await PhaseAsync(node, server, $"recovery {i + 1} s", options.RecoveryMultiple, capacity.Throughput, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            recovery.Add(window);
            if (window.Lost == 0 && window.P99Ms <= Math.Max(2 * reference.P99Ms, reference.P99Ms + 5))
                recoveredAfter = i + 1;
        }
        await node.CrashAsync().ConfigureAwait(false);
        return new OverloadResult(Math.Round(capacity.Throughput), phases, recoveredAfter, recovery);
    }

    private async Task<OverloadPhase> PhaseAsync(ServerNode node, IPEndPoint server, string name, double multiple, double capacity, TimeSpan duration, CancellationToken cancellationToken)
    {
        var before = await node.DropsAsync(cancellationToken).ConfigureAwait(false);
        var report = await Load(server, multiple * capacity, duration, node).RunAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var after = await node.DropsAsync(cancellationToken).ConfigureAwait(false);
        var reasons = after.ByReason.ToDictionary(p => p.Key, p => p.Value - before.ByReason.GetValueOrDefault(p.Key), StringComparer.Ordinal)
            .Where(p => p.Value > 0).ToDictionary(StringComparer.Ordinal);
        return new OverloadPhase(name, multiple, Math.Round(multiple * capacity), Math.Round(report.Answered / report.Seconds), report.Sent, report.Answered, report.Lost,
            after.Dropped - before.Dropped, reasons, report.LatencyP50Ms, report.LatencyP99Ms, report.ServerResidentMiB);
    }

    private LoadGenerator Load(IPEndPoint server, double rate, TimeSpan duration, ServerNode node) => new(new LoadOptions
    {
        Server = server,
        Secret = Encoding.UTF8.GetBytes(options.Secret),
        Kind = LoadKind.Pap,
        UserFormat = "u",
        Password = "pw",
        Rate = rate,
        Outstanding = 64,
        Sockets = 16,
        SourceAddresses = Sources,
        Duration = duration,
        Warmup = TimeSpan.Zero,
        Timeout = options.Timeout,
        ServerProcessId = node.ProcessId,
    });

    public static string Describe(OverloadPhase p) => string.Create(CultureInfo.InvariantCulture,
        $"{p.Name}: offered {p.OfferedPerSecond:0}/s, goodput {p.GoodputPerSecond:0}/s, p50 {p.P50Ms:0.0} ms, p99 {p.P99Ms:0.0} ms, lost {p.Lost} of {p.Sent} " +
        $"(server counted {p.ServerDropped} drops{(p.DropsByReason.Count > 0 ? ": " + string.Join(", ", p.DropsByReason.Select(r => $"{r.Key} {r.Value}")) : "")}), RSS {p.ResidentMiB:0} MiB");

    public static string Table(OverloadResult r)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Capacity (closed loop): {r.CapacityPerSecond:0} requests/s; peak goodput {r.PeakGoodput:0}/s");
        text.AppendLine();
        text.AppendLine("| offered | per second | goodput/s | of peak | p50 ms | p99 ms | lost | server counted drops | RSS MiB |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var p in r.Phases)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {p.Name} | {p.OfferedPerSecond:0} | {p.GoodputPerSecond:0} | {p.GoodputPerSecond / r.PeakGoodput:0.00} | {p.P50Ms:0.0} | {p.P99Ms:0.0} | {p.Lost} | {p.ServerDropped} | {p.ResidentMiB:0} |");
        }
        text.AppendLine();
        text.AppendLine(r.RecoverySeconds is { } s
            ? string.Create(CultureInfo.InvariantCulture, $"Load back to 0.5×: answering as before (no loss, p99 within 2× the first phase's) after {s:0} s.")
            : "Load back to 0.5×: not recovered within the recovery windows.");
        return text.ToString();
    }
}
