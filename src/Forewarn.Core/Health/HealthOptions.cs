namespace Forewarn.Core.Health;

/// <summary>Thresholds on the performance score (0 worst, 1 best).</summary>
public sealed record Thresholds
{
    /// <summary>Below it, clients are told to move away.</summary>
    public double Failover { get; init; } = 0.25;
    /// <summary>At or above it, new clients may connect.</summary>
    public double ConnectNew { get; init; } = 0.45;
    /// <summary>At or above it, previously deferred clients may return (usually stricter than new).</summary>
    public double ConnectReturning { get; init; } = 0.5;

    public IEnumerable<string> Validate(string name)
    {
        foreach (var (label, value) in new[] { ("Failover", Failover), ("ConnectNew", ConnectNew), ("ConnectReturning", ConnectReturning) })
        {
            if (value is < 0 or > 1 || double.IsNaN(value))
                yield return $"{name}:{label} must be between 0 and 1 (is {value}).";
        }
    }
}

/// <summary>The health monitor's settings: section <c>Forewarn:Health</c>.</summary>
public sealed class HealthOptions
{
    /// <summary>Samples per second.</summary>
    public double SampleHz { get; set; } = 10;

    /// <summary>After start, the zone follows only forced causes (drain, services down) for at least this long: start-up work (JIT) is not overload.</summary>
    public double WarmupSeconds { get; set; } = 5;

    /// <summary>…and, when above 0, until the request path has answered this many requests within the latency window (see <see cref="WarmUp"/>). Off by default: a lightly used server would otherwise ignore a real degradation for up to <see cref="WarmupMaxSeconds"/> after start.</summary>
    public int WarmupRequests { get; set; }

    /// <summary>…or at most this long, for a server that stays quiet.</summary>
    public double WarmupMaxSeconds { get; set; } = 60;

    /// <summary>
    /// A gap this long between two of the monitor's own samples is a stall — the process stopped
    /// (SIGSTOP), its VM paused, or it was swapped out — and the warm-up starts again: what it measures
    /// just after (a burst of requests that waited in the sockets) is the stall's, not the load's.
    /// </summary>
    public double StallSeconds { get; set; } = 5;

    public Thresholds Thresholds { get; set; } = new();

    /// <summary>Thresholds for client classes (quality of service promised to a class), by class name.</summary>
    public Dictionary<string, Thresholds> ClassThresholds { get; set; } = [];

    /// <summary>How far above a boundary the score must rise before the zone improves.</summary>
    public double Hysteresis { get; set; } = 0.05;

    /// <summary>The zone improves only after this many samples in a row clear the boundary (a single quiet sample is not recovery).</summary>
    public int ImprovementSamples { get; set; } = 5;

    /// <summary>
    /// A breach counts once it persists: the zone worsens only when <see cref="BreachSamples"/> of the last
    /// <see cref="BreachWindowSamples"/> samples are below the boundary (3 of 5 at 10 Hz: a stall moves
    /// the zone in about 0.3 s; one or two stray samples never do).
    /// </summary>
    public int BreachSamples { get; set; } = 3;
    public int BreachWindowSamples { get; set; } = 5;

    /// <summary>
    /// A system probe (CPU, memory, run queue, network) reads its best headroom over this many seconds:
    /// only pressure that lasts the whole time counts (a 2 s burst of another process does not).
    /// </summary>
    public double SystemSustainSeconds { get; set; } = 5;

    /// <summary>
    /// The service headroom at and below which the machine's pressure counts in full; above it, in
    /// proportion to the service's strain, and not at all while the service is at full headroom.
    /// </summary>
    public double StrainFullAt { get; set; } = 0.25;

    /// <summary>A service check must fail this many times in a row before its service counts as down (one lost datagram is not an outage).</summary>
    public int ServiceFailuresToTrip { get; set; } = 2;

    /// <summary>Least time in a zone before it recovers or the forecast moves it (a breach of the actual score and forced changes do not wait).</summary>
    public double MinimumDwellSeconds { get; set; } = 3;

    /// <summary>How far ahead the forecast looks; a predicted crossing within it counts as a crossing. 0 turns the forecast off.</summary>
    public double ForecastHorizonSeconds { get; set; } = 5;

    /// <summary>How much history the trend is fitted to.</summary>
    public double ForecastWindowSeconds { get; set; } = 5;

    /// <summary>A predicted fall counts only when the slope is this many standard errors below zero.</summary>
    public double ForecastNoiseFactor { get; set; } = 4;

    /// <summary>A predicted fall counts only after it has held for this many samples in a row.</summary>
    public int ForecastPersistSamples { get; set; } = 5;

    /// <summary>... and only once the fitted score has already fallen this far below the best of the window.</summary>
    public double ForecastMinimumDrop { get; set; } = 0.1;

    /// <summary>Score function: "min" (the default: the scarcest resource decides) or "weighted-mean".</summary>
    public string ScoreFunction { get; set; } = "min";

    /// <summary>Per-probe weights (weighted-mean), by probe name; 0 leaves a probe out of the score.</summary>
    public Dictionary<string, double> Weights { get; set; } = [];

    /// <summary>How many seconds of service latencies the latency probe's percentiles cover.</summary>
    public int LatencyWindowSeconds { get; set; } = 10;

    /// <summary>
    /// Fewer requests than this in the latency window are no evidence: the latency probe reads full
    /// headroom and says so. With fewer than 300 the percentile read is the one at least three requests
    /// reach, so that no single slow request decides.
    /// </summary>
    public int LatencyMinimumRequests { get; set; } = 20;

    /// <summary>Queueing delay (a request waiting for a worker) at which the queue probe reads zero headroom: DAGOR's 20 ms.</summary>
    public double QueueDelayObjectiveMs { get; set; } = 20;

    /// <summary>The latency objective: p99 service latency at which the latency probe reads zero headroom.</summary>
    public double LatencyObjectiveMs { get; set; } = 50;

    /// <summary>
    /// Distress drops per second (queue full, queued too long, the server's own sockets overflowing) at
    /// which the drop probe reads zero headroom. Invalid input (bad authenticators, unknown clients,
    /// malformed packets) is counted and logged but never lowers the score: anyone who can spoof a NAS's
    /// address could otherwise push every client away.
    /// </summary>
    public double DropRateLimit { get; set; } = 100;

    /// <summary>CPU (machine) utilisation, 0..1, up to which the CPU probe reads full headroom ...</summary>
    public double CpuKnee { get; set; } = 0.7;

    /// <summary>... and at which it reads zero.</summary>
    public double CpuLimit { get; set; } = 0.98;

    /// <summary>Memory in use, 0..1: full headroom up to the knee, zero at the limit.</summary>
    public double MemoryKnee { get; set; } = 0.8;
    public double MemoryLimit { get; set; } = 0.97;

    /// <summary>Runnable tasks per core: full headroom up to the knee, zero at the limit.</summary>
    public double RunQueuePerCoreKnee { get; set; } = 1;
    public double RunQueuePerCoreLimit { get; set; } = 4;

    /// <summary>Share of the latency objective that p99 may use before the latency probe's headroom starts to fall.</summary>
    public double LatencyKnee { get; set; } = 0.2;

    /// <summary>UDP receive errors per second (buffer overflows, checksum errors) at which the network probe reads zero headroom.</summary>
    public double UdpErrorRateLimit { get; set; } = 50;

    /// <summary>Network interfaces whose operational state the network probe watches (e.g. eth0); down reads zero headroom.</summary>
    public List<string> Interfaces { get; set; } = [];

    /// <summary>How often the service checks (self Status-Server, store ping, sink writes) run.</summary>
    public double ServiceCheckSeconds { get; set; } = 1;

    /// <summary>A service check slower than this counts as failed.</summary>
    public double ServiceCheckTimeoutSeconds { get; set; } = 2;

    /// <summary>
    /// The accounting sink fails (every client deferred) when its disk has less free space than this many
    /// minutes of accounting at the measured write rate, or than <see cref="DiskMinimumFreeMiB"/>.
    /// </summary>
    public double DiskFloorMinutes { get; set; } = 30;

    /// <summary>The least free space the accounting sink needs to commit at all.</summary>
    public double DiskMinimumFreeMiB { get; set; } = 16;

    /// <summary>A warning alert (no zone change) when the disk holds less than this many hours of accounting at the measured rate.</summary>
    public double DiskAlertHours { get; set; } = 24;

    /// <summary>A file that receives one CSV line per tick (score, its parts, each probe's headroom): for calibrating the forecast on recorded noise.</summary>
    public string? TraceFile { get; set; }

    /// <summary>Where alerts are POSTed as JSON (optional).</summary>
    public string? AlertWebhook { get; set; }

    public IEnumerable<string> Validate()
    {
        // "NaN" and "Infinity" bind to a double and pass every range check below; the health loop would stop on them.
        foreach (var property in typeof(HealthOptions).GetProperties())
        {
            if (property.GetValue(this) is double value && !double.IsFinite(value))
                yield return $"Forewarn:Health:{property.Name} must be a number (is {value}).";
        }
        foreach (var error in Thresholds.Validate("Forewarn:Health:Thresholds"))
            yield return error;
        foreach (var (name, thresholds) in ClassThresholds)
        {
            foreach (var error in thresholds.Validate($"Forewarn:Health:ClassThresholds:{name}"))
                yield return error;
        }
        if (SampleHz is <= 0 or > 100)
            yield return "Forewarn:Health:SampleHz must be above 0 and at most 100.";
        if (Hysteresis is < 0 or > 0.5)
            yield return "Forewarn:Health:Hysteresis must be between 0 and 0.5.";
        if (ScoreFunction is not ("min" or "weighted-mean"))
            yield return "Forewarn:Health:ScoreFunction is 'min' or 'weighted-mean'.";
        if (ForecastWindowSeconds is < 1 or > 300)
            yield return "Forewarn:Health:ForecastWindowSeconds must be between 1 and 300.";
        if (LatencyWindowSeconds is < 1 or > 600)
            yield return "Forewarn:Health:LatencyWindowSeconds must be between 1 and 600.";
        if (LatencyObjectiveMs <= 0)
            yield return "Forewarn:Health:LatencyObjectiveMs must be positive.";
        if (BreachSamples < 1 || BreachWindowSamples < BreachSamples || BreachWindowSamples > 600)
            yield return "Forewarn:Health:BreachSamples must be at least 1 and at most BreachWindowSamples (at most 600).";
        if (SystemSustainSeconds is < 0 or > 600)
            yield return "Forewarn:Health:SystemSustainSeconds must be between 0 and 600.";
        if (StrainFullAt is < 0 or >= 1)
            yield return "Forewarn:Health:StrainFullAt must be at least 0 and below 1.";
        if (ServiceFailuresToTrip is < 1 or > 100)
            yield return "Forewarn:Health:ServiceFailuresToTrip must be between 1 and 100.";
        if (ForecastPersistSamples is < 1 or > 1000)
            yield return "Forewarn:Health:ForecastPersistSamples must be between 1 and 1000.";
        if (LatencyMinimumRequests is < 1 or > 1_000_000)
            yield return "Forewarn:Health:LatencyMinimumRequests must be between 1 and 1000000.";
        if (QueueDelayObjectiveMs <= 0)
            yield return "Forewarn:Health:QueueDelayObjectiveMs must be positive.";
        if (DiskFloorMinutes < 0 || DiskMinimumFreeMiB < 0 || DiskAlertHours < 0)
            yield return "Forewarn:Health:DiskFloorMinutes, DiskMinimumFreeMiB and DiskAlertHours must not be negative.";
        if (AlertWebhook is not null && !Uri.TryCreate(AlertWebhook, UriKind.Absolute, out _))
            yield return $"Forewarn:Health:AlertWebhook '{AlertWebhook}' is not an absolute URL.";
    }
}
