using System.Globalization;
using Forewarn.Core.Health;

namespace Forewarn.Server.Health;

/// <summary>
/// System parameters (patent ¶[0066]) read from Linux's /proc: cheap text files, no library needed.
/// Microsoft.Extensions.Diagnostics.ResourceMonitoring was considered: its IResourceMonitor is obsolete
/// since .NET 9 and its instruments report utilisation against cgroup limits, not machine CPU, run
/// queue or UDP errors, which /proc gives directly. On other systems these probes report "not available".
/// </summary>
internal static class Proc
{
    public static bool Available => OperatingSystem.IsLinux() && File.Exists("/proc/stat");

    public static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static ProbeSample NotAvailable(string name) => new(name, ProbeKind.System, 1, double.NaN, "", true, "not available on this system");

    public static long Field(string text, string key)
    {
        int at = text.IndexOf(key, StringComparison.Ordinal);
        if (at < 0)
            return -1;
        var rest = text.AsSpan(at + key.Length).TrimStart();
        int end = rest.IndexOfAny(' ', '\n');
        return long.TryParse(end < 0 ? rest : rest[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : -1;
    }
}

/// <summary>Machine CPU utilisation (from /proc/stat) against the CPU limit; the process's own share in the detail.</summary>
public sealed class CpuProbe(HealthOptions options, TimeProvider time) : IProbe
{
    private long _lastTotal = -1, _lastIdle;
    private TimeSpan _lastProcess;
    private long _lastTimestamp;
    private double _machine, _process;

    public string Name => "cpu";
    public ProbeKind Kind => ProbeKind.System;

    public ProbeSample Sample()
    {
        if (!Proc.Available || Proc.Read("/proc/stat") is not { } stat)
            return Proc.NotAvailable(Name);
        // cpu  user nice system idle iowait irq softirq steal ...
        var line = stat.AsSpan(0, stat.IndexOf('\n', StringComparison.Ordinal));
        long total = 0, idle = 0;
        int field = 0;
        foreach (var range in line.Split(' '))
        {
            var token = line[range];
            if (token.IsEmpty || !long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                continue;
            if (field < 8)
                total += value;
            if (field is 3 or 4)
                idle += value;
            field++;
        }
        long now = time.GetTimestamp();
        var process = Environment.CpuUsage.TotalTime;
        if (_lastTotal >= 0 && total > _lastTotal)
        {
            _machine = 1 - (double)(idle - _lastIdle) / (total - _lastTotal);
            double wall = time.GetElapsedTime(_lastTimestamp, now).TotalSeconds * Environment.ProcessorCount;
            if (wall > 0)
                _process = (process - _lastProcess).TotalSeconds / wall;
        }
        _lastTotal = total;
        _lastIdle = idle;
        _lastProcess = process;
        _lastTimestamp = now;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(_machine, options.CpuLimit, options.CpuKnee), _machine * 100, "% machine", true,
            $"machine {_machine * 100:0.0} %, this process {_process * 100:0.0} % of {Environment.ProcessorCount} cores");
    }
}

/// <summary>Machine memory in use (MemTotal − MemAvailable) against the memory knee and limit; the managed heap in the detail.</summary>
public sealed class MemoryProbe(HealthOptions options) : IProbe
{
    public string Name => "memory";
    public ProbeKind Kind => ProbeKind.System;

    public ProbeSample Sample()
    {
        if (!Proc.Available || Proc.Read("/proc/meminfo") is not { } info)
            return Proc.NotAvailable(Name);
        long total = Proc.Field(info, "MemTotal:"), available = Proc.Field(info, "MemAvailable:");
        if (total <= 0 || available < 0)
            return Proc.NotAvailable(Name);
        double used = 1 - (double)available / total;
        var gc = GC.GetGCMemoryInfo();
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(used, options.MemoryLimit, options.MemoryKnee), used * 100, "% used", true,
            $"{available / 1024} MiB available of {total / 1024} MiB; managed heap {gc.HeapSizeBytes / (1024 * 1024)} MiB, process working set {Environment.WorkingSet / (1024 * 1024)} MiB");
    }
}

/// <summary>
/// Network pressure on the machine: UDP receive errors per second, machine-wide (buffer overflows and
/// checksum errors of every process, from /proc/net/snmp), against a limit. Context, like every system
/// probe: the server's own sockets' overflows are a distress drop of the drops probe.
/// </summary>
public sealed class NetworkProbe(HealthOptions options, TimeProvider time) : IProbe
{
    private long _lastErrors = -1;
    private long _lastTimestamp;
    private double _rate;

    public string Name => "network";
    public ProbeKind Kind => ProbeKind.System;

    public ProbeSample Sample()
    {
        if (!Proc.Available || Proc.Read("/proc/net/snmp") is not { } snmp)
            return Proc.NotAvailable(Name);
        var (inErrors, receiveBufferErrors, checksumErrors) = UdpErrors(snmp);
        long errors = inErrors;
        long now = time.GetTimestamp();
        if (_lastErrors >= 0)
        {
            double seconds = time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
            if (seconds > 0)
                _rate = Math.Max(0, errors - _lastErrors) / seconds;
        }
        _lastErrors = errors;
        _lastTimestamp = now;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(_rate, options.UdpErrorRateLimit), _rate, "UDP errors/s", true,
            $"machine-wide UDP InErrors {inErrors} (receive buffer {receiveBufferErrors}, checksum {checksumErrors})");
    }

    /// <summary>The Udp: header and value lines of /proc/net/snmp, matched by column name.</summary>
    internal static (long InErrors, long RcvbufErrors, long InCsumErrors) UdpErrors(string snmp)
    {
        string[]? header = null;
        foreach (var line in snmp.Split('\n'))
        {
            if (!line.StartsWith("Udp: ", StringComparison.Ordinal))
                continue;
            var columns = line[5..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (header is null)
            {
                header = columns;
                continue;
            }
            long Get(string name)
            {
                int i = Array.IndexOf(header, name);
                return i >= 0 && i < columns.Length && long.TryParse(columns[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
            }
            return (Get("InErrors"), Get("RcvbufErrors"), Get("InCsumErrors"));
        }
        return (0, 0, 0);
    }
}

/// <summary>Runnable tasks per core (the run queue, from /proc/loadavg) against a limit; the process count as the raw figure.</summary>
public sealed class ProcessesProbe(HealthOptions options) : IProbe
{
    public string Name => "processes";
    public ProbeKind Kind => ProbeKind.System;

    public ProbeSample Sample()
    {
        if (!Proc.Available || Proc.Read("/proc/loadavg") is not { } loadavg)
            return Proc.NotAvailable(Name);
        // "0.52 0.58 0.59 3/456 12345": load averages, runnable/total scheduling entities, last pid.
        var parts = loadavg.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 4 || parts[3].Split('/') is not [var runnable, var total]
            || !int.TryParse(runnable, NumberStyles.None, CultureInfo.InvariantCulture, out int running)
            || !int.TryParse(total, NumberStyles.None, CultureInfo.InvariantCulture, out int count))
            return Proc.NotAvailable(Name);
        // The sampling thread itself is one of the runnable tasks.
        double perCore = Math.Max(0, running - 1) / (double)Environment.ProcessorCount;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(perCore, options.RunQueuePerCoreLimit, options.RunQueuePerCoreKnee), count, "tasks", true,
            $"run queue {running - 1} on {Environment.ProcessorCount} cores; load average {parts[0]} {parts[1]} {parts[2]}");
    }
}

/// <summary>
/// The configured network interfaces (Forewarn:Health:Interfaces) are up: a mandatory service, since a
/// NAS reaches the server through them. Present only when interfaces are configured.
/// </summary>
public sealed class InterfacesProbe(IReadOnlyList<string> interfaces) : IProbe
{
    public string Name => "interfaces";
    public ProbeKind Kind => ProbeKind.Mandatory;

    public ProbeSample Sample()
    {
        string? down = null;
        foreach (var name in interfaces)
        {
            var state = Proc.Read($"/sys/class/net/{name}/operstate")?.Trim();
            if (state is not ("up" or "unknown"))
                down = down is null ? $"{name} {state ?? "missing"}" : $"{down}, {name} {state ?? "missing"}";
        }
        return down is null
            ? new ProbeSample(Name, Kind, 1, interfaces.Count, "up", true, string.Join(", ", interfaces) + " up")
            : new ProbeSample(Name, Kind, 0, interfaces.Count, "up", false, "interface down: " + down);
    }
}
