using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Health;

/// <summary>One client class's standing.</summary>
public sealed record ClassZone(string Class, Zone Zone, bool AdmitsNew, bool AdmitsReturning, Thresholds Thresholds);

/// <summary>Everything the monitor knows at one tick: what status and the admin API show.</summary>
public sealed record HealthSnapshot(
    DateTimeOffset At,
    double Score,
    double Predicted,
    double Sustained,
    double ServiceScore,
    double SystemScore,
    double Strain,
    double TrendPerSecond,
    double ForecastHorizonSeconds,
    IReadOnlyList<ProbeSample> Probes,
    IReadOnlyList<ClassZone> Zones,
    bool Draining,
    DrillState.Info? Drill,
    IReadOnlyList<ZoneChange> RecentChanges,
    IReadOnlyList<Alert> RecentAlerts)
{
    public Zone Zone => Zones.Count > 0 ? Zones[0].Zone : Zone.Accept;
    /// <summary>Warming up (after start or a stall): the score is shown but the zones count it as full health.</summary>
    public bool WarmingUp { get; init; }
}

/// <summary>One tick as the console's chart draws it.</summary>
public readonly record struct HealthPoint(DateTimeOffset At, double Score, double Sustained, double Predicted, Zone Zone);

/// <summary>
/// The monitor loop's body, free of timers and sockets: each <see cref="Tick"/> samples every probe
/// (system probes as their best reading over <see cref="HealthOptions.SystemSustainSeconds"/>), folds
/// the samples into the score, takes the sustained score (the k-th lowest of the last n: a breach
/// counts once it persists), advances the forecast on it, and moves each class's zone machine.
/// A mandatory service down, a dependent service down (patent ¶[0068]: defer every client and alert)
/// and a drain force the Defer zone. Zone changes are published through <see cref="ZoneChanged"/>.
/// </summary>
public sealed partial class HealthMonitor : IDisposable
{
    public const string DefaultClass = "default";

    private readonly IProbe[] _probes;
    private readonly HealthOptions _options;
    private readonly TimeProvider _time;
    private readonly AlertHub _alerts;
    private readonly DrillState _drill;
    private readonly ILogger _logger;
    private readonly ScoreFunction _score;
    private TrendForecaster _forecast;
    private readonly ZoneMachine[] _zones;
    private readonly Queue<ZoneChange> _changes = new();
    private readonly Lock _lock = new();
    private readonly HashSet<string> _failedServices = new(StringComparer.Ordinal);
    private volatile bool _draining;
    private readonly long _started;
    private readonly RecentValues?[] _sustain;
    private readonly RecentValues _recentScores;
    // The last ten minutes of ticks (at the default 10 Hz), for the console's chart.
    private readonly HealthPoint[] _history = new HealthPoint[6000];
    private long _historyNext;
    private readonly TickTrace? _trace;
    private HealthSnapshot? _current;

    private readonly WarmUp _warmUp;
    private bool _warmSeen;
    private long _lastTickAt;

    public HealthMonitor(IEnumerable<IProbe> probes, HealthOptions options, TimeProvider time, AlertHub alerts, DrillState drill, ILogger<HealthMonitor> logger, WarmUp? warmUp = null)
    {
        _warmUp = warmUp ?? new WarmUp(options, time);
        _probes = [.. probes];
        _options = options;
        _time = time;
        _alerts = alerts;
        _drill = drill;
        _logger = logger;
        _started = time.GetTimestamp();
        _score = new ScoreFunction(options);
        _forecast = new TrendForecaster(options);
        var zones = new List<ZoneMachine> { new(DefaultClass, options.Thresholds, options, time) };
        foreach (var (name, thresholds) in options.ClassThresholds)
            zones.Add(new ZoneMachine(name, thresholds, options, time));
        _zones = [.. zones];
        int sustain = (int)Math.Max(1, Math.Round(options.SystemSustainSeconds * options.SampleHz));
        _sustain = [.. _probes.Select(p => p.Kind == ProbeKind.System ? new RecentValues(sustain) : null)];
        _recentScores = new RecentValues(options.BreachWindowSamples);
        _trace = options.TraceFile is { Length: > 0 } file ? new TickTrace(file, _probes) : null;
    }

    /// <summary>Raised on the monitor's thread for every zone change of every class.</summary>
    public event Action<ZoneChange>? ZoneChanged;

    public HealthSnapshot Current => _current ?? Tick();

    /// <summary>The ticks after <paramref name="after"/>, oldest first, at most one per <paramref name="step"/> (the chart's resolution).</summary>
    public IReadOnlyList<HealthPoint> History(DateTimeOffset after, TimeSpan step)
    {
        var points = new List<HealthPoint>();
        lock (_lock)
        {
            long first = Math.Max(0, _historyNext - _history.Length);
            DateTimeOffset last = DateTimeOffset.MinValue;
            for (long i = first; i < _historyNext; i++)
            {
                var point = _history[i % _history.Length];
                if (point.At <= after || point.At - last < step)
                    continue;
                points.Add(point);
                last = point.At;
            }
        }
        return points;
    }

    public IReadOnlyList<IProbe> Probes => _probes;

    public ZoneMachine ZoneOf(string? clientClass)
    {
        if (clientClass is not null)
        {
            foreach (var zone in _zones)
            {
                if (zone.Class == clientClass)
                    return zone;
            }
        }
        return _zones[0];
    }

    public bool Draining => _draining;

    /// <summary>Planned maintenance: move every client away, whatever the score.</summary>
    public void Drain()
    {
        _draining = true;
        _alerts.Raise(AlertSeverity.Info, "operator", "drain requested: every client is deferred");
    }

    public void Resume()
    {
        _draining = false;
        _alerts.Raise(AlertSeverity.Info, "operator", "resume requested: zones follow the score again");
    }

    public HealthSnapshot Tick()
    {
        long tickAt = _time.GetTimestamp();
        if (_lastTickAt != 0 && _options.StallSeconds > 0 && _time.GetElapsedTime(_lastTickAt, tickAt).TotalSeconds >= _options.StallSeconds)
        {
            double stalled = _time.GetElapsedTime(_lastTickAt, tickAt).TotalSeconds;
            LogStall(_logger, stalled);
            _alerts.Raise(AlertSeverity.Warning, "monitor", $"the server stalled for {stalled:0.#} s (stopped, paused or starved): warming up again before the score counts");
            _warmUp.Restart();
            _warmSeen = false;
        }
        _lastTickAt = tickAt;
        // Read once per tick: a probe may see the warm-up end while it samples, and this tick's zone
        // decision must then still count as warm-up (its readings predate the fresh history).
        bool warm = _warmUp.IsOver;
        if (!_warmSeen && warm)
        {
            // The history the zone reads (breach persistence, system sustain windows, the trend) starts
            // with the warm state: readings taken while the JIT compiled the request path would
            // otherwise hold the sustained score down past the warm-up (measured: Defer at 5 s on a
            // fresh server whose instantaneous score was already 1.0).
            _warmSeen = true;
            _recentScores.Clear();
            foreach (var window in _sustain)
                window?.Clear();
            _forecast = new TrendForecaster(_options);
        }
        var samples = new ProbeSample[_probes.Length];
        for (int i = 0; i < _probes.Length; i++)
        {
            try
            {
                samples[i] = _probes[i].Sample();
            }
            catch (Exception e)
            {
                // A probe that cannot read is reported, not fatal; a broken mandatory probe counts as down.
                samples[i] = new ProbeSample(_probes[i].Name, _probes[i].Kind, _probes[i].Kind == ProbeKind.Mandatory ? 0 : 1, double.NaN, "",
                    _probes[i].Kind is not (ProbeKind.Mandatory or ProbeKind.Dependent), "probe failed: " + e.Message);
            }
        }

        for (int i = 0; i < samples.Length; i++)
        {
            if (_sustain[i] is { } window)
                samples[i] = Sustained(samples[i], window);
        }

        var reading = _score.Read(samples);
        double score = reading.Score;
        _recentScores.Add(score);
        double sustained = _recentScores.Lowest(_options.BreachSamples);
        long now = _time.GetTimestamp();
        _forecast.Add(sustained, now, _time.TimestampFrequency);
        double predicted = _options.ForecastHorizonSeconds > 0 ? _forecast.Predict(_options.ForecastHorizonSeconds, sustained) : sustained;

        ZoneCause? forced = null;
        if (_draining)
            forced = ZoneCause.Drain;
        foreach (var sample in samples)
        {
            bool down = sample.Kind is ProbeKind.Mandatory or ProbeKind.Dependent && !sample.Healthy;
            if (down && _failedServices.Add(sample.Name))
            {
                _alerts.Raise(AlertSeverity.Critical, sample.Name, sample.Kind == ProbeKind.Dependent
                    ? $"dependent service {sample.Name} failed ({sample.Detail}): deferring every client until it is restored"
                    : $"mandatory service {sample.Name} failed ({sample.Detail})");
            }
            else if (!down && sample.Kind is ProbeKind.Mandatory or ProbeKind.Dependent && _failedServices.Remove(sample.Name))
            {
                _alerts.Raise(AlertSeverity.Info, sample.Name, $"service {sample.Name} restored");
            }
            if (down)
                forced ??= sample.Kind == ProbeKind.Mandatory ? ZoneCause.MandatoryService : ZoneCause.DependentService;
        }

        // An operator's drill is meant to move the zone: it is not start-up noise.
        bool warmingUp = forced is null && _drill.Current is null && !warm;
        foreach (var zone in _zones)
        {
            // During warm-up the score counts as full health: only forced causes move the zone, and it
            // comes back when they end (a drain and resume on a quiet, fresh server).
            var change = warmingUp ? zone.Update(1, 1, null) : zone.Update(sustained, predicted, forced);
            if (change is null)
                continue;
            lock (_lock)
            {
                _changes.Enqueue(change);
                while (_changes.Count > 200)
                    _changes.Dequeue();
            }
            LogZoneChange(_logger, change.Class, change.From, change.To, change.Cause, change.Score, change.Predicted);
            ZoneChanged?.Invoke(change);
        }

        var zones = new ClassZone[_zones.Length];
        for (int i = 0; i < _zones.Length; i++)
            zones[i] = new ClassZone(_zones[i].Class, _zones[i].Current, _zones[i].AdmitsNew, _zones[i].AdmitsReturning, _zones[i].Thresholds);
        ZoneChange[] recent;
        lock (_lock)
            recent = [.. _changes];
        var snapshot = new HealthSnapshot(_time.GetUtcNow(), score, predicted, sustained, reading.Service, reading.System, reading.Strain,
            _forecast.Trend, _options.ForecastHorizonSeconds, samples, zones, _draining, _drill.Current, recent, _alerts.Recent)
        {
            WarmingUp = warmingUp,
        };
        _current = snapshot;
        lock (_lock)
        {
            _history[_historyNext++ % _history.Length] = new HealthPoint(snapshot.At, score, sustained, predicted, snapshot.Zone);
        }
        _trace?.Write(snapshot, _time.GetElapsedTime(_started, now).TotalSeconds);
        return snapshot;
    }

    /// <summary>A system probe's reading as the score sees it: the best headroom of its sustain window, the instant reading kept in the detail.</summary>
    private static ProbeSample Sustained(ProbeSample sample, RecentValues window)
    {
        double instant = ProbeSample.Clamp(sample.Headroom);
        window.Add(instant);
        double best = window.Highest();
        if (best <= instant)
            return sample;
        return sample with { Headroom = best, Detail = $"{sample.Detail}; headroom now {instant:0.00}, sustained {best:0.00}" };
    }

    public void Dispose() => _trace?.Dispose();

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "The monitor's samples stopped for {Seconds:0.#} s (the process was stopped, paused or starved); warming up again")]
    private static partial void LogStall(ILogger logger, double seconds);

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Zone of class {Class}: {From} -> {To} ({Cause}; score {Score:0.000}, predicted {Predicted:0.000})")]
    private static partial void LogZoneChange(ILogger logger, string @class, Zone from, Zone to, ZoneCause cause, double score, double predicted);
}
