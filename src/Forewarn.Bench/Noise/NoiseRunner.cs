using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Forewarn.Bench.Failover;
using Forewarn.Bench.Load;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Noise;

/// <summary>How a noise run is made: which server, how long, which load levels and which noise.</summary>
public sealed record NoiseOptions
{
    /// <summary>How to run forewarn: e.g. ["dotnet", "/path/forewarn.dll"]; another build may be given to compare monitors in one run.</summary>
    public required IReadOnlyList<string> ServerCommand { get; init; }
    /// <summary>A label for the server build in the report.</summary>
    public string Label { get; init; } = "this build";
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "forewarn-noise-" + Guid.NewGuid().ToString("N")[..8]);
    public double Minutes { get; init; } = 10;
    /// <summary>Load levels: "light" (5 logins/s) and/or a share of the measured capacity, e.g. "70%".</summary>
    public IReadOnlyList<string> Loads { get; init; } = ["light", "70%"];
    public double LightRate { get; init; } = 5;
    /// <summary>A solution to build with `dotnet build` next door, over and over (null: no build noise).</summary>
    public string? BuildProject { get; init; }
    public bool CpuBursts { get; init; } = true;
    public bool StatusPolling { get; init; } = true;
    public int InvalidDatagrams { get; init; } = 200_000;
    public bool Gc { get; init; } = true;
    public IPAddress ServerAddress { get; init; } = IPAddress.Parse("127.0.85.1");
    public int Seed { get; init; } = 1;
}

/// <summary>What one load level under noise showed.</summary>
public sealed record NoiseResult
{
    public required string Label { get; init; }
    public required string Load { get; init; }
    public double Rate { get; init; }
    public double Minutes { get; init; }
    public long Sent { get; init; }
    public long Answered { get; init; }
    public long Timeouts { get; init; }
    public double P99Ms { get; init; }
    public int ZoneChanges { get; init; }
    /// <summary>Share of the status samples (4 a second) that found the server out of Accept.</summary>
    public double OutOfAcceptPercent { get; init; }
    public long Failovers { get; init; }
    public double FalseAdvisoriesPerHour { get; init; }
    public double LowestScore { get; init; }
    public double LowestSustained { get; init; }
    public string? LowestDetail { get; init; }
    public int Bursts { get; init; }
    public int Builds { get; init; }
    public int StatusPolls { get; init; }
    public long InvalidSent { get; init; }
    public bool ForcedGc { get; init; }
    public IReadOnlyList<string> Changes { get; init; } = [];
    public string? Trace { get; init; }
}

/// <summary>
/// The noise benchmark: a healthy server at a steady load while the machine does what machines do —
/// other processes bursting to 100 % of a core for up to 2 s, a `dotnet build` next door, the operator
/// running `forewarn status` every second, a flood of invalid datagrams from a known client's address,
/// full garbage collections — counting zone changes and FAILOVERs, which are all false here.
/// </summary>
public sealed class NoiseRunner(NoiseOptions options)
{
    private const string Secret = "fleet-secret";

    public async Task<IReadOnlyList<NoiseResult>> RunAsync(Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(options.WorkDirectory);
        var results = new List<NoiseResult>();
        double? capacity = null;
        foreach (var load in options.Loads)
        {
            double rate;
            if (load == "light")
                rate = options.LightRate;
            else if (load.EndsWith('%') && double.TryParse(load[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double share))
            {
                capacity ??= await MeasureCapacityAsync(log, cancellationToken).ConfigureAwait(false);
                rate = Math.Round(capacity.Value * share / 100);
            }
            else
                throw new ArgumentException($"unknown load '{load}': light or a share of capacity such as 70%");
            log?.Invoke($"{options.Label}: {load} ({rate:0}/s) for {options.Minutes:0.#} min under noise");
            results.Add(await RunLevelAsync(load, rate, cancellationToken).ConfigureAwait(false));
            log?.Invoke(Describe(results[^1]));
        }
        return results;
    }

    public static string Describe(NoiseResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Label}, {r.Load} ({r.Rate:0}/s, {r.Minutes:0.#} min): {r.ZoneChanges} zone changes, {r.OutOfAcceptPercent:0.#} % of the time out of Accept, {r.Failovers} FAILOVERs ({r.FalseAdvisoriesPerHour:0.#}/h); lowest score {r.LowestScore:0.000}, sustained {r.LowestSustained:0.000}; {r.Answered}/{r.Sent} answered, p99 {r.P99Ms:0.##} ms");

    private FailoverOptions NodeOptions(string directory) => new() { ServerCommand = options.ServerCommand, WorkDirectory = directory, Secret = Secret };

    private async Task<ServerNode> StartServerAsync(string name, IEnumerable<string> settings, CancellationToken cancellationToken)
    {
        var node = await ServerNode.PrepareAsync(0, options.ServerAddress, NodeOptions(Path.Combine(options.WorkDirectory, name)),
            [.. settings], cancellationToken).ConfigureAwait(false);
        await node.StartAsync(cancellationToken).ConfigureAwait(false);
        return node;
    }

    private LoadOptions Load(double rate, TimeSpan duration, int outstanding = 64) => new()
    {
        Server = new IPEndPoint(options.ServerAddress, 1812),
        Secret = System.Text.Encoding.UTF8.GetBytes(Secret),
        Kind = LoadKind.Pap,
        UserFormat = "u",
        Password = "pw",
        Rate = rate,
        Outstanding = outstanding,
        Duration = duration,
        Warmup = TimeSpan.FromSeconds(2),
        Sockets = 4,
        SourceAddresses = [IPAddress.Parse("127.3.0.1"), IPAddress.Parse("127.3.0.2")],
    };

    /// <summary>
    /// The load this server carries within its objective, which is what "70 % load" is a share of: open-loop
    /// rates from a tenth of the closed-loop throughput upwards by a quarter each, 5 s each, until the p99 the
    /// generator sees passes the latency probe's knee (a fifth of the 50 ms objective: the point where the
    /// service starts to lose headroom). Closed-loop throughput is no such figure: at 70 % of it, open-loop
    /// requests on this 2-core machine already queue for tens of milliseconds.
    /// </summary>
    public async Task<double> MeasureCapacityAsync(Action<string>? log, CancellationToken cancellationToken)
    {
        await using var node = await StartServerAsync("capacity", [], cancellationToken).ConfigureAwait(false);
        var closed = await new LoadGenerator(Load(0, TimeSpan.FromSeconds(5))).RunAsync(null, cancellationToken).ConfigureAwait(false);
        const double kneeMs = 10;
        double passing = 0;
        for (double rate = Math.Round(closed.Throughput / 10); rate < closed.Throughput; rate = Math.Round(rate * 1.25))
        {
            var step = await new LoadGenerator(Load(rate, TimeSpan.FromSeconds(5))).RunAsync(null, cancellationToken).ConfigureAwait(false);
            log?.Invoke($"  {rate:0}/s: p99 {step.LatencyP99Ms:0.##} ms, {step.Timeouts} lost");
            if (step.LatencyP99Ms > kneeMs || step.Timeouts > 0)
                break;
            passing = rate;
        }
        log?.Invoke($"capacity within the objective: {passing:0}/s (p99 under {kneeMs} ms); closed-loop throughput {closed.Throughput:0}/s");
        return Math.Max(passing, options.LightRate);
    }

    private async Task<NoiseResult> RunLevelAsync(string load, double rate, CancellationToken cancellationToken)
    {
        string name = "level-" + load.Replace("%", "pc", StringComparison.Ordinal);
        string trace = Path.Combine(options.WorkDirectory, name + "-trace.csv");
        await using var node = await StartServerAsync(name, [$"Forewarn:Health:TraceFile={trace}"], cancellationToken).ConfigureAwait(false);
        // Past the warm-up, so that every change counted is the monitor's own.
        await Task.Delay(TimeSpan.FromSeconds(6), cancellationToken).ConfigureAwait(false);
        var before = await node.ZoneChangesAsync(cancellationToken).ConfigureAwait(false);
        var advisoriesBefore = await node.AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);

        var duration = TimeSpan.FromMinutes(options.Minutes);
        using var stop = new CancellationTokenSource(duration);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, cancellationToken);
        var random = new Random(options.Seed);
        int bursts = 0, builds = 0, polls = 0, samples = 0, outOfAccept = 0;
        long invalid = 0;
        double lowestScore = 1, lowestSustained = 1;
        string? lowestDetail = null;

        var loadRun = new LoadGenerator(Load(rate, duration)).RunAsync(null, cancellationToken);
        var noise = new List<Task>();
        if (options.CpuBursts)
        {
            noise.Add(Loop(async token =>
            {
                await Task.Delay(TimeSpan.FromSeconds(5 + random.NextDouble() * 20), token).ConfigureAwait(false);
                await NoiseSources.BurstAsync(TimeSpan.FromSeconds(0.5 + random.NextDouble() * 1.5)).ConfigureAwait(false);
                bursts++;
            }, linked.Token));
        }
        if (options.BuildProject is { } project)
        {
            noise.Add(Loop(async token =>
            {
                await Task.Delay(TimeSpan.FromSeconds(30), token).ConfigureAwait(false);
                await RunAsync("dotnet", ["build", project, "-c", "Debug", "--no-incremental", "-nologo", "-v", "q"], token).ConfigureAwait(false);
                builds++;
            }, linked.Token));
        }
        if (options.StatusPolling)
        {
            noise.Add(Loop(async token =>
            {
                var tick = Task.Delay(1000, token);
                await RunAsync(options.ServerCommand[0], [.. options.ServerCommand.Skip(1), "status", "--data", node.DataDirectory], token).ConfigureAwait(false);
                polls++;
                await tick.ConfigureAwait(false);
            }, linked.Token));
        }
        if (options.InvalidDatagrams > 0)
        {
            double at = duration.TotalSeconds * (0.2 + random.NextDouble() * 0.6);
            noise.Add(Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(at), linked.Token).ConfigureAwait(false);
                    // From 127.3.0.9, inside the fleet's client block.
                    invalid = NoiseSources.Flood(IPAddress.Parse("127.3.0.9"), new IPEndPoint(options.ServerAddress, 1812), new IPEndPoint(options.ServerAddress, 1813), options.InvalidDatagrams);
                }
                catch (OperationCanceledException)
                {
                }
            }, CancellationToken.None));
        }
        bool gc = false;
        if (options.Gc)
        {
            try
            {
                await node.DrillAsync("gc", duration.TotalSeconds, 1, cancellationToken).ConfigureAwait(false);
                gc = true;
            }
            catch (HttpRequestException)
            {
                // An older build without the gc drill: its own collections only.
            }
        }
        noise.Add(Loop(async token =>
        {
            if (await node.SampleAsync(token).ConfigureAwait(false) is { } sample)
            {
                samples++;
                if (sample.Zone != "Accept")
                    outOfAccept++;
                if (sample.Score < lowestScore)
                {
                    lowestScore = sample.Score;
                    lowestDetail = string.Create(CultureInfo.InvariantCulture, $"score {sample.Score:0.000} in {sample.Zone}");
                }
            }
            await Task.Delay(250, token).ConfigureAwait(false);
        }, linked.Token));

        var report = await loadRun.ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(noise).ConfigureAwait(false);

        var changes = (await node.ZoneChangesAsync(cancellationToken).ConfigureAwait(false)).Skip(before.Count).ToList();
        var advisories = await node.AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);
        lowestSustained = LowestSustained(trace);
        long failovers = advisories.Failovers - advisoriesBefore.Failovers;
        return new NoiseResult
        {
            Label = options.Label,
            Load = load,
            Rate = rate,
            Minutes = options.Minutes,
            Sent = report.Sent,
            Answered = report.Answered,
            Timeouts = report.Timeouts,
            P99Ms = Math.Round(report.LatencyP99Ms, 3),
            ZoneChanges = changes.Count,
            OutOfAcceptPercent = samples == 0 ? 0 : Math.Round(100.0 * outOfAccept / samples, 1),
            Failovers = failovers,
            FalseAdvisoriesPerHour = Math.Round(failovers / (options.Minutes / 60), 1),
            LowestScore = Math.Round(lowestScore, 3),
            LowestSustained = Math.Round(double.IsNaN(lowestSustained) ? lowestScore : lowestSustained, 3),
            LowestDetail = lowestDetail,
            Bursts = bursts,
            Builds = builds,
            StatusPolls = polls,
            InvalidSent = invalid,
            ForcedGc = gc,
            Changes = [.. changes.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.At:HH:mm:ss.f} -> {c.To} by {c.Cause}"))],
            Trace = File.Exists(trace) ? trace : null,
        };
    }

    /// <summary>The lowest sustained score in a trace the server wrote (NaN for a build that writes none).</summary>
    private static double LowestSustained(string trace)
    {
        if (!File.Exists(trace))
            return double.NaN;
        double lowest = 1;
        using var reader = new StreamReader(new FileStream(trace, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        reader.ReadLine();
        while (reader.ReadLine() is { } line)
        {
            var columns = line.Split(',');
            if (columns.Length > 2 && double.TryParse(columns[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                lowest = Math.Min(lowest, value);
        }
        return lowest;
    }

    private static async Task Loop(Func<CancellationToken, Task> body, CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested)
                await body(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task RunAsync(string program, IEnumerable<string> arguments, CancellationToken token)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        await Task.WhenAll(output, error).ConfigureAwait(false);
    }

    public static string Table(IReadOnlyList<NoiseResult> results)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine("| build | load | rate/s | minutes | zone changes | time out of Accept | FAILOVERs | false advisories/h | lowest score | lowest sustained | answered | p99 ms | noise: bursts, builds, status polls, invalid datagrams, forced GC |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Load} | {r.Rate:0} | {r.Minutes:0.#} | {r.ZoneChanges} | {r.OutOfAcceptPercent:0.#} % | {r.Failovers} | {r.FalseAdvisoriesPerHour:0.#} | {r.LowestScore:0.000} | {r.LowestSustained:0.000} | {r.Answered}/{r.Sent} | {r.P99Ms:0.##} | {r.Bursts}, {r.Builds}, {r.StatusPolls}, {r.InvalidSent}{(r.ForcedGc ? ", GC every 1 s" : "")} |"));
        }
        return text.ToString();
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string Json(IReadOnlyList<NoiseResult> results) => JsonSerializer.Serialize(results, Indented);
}
