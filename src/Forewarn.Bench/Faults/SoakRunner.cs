using System.Globalization;
using System.Net;
using System.Text;
using Forewarn.Bench.Failover;
using Forewarn.Bench.Load;

namespace Forewarn.Bench.Faults;

public sealed record SoakOptions
{
    public required IReadOnlyList<string> ServerCommand { get; init; }
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "forewarn-soak-" + Guid.NewGuid().ToString("N")[..8]);
    public double Minutes { get; init; } = 60;
    public double WindowSeconds { get; init; } = 60;
    /// <summary>The offered load as a share of the mixed capacity measured at the start.</summary>
    public double Share { get; init; } = 0.5;
    /// <summary>The mix: shares of RADIUS PAP, MS-CHAPv2 and accounting, and TACACS+ PAP, in the offered load.</summary>
    public double Pap { get; init; } = 0.35;
    public double MsChapV2 { get; init; } = 0.25;
    public double Accounting { get; init; } = 0.25;
    public double Tacacs { get; init; } = 0.15;
    /// <summary>The server's TACACS+ port on <see cref="ServerAddress"/>.</summary>
    public int TacacsPort { get; init; } = 4949;
    public string Secret { get; init; } = "soak-secret";
    public IPAddress ServerAddress { get; init; } = IPAddress.Parse("127.0.92.1");
}

/// <summary>One window of the soak: what the server answered and what it held.</summary>
public readonly record struct SoakWindow(int Number, double AtMinutes, double OfferedPerSecond, double GoodputPerSecond, long Lost,
    double PapP99Ms, double MsChapV2P99Ms, double AccountingP99Ms, double? ResidentMiB, int? Threads, int? Descriptors, double TacacsP99Ms = 0);

public sealed record SoakResult(double CapacityPerSecond, double OfferedPerSecond, IReadOnlyList<SoakWindow> Windows)
{
    /// <summary>Windows after the first two (start-up: the JIT's tiers, the pools filling) to compare against.</summary>
    private IReadOnlyList<SoakWindow> Settled => Windows.Count > 4 ? [.. Windows.Skip(2)] : Windows;

    /// <summary>Mean of the last three settled windows over the mean of the first three, for a figure.</summary>
    public double Drift(Func<SoakWindow, double?> figure)
    {
        var values = Settled.Select(figure).Where(v => v is not null).Select(v => v!.Value).ToList();
        if (values.Count < 2)
            return double.NaN;
        int n = Math.Min(3, values.Count / 2);
        return values.TakeLast(n).Average() / values.Take(n).Average();
    }

    public long Lost => Windows.Sum(w => w.Lost);
}

/// <summary>
/// The soak (issue 18): one server process under half its measured capacity for an hour, mixed PAP,
/// MS-CHAPv2 and accounting in open loops, measured in windows: goodput, p99 per kind, the generator's
/// losses, and the server's resident memory, threads and open descriptors at the end of each window.
/// What must hold: memory and p99 flat (the last windows within 10 % of the first settled ones), no
/// thread or descriptor growth, nothing lost.
/// </summary>
public sealed class SoakRunner(SoakOptions options)
{
    private static readonly IPAddress[] Sources = [.. Enumerable.Range(1, 4).Select(i => IPAddress.Parse($"127.3.251.{i}"))];

    public async Task<SoakResult> RunAsync(Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(options.WorkDirectory);
        await using var node = await ServerNode.PrepareAsync(0, options.ServerAddress, options.ServerCommand, options.WorkDirectory, options.Secret,
            ["Forewarn:Advisory:Enabled=false", $"Forewarn:Tacacs:Port={options.TacacsPort}"], cancellationToken).ConfigureAwait(false);
        await node.RunCommandAsync(["users", "add", "m", "--password", "pw", "--methods", "mschapv2"], cancellationToken).ConfigureAwait(false);
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        var auth = new IPEndPoint(options.ServerAddress, 1812);
        var acct = new IPEndPoint(options.ServerAddress, 1813);
        var tacacs = new IPEndPoint(options.ServerAddress, options.TacacsPort);

        // The mixed capacity: the three kinds in closed loops side by side, after a warm-up run.
        await MixAsync(auth, acct, tacacs, node, rates: null, TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
        var (closed, closedTacacs) = await MixAsync(auth, acct, tacacs, node, rates: null, TimeSpan.FromSeconds(8), cancellationToken).ConfigureAwait(false);
        double capacity = closed.Sum(r => r.Throughput) + closedTacacs.PerSecond;
        double offered = options.Share * capacity;
        double[] rates = [offered * options.Pap, offered * options.MsChapV2, offered * options.Accounting, offered * options.Tacacs];
        progress?.Invoke($"mixed capacity {capacity:0}/s; offering {offered:0}/s ({rates[0]:0} PAP, {rates[1]:0} MS-CHAPv2, {rates[2]:0} accounting, {rates[3]:0} TACACS+ PAP) for {options.Minutes:0.#} min");

        var windows = new List<SoakWindow>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int count = Math.Max(1, (int)Math.Round(options.Minutes * 60 / options.WindowSeconds));
        for (int i = 1; i <= count; i++)
        {
            var (reports, t) = await MixAsync(auth, acct, tacacs, node, rates, TimeSpan.FromSeconds(options.WindowSeconds), cancellationToken).ConfigureAwait(false);
            int? pid = node.ProcessId;
            var window = new SoakWindow(i, Math.Round(clock.Elapsed.TotalMinutes, 2), Math.Round(offered), Math.Round(reports.Sum(r => r.Answered / r.Seconds) + (t.Completed - t.Unexpected) / t.Seconds),
                reports.Sum(r => r.Lost) + t.Unexpected + t.Errors, reports[0].LatencyP99Ms, reports[1].LatencyP99Ms, reports[2].LatencyP99Ms,
                pid is int p ? ServerProcess.ResidentBytes(p) / 1048576.0 : null, pid is int q ? ServerProcess.Threads(q) : null, pid is int r ? ServerProcess.OpenDescriptors(r) : null, t.P99Ms);
            windows.Add(window);
            progress?.Invoke(Describe(window));
        }
        await node.CrashAsync().ConfigureAwait(false);
        return new SoakResult(Math.Round(capacity), Math.Round(offered), windows);
    }

    /// <summary>PAP, MS-CHAPv2, accounting and TACACS+ PAP side by side: closed loops (rates null) or open loops at the given rates.</summary>
    private async Task<(LoadReport[] Radius, TacacsLoadReport Tacacs)> MixAsync(IPEndPoint auth, IPEndPoint acct, IPEndPoint tacacs, ServerNode node, double[]? rates, TimeSpan duration,
        CancellationToken cancellationToken)
    {
        LoadOptions Options(LoadKind kind, string user, IPEndPoint server, int index) => new()
        {
            Server = server,
            Secret = Encoding.UTF8.GetBytes(options.Secret),
            Kind = kind,
            UserFormat = user,
            Password = "pw",
            Rate = rates?[index] ?? 0,
            Outstanding = 32,
            Sockets = 4,
            SourceAddresses = [Sources[index]],
            Duration = duration,
            Warmup = TimeSpan.Zero,
            ServerProcessId = node.ProcessId,
        };
        // TACACS+ PAP from its own source over single-connect connections, the key being the fleet's secret.
        var tacacsRun = new TacacsLoad(new TacacsLoadOptions
        {
            Server = tacacs,
            Key = options.Secret,
            Kind = TacacsLoadKind.Pap,
            User = "u",
            Password = "pw",
            Connections = 4,
            Outstanding = 32,
            Rate = rates?[3] ?? 0,
            Duration = duration,
            Warmup = TimeSpan.Zero,
            Source = Sources[3],
        }).RunAsync(cancellationToken);
        var radius = await Task.WhenAll(
            new LoadGenerator(Options(LoadKind.Pap, "u", auth, 0)).RunAsync(cancellationToken: cancellationToken),
            new LoadGenerator(Options(LoadKind.MsChapV2, "m", auth, 1)).RunAsync(cancellationToken: cancellationToken),
            new LoadGenerator(Options(LoadKind.Accounting, "u", acct, 2)).RunAsync(cancellationToken: cancellationToken)).ConfigureAwait(false);
        return (radius, await tacacsRun.ConfigureAwait(false));
    }

    public static string Describe(SoakWindow w) => string.Create(CultureInfo.InvariantCulture,
        $"window {w.Number} ({w.AtMinutes:0.0} min): goodput {w.GoodputPerSecond:0}/s of {w.OfferedPerSecond:0}, lost {w.Lost}, p99 PAP {w.PapP99Ms:0.00} / MS-CHAPv2 {w.MsChapV2P99Ms:0.00} / acct {w.AccountingP99Ms:0.00} / TACACS+ {w.TacacsP99Ms:0.00} ms, " +
        $"RSS {w.ResidentMiB:0.0} MiB, {w.Threads} threads, {w.Descriptors} descriptors");

    public static string Table(SoakResult r)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Mixed capacity {r.CapacityPerSecond:0}/s; offered {r.OfferedPerSecond:0}/s for {r.Windows.Count} windows; lost {r.Lost}.");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Drift (last 3 settled windows / first 3): RSS {r.Drift(w => w.ResidentMiB):0.000}, p99 PAP {r.Drift(w => w.PapP99Ms):0.000}, MS-CHAPv2 {r.Drift(w => w.MsChapV2P99Ms):0.000}, " +
            $"accounting {r.Drift(w => w.AccountingP99Ms):0.000}, TACACS+ {r.Drift(w => w.TacacsP99Ms):0.000}, threads {r.Drift(w => w.Threads):0.000}, descriptors {r.Drift(w => w.Descriptors):0.000}");
        text.AppendLine();
        text.AppendLine("| window | minute | goodput/s | lost | p99 PAP ms | p99 MS-CHAPv2 ms | p99 acct ms | p99 TACACS+ ms | RSS MiB | threads | descriptors |");
        text.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var w in r.Windows)
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {w.Number} | {w.AtMinutes:0.0} | {w.GoodputPerSecond:0} | {w.Lost} | {w.PapP99Ms:0.00} | {w.MsChapV2P99Ms:0.00} | {w.AccountingP99Ms:0.00} | {w.TacacsP99Ms:0.00} | {w.ResidentMiB:0.0} | {w.Threads} | {w.Descriptors} |");
        return text.ToString();
    }
}
