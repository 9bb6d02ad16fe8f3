using Forewarn.Core.Health;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server.Health;

/// <summary>
/// Busy versus maximum request workers (patent ¶[0065]: available threads nearing zero), as the
/// share of worker time spent processing since the previous sample: steadier than an instantaneous
/// count, which jumps with every burst. Full headroom up to a quarter of worker time: a knee any
/// higher would hide the start of a rise from the forecast.
/// </summary>
public sealed class WorkersProbe(RadiusServer server, TimeProvider time) : IProbe
{
    private long _lastBusy = -1;
    private long _lastTimestamp;
    private double _utilisation;

    public string Name => "workers";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        long busy = server.BusyTicks, now = time.GetTimestamp();
        int max = server.MaxWorkers;
        if (_lastBusy >= 0 && now > _lastTimestamp && max > 0)
            _utilisation = Math.Clamp((busy - _lastBusy) / (double)((now - _lastTimestamp) * max), 0, 1);
        _lastBusy = busy;
        _lastTimestamp = now;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(_utilisation, 1, 0.25), _utilisation * 100, "% busy", true,
            $"{server.BusyWorkers}/{max} busy now, {_utilisation * 100:0.#} % utilised since the last sample");
    }
}

/// <summary>Requests waiting for a worker, against the queue's capacity.</summary>
public sealed class QueueProbe(RadiusServer server) : IProbe
{
    public string Name => "queue";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        int depth = server.QueueDepth, capacity = server.QueueCapacity;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(depth, capacity), depth, "queued", true, $"{depth}/{capacity}");
    }
}

/// <summary>p99 service latency (receipt to answer) over the last ten seconds, against the latency objective.</summary>
public sealed class LatencyProbe(LatencyWindow window, HealthOptions options) : IProbe
{
    public string Name => "latency";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        var (p50, p95, p99, count) = window.Percentiles();
        if (count == 0)
            return new ProbeSample(Name, Kind, 1, 0, "ms p99", true, "no requests in the window");
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(p99, options.LatencyObjectiveMs, options.LatencyObjectiveMs * options.LatencyKnee), p99, "ms p99", true,
            $"p50 {p50:0.###} ms, p95 {p95:0.###} ms, p99 {p99:0.###} ms over {count} requests; objective {options.LatencyObjectiveMs} ms");
    }
}

/// <summary>Datagrams dropped per second (unknown sources aside: they say nothing about this server's health).</summary>
public sealed class DropsProbe(ServerCounters counters, HealthOptions options, TimeProvider time) : IProbe
{
    private long _lastDrops = -1;
    private long _lastTimestamp;
    private double _rate;

    public string Name => "drops";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        long drops = counters.TotalDropped - counters.Dropped(DropReason.UnknownClient);
        long now = time.GetTimestamp();
        if (_lastDrops >= 0)
        {
            double seconds = time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
            if (seconds > 0)
                _rate = (drops - _lastDrops) / seconds;
        }
        _lastDrops = drops;
        _lastTimestamp = now;
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(_rate, options.DropRateLimit), _rate, "drops/s", true,
            $"{drops} dropped in all; queue full {counters.Dropped(DropReason.QueueFull)}");
    }
}
