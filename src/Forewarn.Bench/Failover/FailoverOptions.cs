using System.Net;

namespace Forewarn.Bench.Failover;

/// <summary>How the fleet learns that its server is in trouble.</summary>
public enum FailoverMode
{
    /// <summary>No advisories: a device fails over only when its timeouts and retries run out.</summary>
    Classic,
    /// <summary>Advisories when the zone changes on the measured score.</summary>
    Advisory,
    /// <summary>Advisories when the zone changes on the measured or the forecast score.</summary>
    Forecast,
}

/// <summary>What goes wrong with the first server.</summary>
public enum Degradation
{
    /// <summary>Every user lookup stalls, so the few workers are all busy and the queue grows.</summary>
    Workers,
    /// <summary>Spinning threads take the server's CPU.</summary>
    CpuHog,
    /// <summary>User lookups slow down (ramped: slower and slower).</summary>
    SlowStore,
    /// <summary>The accounting store refuses writes (the fleet sends accounting).</summary>
    FailAccounting,
    /// <summary>kill -9; healed by a restart.</summary>
    Crash,
    /// <summary>30 % of the RADIUS datagrams the server receives are lost (its Loss drill): it stays healthy and cannot tell.</summary>
    Loss,
    /// <summary>SIGSTOP: alive, its sockets open, and silent; healed by SIGCONT.</summary>
    Hang,
    /// <summary>
    /// Nothing breaks: the offered load grows past what the server can carry. Its user lookups cost
    /// <see cref="FailoverOptions.OverloadLookupMs"/> for the whole run (a directory behind it), which sets
    /// a capacity the run measures; the fleet starts at 0.3 of it and ramps by a tenth of it a second
    /// to twice it, holds, and falls back to its start when healed.
    /// </summary>
    Overload,
    /// <summary>
    /// A's score (a synthetic Level drill) swings ± <see cref="FailoverOptions.OscillationAmplitude"/>
    /// around each threshold in turn — returning clients', new clients', failover — for a third of the
    /// degradation each, a sine of <see cref="FailoverOptions.OscillationPeriodSeconds"/>: how often a device
    /// is moved back and forth by a score that hovers at a boundary.
    /// </summary>
    Oscillate,
    /// <summary>
    /// Nothing breaks and nothing should happen: A's capacity is set and measured as for
    /// <see cref="Overload"/>, and the fleet's offered load swings between
    /// <see cref="FailoverOptions.SteadyShare"/> ± <see cref="FailoverOptions.SteadySwing"/> of it (a sine of
    /// <see cref="FailoverOptions.SteadyPeriodSeconds"/>, Poisson arrivals) for the whole degradation: any advisory is a false alarm.
    /// </summary>
    Steady,
}

/// <summary>
/// One failover run: servers on 127.0.80.1.., devices each on its own 127.3.x.y address, every device
/// preferring the first server and knowing the others as alternates. After a baseline the first server
/// is degraded; after <see cref="DegradeSeconds"/> it is healed (a crashed one restarted), and the run
/// ends when every device is back or <see cref="ReturnSeconds"/> have passed.
/// </summary>
public sealed record FailoverOptions
{
    /// <summary>How to run forewarn: e.g. ["dotnet", "/path/forewarn.dll"].</summary>
    public required IReadOnlyList<string> ServerCommand { get; init; }
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "forewarn-failover-" + Guid.NewGuid().ToString("N")[..8]);
    public int Devices { get; init; } = 1000;
    /// <summary>Requests per second each device sends (logins, or accounting for <see cref="Degradation.FailAccounting"/>).</summary>
    public double RatePerDevice { get; init; } = 1;
    public int Servers { get; init; } = 3;
    public Degradation Degradation { get; init; } = Degradation.Workers;
    public FailoverMode Mode { get; init; } = FailoverMode.Forecast;
    /// <summary>Classic retransmission profile: "cisco" (T = 5 s fixed, R = 3, no dead time) or "rfc5080" (T = 2 s doubling to 16 s, R = 3, dead time 60 s, Status-Server revival).</summary>
    public string Profile { get; init; } = "cisco";
    /// <summary>Seconds over which the degradation grows to full strength (0: at once).</summary>
    public double RampSeconds { get; init; } = 10;
    public double BaselineSeconds { get; init; } = 6;
    public double DegradeSeconds { get; init; } = 25;
    public double ReturnSeconds { get; init; } = 30;
    /// <summary>
    /// Overload: what one user lookup of the first server costs, all run long, and its workers (they then
    /// carry about workers × 1,000 / this many a second: 660 here, what this machine's fleet can offer
    /// twice over). A store-bound server, as one behind a directory is: enough workers that a queue at
    /// 90 % busy stays short (with 4 workers, Poisson arrivals at 90 % wait a p99 of 5 lookups; with 32,
    /// half of one), and objectives the operator sets for a store that answers in this time
    /// (<see cref="OverloadLatencyObjectiveMs"/>, <see cref="OverloadQueueObjectiveMs"/>).
    /// </summary>
    public double OverloadLookupMs { get; init; } = 48;
    public int OverloadWorkers { get; init; } = 32;
    public double OverloadLatencyObjectiveMs { get; init; } = 300;
    public double OverloadQueueObjectiveMs { get; init; } = 100;
    /// <summary>Overload: the offered load before and after, and the ramp's step per second, as shares of the measured capacity; and its peak.</summary>
    public double OverloadStart { get; init; } = 0.3;
    public double OverloadStepPerSecond { get; init; } = 0.1;
    public double OverloadPeak { get; init; } = 2;
    /// <summary>Oscillate: the swing of A's score around each threshold (absolute), and its period.</summary>
    public double OscillationAmplitude { get; init; } = 0.05;
    public double OscillationPeriodSeconds { get; init; } = 10;
    /// <summary>Steady: the offered load's middle and swing, as shares of A's measured capacity, and the swing's period.</summary>
    public double SteadyShare { get; init; } = 0.7;
    public double SteadySwing { get; init; } = 0.2;
    public double SteadyPeriodSeconds { get; init; } = 120;

    /// <summary>Whether A's capacity is set (a slow store, few workers) and measured before the fleet starts.</summary>
    public bool MeasuresCapacity => Degradation is Degradation.Overload or Degradation.Steady;

    /// <summary>"udp" or "icmp" (raw sockets: root).</summary>
    public string Carrier { get; init; } = "udp";
    public string Secret { get; init; } = "fleet-secret";
    /// <summary>First octets of the servers' addresses: .1, .2, ... are appended.</summary>
    public string ServerPrefix { get; init; } = "127.0.80.";

    public TimeSpan Timeout => Profile == "rfc5080" ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(5);
    public TimeSpan MaxTimeout => Profile == "rfc5080" ? TimeSpan.FromSeconds(16) : TimeSpan.FromSeconds(5);
    public int Retries { get; init; } = 3;
    /// <summary>Cisco IOS marks no server dead by default (deadtime 0): every request tries the preferred server first.</summary>
    public TimeSpan DeadTime => Profile == "rfc5080" ? TimeSpan.FromSeconds(60) : TimeSpan.Zero;

    public IPAddress ServerAddress(int index) => IPAddress.Parse(ServerPrefix + (index + 1));

    /// <summary>Device i sends from 127.3.(i / 250).(i % 250 + 1).</summary>
    public static IPAddress DeviceAddress(int index) => IPAddress.Parse($"127.3.{index / 250}.{index % 250 + 1}");

    public void Validate()
    {
        if (Devices is < 1 or > 60_000)
            throw new ArgumentException("Devices must be between 1 and 60000.");
        if (Servers is < 2 or > 9)
            throw new ArgumentException("Servers must be between 2 and 9.");
        if (RatePerDevice is <= 0 or > 100)
            throw new ArgumentException("The rate per device must be above 0 and at most 100 per second.");
        if (Profile is not ("cisco" or "rfc5080"))
            throw new ArgumentException("The profile is cisco or rfc5080.");
        if (Carrier is not ("udp" or "icmp"))
            throw new ArgumentException("The carrier is udp or icmp.");
        if (OscillationAmplitude is <= 0 or > 0.5 || OscillationPeriodSeconds <= 0)
            throw new ArgumentException("The oscillation's amplitude is above 0 and at most 0.5, its period above 0.");
        if (SteadyShare - SteadySwing <= 0 || SteadyPeriodSeconds <= 0)
            throw new ArgumentException("The steady load's share less its swing must be above 0, its period above 0.");
        if (ServerCommand.Count == 0)
            throw new ArgumentException("The server command is empty.");
    }
}
