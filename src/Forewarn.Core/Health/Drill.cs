namespace Forewarn.Core.Health;

/// <summary>What a drill injects. Each is a real degradation the probes then measure, except Score, which is synthetic.</summary>
public enum DrillKind
{
    /// <summary>A synthetic probe whose headroom ramps from 1 to 0 over the drill and back: rehearses the whole chain.</summary>
    Score,
    /// <summary>Every user lookup waits: workers fill up, latency rises, the queue grows.</summary>
    SlowStore,
    /// <summary>Threads spin on every core: CPU and run queue rise.</summary>
    CpuHog,
    /// <summary>Accounting commits fail: the dependent-service rule applies.</summary>
    FailAccounting,
    /// <summary>A full, blocking, compacting garbage collection every second: the pauses a busy server's runtime makes (noise, not a degradation).</summary>
    Gc,
    /// <summary>A share of the RADIUS datagrams the server receives (the intensity, 0–1) is dropped unread: a lossy path, which the server cannot see.</summary>
    Loss,
    /// <summary>The synthetic probe holds the intensity (0–1) as its headroom: a score set from outside, which the failover benchmark swings around the thresholds.</summary>
    Level,
}

/// <summary>The drill in force, if any, shared by the monitor and the components it degrades.</summary>
public sealed class DrillState(TimeProvider time)
{
    private volatile Active? _active;

    private sealed record Active(DrillKind Kind, long Start, double Seconds, double Intensity);

    public sealed record Info(DrillKind Kind, double Seconds, double ElapsedSeconds, double Intensity);

    /// <summary>The longest drill: a day, so that a soak (an hour of load and more) can be rehearsed in one drill.</summary>
    public const double MaxSeconds = 86_400;

    public void Start(DrillKind kind, double seconds, double intensity = 1)
    {
        if (seconds is <= 0 or > MaxSeconds)
            throw new ArgumentOutOfRangeException(nameof(seconds), $"A drill lasts 0 to {MaxSeconds} seconds.");
        _active = new Active(kind, time.GetTimestamp(), seconds, Math.Clamp(intensity, 0, 10));
    }

    public void Stop() => _active = null;

    /// <summary>The running drill, or null (an expired one is cleared).</summary>
    public Info? Current
    {
        get
        {
            var active = _active;
            if (active is null)
                return null;
            double elapsed = time.GetElapsedTime(active.Start).TotalSeconds;
            if (elapsed >= active.Seconds)
            {
                _active = null;
                return null;
            }
            return new Info(active.Kind, active.Seconds, elapsed, active.Intensity);
        }
    }

    public bool Is(DrillKind kind) => Current?.Kind == kind;

    /// <summary>Extra delay per user lookup during a SlowStore drill (intensity 1 = 200 ms).</summary>
    public TimeSpan StoreDelay => Current is { Kind: DrillKind.SlowStore } d ? TimeSpan.FromMilliseconds(200 * d.Intensity) : TimeSpan.Zero;

    /// <summary>During a Loss drill, whether to drop the datagram just received (its intensity is the share dropped).</summary>
    public bool DropNow() => Current is { Kind: DrillKind.Loss } d && Random.Shared.NextDouble() < d.Intensity;
}

/// <summary>The synthetic probe of a Score drill (down from 1 to 0 over the first half, back up over the second) and of a Level drill (the level given).</summary>
public sealed class DrillProbe(DrillState drill) : IProbe
{
    public string Name => "drill";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        if (drill.Current is { Kind: DrillKind.Level } level)
        {
            double held = Math.Clamp(level.Intensity, 0, 1);
            return new ProbeSample(Name, Kind, held, held, "synthetic", true, $"level drill {held:0.000}");
        }
        if (drill.Current is not { Kind: DrillKind.Score } d)
            return new ProbeSample(Name, Kind, 1, 0, "", true, "no drill");
        double half = d.Seconds / 2;
        double headroom = d.ElapsedSeconds < half ? 1 - d.ElapsedSeconds / half : (d.ElapsedSeconds - half) / half;
        return new ProbeSample(Name, Kind, headroom, headroom, "synthetic", true, $"score drill {d.ElapsedSeconds:0.0}/{d.Seconds:0} s");
    }
}
