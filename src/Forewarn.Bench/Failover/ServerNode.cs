using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Forewarn.Bench.Load;

namespace Forewarn.Bench.Failover;

/// <summary>What one poll of a server's admin API says.</summary>
public readonly record struct ServerSample(double Score, double Predicted, string Zone, double ConnectThreshold, int DeferredClients, long Received, bool WarmingUp = false);

/// <summary>
/// One Forewarn server of a failover run, as a process of its own (so that its CPU, workers and
/// monitor are its own): prepared with the command line, started with `forewarn serve`, driven through
/// its admin API (drills, status), killed or stopped at the end.
/// </summary>
public sealed class ServerNode : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _command;
    private readonly string _data;
    private readonly IReadOnlyList<string> _settings;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private Process? _process;
    private TimeSpan _cpuOfEarlierProcesses;

    public int Index { get; }
    public IPAddress Address { get; }
    public string Name => $"server {(char)('A' + Index)} ({Address})";
    public string DataDirectory => _data;

    private ServerNode(int index, IPAddress address, IReadOnlyList<string> command, string data, IReadOnlyList<string> settings)
    {
        Index = index;
        Address = address;
        _command = command;
        _data = data;
        _settings = settings;
    }

    public static Task<ServerNode> PrepareAsync(int index, IPAddress address, FailoverOptions options, IReadOnlyList<string> settings, CancellationToken cancellationToken) =>
        PrepareAsync(index, address, options.ServerCommand, options.WorkDirectory, options.Secret, settings, cancellationToken);

    /// <summary>
    /// A data directory <c>server{index + 1}</c> under <paramref name="workDirectory"/> with user u (password pw)
    /// and one client, "fleet", for every device address (127.3.0.0/16) with <paramref name="secret"/>.
    /// </summary>
    public static async Task<ServerNode> PrepareAsync(int index, IPAddress address, IReadOnlyList<string> command, string workDirectory, string secret,
        IReadOnlyList<string> settings, CancellationToken cancellationToken)
    {
        var data = Path.Combine(workDirectory, $"server{index + 1}");
        Directory.CreateDirectory(data);
        var node = new ServerNode(index, address, command, data, settings);
        await node.RunCommandAsync(["users", "add", "u", "--password", "pw", "--methods", "pap"], cancellationToken).ConfigureAwait(false);
        await node.RunCommandAsync(["clients", "add", "fleet", "--address", "127.3.0.0/16", "--secret", secret], cancellationToken).ConfigureAwait(false);
        return node;
    }

    /// <summary>Runs a forewarn command on this node's data directory (e.g. users add); "already exists" is not a failure.</summary>
    public async Task RunCommandAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        using var process = Process.Start(Info([.. arguments, "--data", _data])) ?? throw new InvalidOperationException("could not start forewarn");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0 && !(await error.ConfigureAwait(false)).Contains("already exists", StringComparison.Ordinal))
            throw new InvalidOperationException($"forewarn {string.Join(' ', arguments)} failed: {await output.ConfigureAwait(false)} {await error.ConfigureAwait(false)}");
    }

    private ProcessStartInfo Info(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(_command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in _command.Skip(1).Concat(arguments))
            info.ArgumentList.Add(argument);
        return info;
    }

    /// <summary>Starts `forewarn serve` and waits until its admin API answers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var adminFile = Path.Combine(_data, "admin.url");
        File.Delete(adminFile);
        // The benchmark's servers are there to be degraded: drills on.
        var arguments = new List<string> { "serve", "--data", _data, "--listen", Address.ToString(), "--set", "Forewarn:Admin:Drills=true", "--set", "Forewarn:Tacacs:Port=0" };
        foreach (var setting in _settings)
        {
            arguments.Add("--set");
            arguments.Add(setting);
        }
        _process = Process.Start(Info(arguments)) ?? throw new InvalidOperationException("could not start forewarn serve");
        var log = new StreamWriter(Path.Combine(_data, "server.log"), append: true) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { lock (log) log.WriteLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (log) log.WriteLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
                throw new InvalidOperationException($"{Name} exited at start; see {Path.Combine(_data, "server.log")}");
            if (File.Exists(adminFile))
            {
                // The admin token the server generated in its data directory on first start.
                var token = Path.Combine(_data, "admin.token");
                if (File.Exists(token))
                    _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(token, cancellationToken).ConfigureAwait(false)).Trim());
                if (await SampleAsync(cancellationToken).ConfigureAwait(false) is not null)
                    return;
            }
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
        throw new TimeoutException($"{Name} did not start within 60 s; see {Path.Combine(_data, "server.log")}");
    }

    public int? ProcessId => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>CPU time of every process this node has run (a crashed one's included).</summary>
    public TimeSpan CpuTime => _cpuOfEarlierProcesses + (ProcessId is int pid ? ServerProcess.CpuTime(pid) ?? TimeSpan.Zero : TimeSpan.Zero);

    private async Task<string?> AdminUrlAsync(CancellationToken cancellationToken)
    {
        var file = Path.Combine(_data, "admin.url");
        return File.Exists(file) ? (await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false)).Trim() : null;
    }

    /// <summary>
    /// Reads the server's status once and lets <paramref name="read"/> pick what it needs; the fallback
    /// when the server is down, does not answer, or its answer lacks what was read.
    /// </summary>
    private async Task<T> ReadStatusAsync<T>(Func<JsonElement, T> read, T fallback, CancellationToken cancellationToken)
    {
        if (_process is null || _process.HasExited || await AdminUrlAsync(cancellationToken).ConfigureAwait(false) is not { } url)
            return fallback;
        try
        {
            using var json = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/status", cancellationToken).ConfigureAwait(false));
            return read(json.RootElement);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return fallback;
        }
    }

    /// <summary>Score, forecast, zone and thresholds of the default class, and deferred clients; null if the server does not answer.</summary>
    public Task<ServerSample?> SampleAsync(CancellationToken cancellationToken) => ReadStatusAsync<ServerSample?>(root =>
    {
        var health = root.GetProperty("health");
        var zone = health.GetProperty("zones")[0];
        int deferred = root.TryGetProperty("advisory", out var advisory) && advisory.ValueKind == JsonValueKind.Object
            ? advisory.GetProperty("deferredClients").GetInt32() : 0;
        return new ServerSample(
            health.GetProperty("score").GetDouble(),
            health.GetProperty("predicted").GetDouble(),
            zone.GetProperty("zone").GetString() ?? "",
            zone.GetProperty("thresholds").GetProperty("connectReturning").GetDouble(),
            deferred,
            root.GetProperty("counters").GetProperty("received").GetInt64(),
            health.TryGetProperty("warmingUp", out var warming) && warming.GetBoolean());
    }, null, cancellationToken);

    /// <summary>Requests received and dropped (in all, and by reason), as the server counts them.</summary>
    public Task<(long Received, long Dropped, IReadOnlyDictionary<string, long> ByReason)> DropsAsync(CancellationToken cancellationToken) =>
        ReadStatusAsync<(long, long, IReadOnlyDictionary<string, long>)>(root =>
        {
            var counters = root.GetProperty("counters");
            var reasons = new Dictionary<string, long>(StringComparer.Ordinal);
            if (counters.TryGetProperty("dropsByReason", out var byReason) && byReason.ValueKind == JsonValueKind.Object)
                foreach (var reason in byReason.EnumerateObject())
                    reasons[reason.Name] = reason.Value.GetInt64();
            return (counters.GetProperty("received").GetInt64(), counters.GetProperty("dropped").GetInt64(), reasons);
        }, (0, 0, new Dictionary<string, long>()), cancellationToken);

    /// <summary>The zone changes the server recorded (time, to-zone, cause, forecast lead time in seconds).</summary>
    public Task<IReadOnlyList<(DateTimeOffset At, string To, string Cause, double? LeadSeconds)>> ZoneChangesAsync(CancellationToken cancellationToken) =>
        ReadStatusAsync<IReadOnlyList<(DateTimeOffset, string, string, double?)>>(root =>
        {
            var changes = new List<(DateTimeOffset, string, string, double?)>();
            foreach (var change in root.GetProperty("health").GetProperty("recentChanges").EnumerateArray())
            {
                double? lead = change.TryGetProperty("leadTime", out var l) && l.ValueKind == JsonValueKind.String
                    ? TimeSpan.Parse(l.GetString()!, CultureInfo.InvariantCulture).TotalSeconds : null;
                changes.Add((change.GetProperty("at").GetDateTimeOffset(), change.GetProperty("to").GetString() ?? "", change.GetProperty("cause").GetString() ?? "", lead));
            }
            return changes;
        }, [], cancellationToken);

    /// <summary>Advisory messages the server has sent, by kind.</summary>
    public readonly record struct AdvisoryCounts(long Failovers, long Invites, long Refusals, long Reminders, long Retransmissions, long Acks)
    {
        public long Sent => Failovers + Invites + Refusals + Reminders + Retransmissions;

        /// <summary>What was sent between two readings.</summary>
        public static AdvisoryCounts operator -(AdvisoryCounts later, AdvisoryCounts earlier) => new(
            later.Failovers - earlier.Failovers, later.Invites - earlier.Invites, later.Refusals - earlier.Refusals,
            later.Reminders - earlier.Reminders, later.Retransmissions - earlier.Retransmissions, later.Acks - earlier.Acks);
    }

    public Task<AdvisoryCounts> AdvisoriesSentAsync(CancellationToken cancellationToken) => ReadStatusAsync(root =>
        root.TryGetProperty("advisory", out var a) && a.ValueKind == JsonValueKind.Object
            ? new AdvisoryCounts(a.GetProperty("failovers").GetInt64(), a.GetProperty("invites").GetInt64(), a.GetProperty("refusals").GetInt64(),
                a.GetProperty("reminders").GetInt64(), a.GetProperty("retransmissions").GetInt64(), a.GetProperty("acks").GetInt64())
            : default, default(AdvisoryCounts), cancellationToken);

    /// <summary>Starts (or strengthens) a drill: kind slow-store, cpu-hog or fail-accounting.</summary>
    public async Task DrillAsync(string kind, double seconds, double intensity, CancellationToken cancellationToken)
    {
        var url = await AdminUrlAsync(cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"{Name} has no admin API");
        using var response = await _http.PostAsync(string.Create(CultureInfo.InvariantCulture,
            $"{url}/api/drill?kind={kind}&seconds={seconds}&intensity={intensity}"), null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>When the running drill started, by the server's own clock (its status time less the drill's elapsed time); null when none runs.</summary>
    public Task<DateTimeOffset?> DrillStartedAsync(CancellationToken cancellationToken) => ReadStatusAsync<DateTimeOffset?>(root =>
    {
        var health = root.GetProperty("health");
        if (!health.TryGetProperty("drill", out var drill) || drill.ValueKind != JsonValueKind.Object)
            return null;
        return health.GetProperty("at").GetDateTimeOffset() - TimeSpan.FromSeconds(drill.GetProperty("elapsedSeconds").GetDouble());
    }, null, cancellationToken);

    public async Task StopDrillAsync(CancellationToken cancellationToken)
    {
        if (await AdminUrlAsync(cancellationToken).ConfigureAwait(false) is not { } url)
            return;
        using var response = await _http.DeleteAsync(url + "/api/drill", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>SIGSTOP (<paramref name="stop"/>) or SIGCONT: the process keeps its sockets, and the kernel keeps queueing datagrams for it.</summary>
    public async Task SignalAsync(bool stop)
    {
        if (ProcessId is not int pid)
            return;
        using var kill = Process.Start(new ProcessStartInfo("kill", [stop ? "-STOP" : "-CONT", pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("could not run kill");
        await kill.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>kill -9: no shutdown at all.</summary>
    public async Task CrashAsync()
    {
        if (_process is null || _process.HasExited)
            return;
        _cpuOfEarlierProcesses += ServerProcess.CpuTime(_process.Id) ?? TimeSpan.Zero;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync().ConfigureAwait(false);
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await CrashAsync().ConfigureAwait(false);
        _http.Dispose();
    }
}
