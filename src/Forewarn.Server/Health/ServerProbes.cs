using Forewarn.Core.Health;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server.Health;

/// <summary>
/// Busy versus maximum request workers (patent ¶[0065]: available threads nearing zero), as the
/// share of worker time spent processing since the previous sample: steadier than an instantaneous
/// count, which jumps with every burst. Full headroom up to a quarter of worker time; above it the
/// headroom falls as the cube of the way to full (1 − x³): busy workers are not distress by themselves,
/// waiting is, and a queue's wait grows ever faster as they fill (as 1/(1 − utilisation)). A straight
/// line put the failover threshold at 81 % busy, so a server swinging between 50 and 90 % of its
/// capacity, healthy by every other figure, told its clients to leave; on the cube it is at 93 %, 90 %
/// busy holds the door to new clients (0.35) and the returning clients' threshold is at 85 %. The
/// forecast still sees a rise from the knee on, flatter at first (0.96 at 50 % busy, 0.78 at 70 %).
/// </summary>
public sealed class WorkersProbe(WorkerPool server) : IProbe
{
    private const double Knee = 0.25;

    /// <summary>This probe's headroom at <paramref name="utilisation"/> (0..1).</summary>
    public static double HeadroomAt(double utilisation)
    {
        double x = Math.Clamp((utilisation - Knee) / (1 - Knee), 0, 1);
        return 1 - x * x * x;
    }

    /// <summary>The utilisation at which this probe's headroom is <paramref name="headroom"/> (its inverse above the knee).</summary>
    public static double UtilisationAt(double headroom) => Knee + Math.Cbrt(1 - Math.Clamp(headroom, 0, 1)) * (1 - Knee);

    private readonly BusyMeter _meter = new(server);
    private double _utilisation;

    public string Name => "workers";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        int max = server.MaxWorkers;
        if (_meter.Read() is { } read)
            _utilisation = read.Utilisation;
        return new ProbeSample(Name, Kind, HeadroomAt(_utilisation), _utilisation * 100, "% busy", true,
            $"{server.BusyWorkers}/{max} busy now, {_utilisation * 100:0.#} % utilised since the last sample");
    }
}

/// <summary>
/// Queueing (DAGOR's overload signal: queueing time, not CPU): how long requests wait between reaching
/// the host and a worker starting on them — in the socket's receive buffer (timed from the kernel's
/// arrival stamp) and in the server's own queue — against <see cref="HealthOptions.QueueDelayObjectiveMs"/>,
/// and how full the queue is. The delay is the longer of the mean wait over the last second (when it
/// holds at least <see cref="HealthOptions.LatencyMinimumRequests"/> requests: fewer are no evidence) and
/// the age of the oldest request waiting in the queue now, so that a total stall shows even when nothing
/// starts.
/// </summary>
public sealed class QueueProbe(WorkerPool server, HealthOptions options) : IProbe
{
    private readonly Queue<(long WaitTicks, long Count)> _history = new();

    public string Name => "queue";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        int depth = server.QueueDepth, capacity = server.QueueCapacity;
        var waits = server.QueueWaits;
        _history.Enqueue(waits);
        while (_history.Count > Math.Max(2, (int)Math.Round(options.SampleHz) + 1))
            _history.Dequeue();
        var (oldWait, oldCount) = _history.Peek();
        long started = waits.Count - oldCount;
        double meanWaitMs = started >= options.LatencyMinimumRequests ? (waits.WaitTicks - oldWait) * 1000.0 / server.TickFrequency / started : 0;
        double oldestMs = server.OldestQueuedAge.TotalMilliseconds;
        double delayMs = Math.Max(meanWaitMs, oldestMs);
        double headroom = Math.Min(ProbeSample.FromLoad(depth, capacity), ProbeSample.FromLoad(delayMs, options.QueueDelayObjectiveMs, options.QueueDelayObjectiveMs * 0.25));
        return new ProbeSample(Name, Kind, headroom, delayMs, "ms queueing", true,
            $"mean wait {meanWaitMs:0.##} ms over the last {started} requests{(started < options.LatencyMinimumRequests ? " (no evidence)" : "")}; {depth}/{capacity} queued, oldest waiting {oldestMs:0.#} ms; objective {options.QueueDelayObjectiveMs} ms");
    }
}

/// <summary>
/// The slow-work pool (PBKDF2 verifications, store lookups on a cache miss): the typical client's wait
/// for its turn (<see cref="Core.Aaa.SlowWork.TypicalWait"/>) against Forewarn:SlowWork:WaitObjectiveMs.
/// A client flooding the pool waits behind its own backlog and moves neither figure; a pool that stops
/// moving, or one too small for every client's logins, does.
/// </summary>
public sealed class SlowWorkProbe(Core.Aaa.SlowWork pool, Core.Aaa.SlowWorkOptions options) : IProbe
{
    public string Name => "slow-work";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        var wait = pool.TypicalWait();
        double waitMs = wait?.TotalMilliseconds ?? 0;
        double headroom = ProbeSample.FromLoad(waitMs, options.WaitObjectiveMs, options.WaitObjectiveMs * 0.25);
        return new ProbeSample(Name, Kind, headroom, waitMs, "ms waiting", true,
            $"typical wait {waitMs:0.#} ms{(wait is null ? " (no slow work)" : "")}; {pool.Queued}/{pool.Capacity} queued, {pool.Busy}/{pool.Threads} threads busy, {pool.Refused} refused; objective {options.WaitObjectiveMs} ms");
    }
}

/// <summary>
/// Service latency (receipt to answer) over the latency window, against the latency objective. The
/// figure is the p99, but never one that fewer than three requests reach (with n requests, the
/// quantile 1 − 3/n up to p99): one slow request is an anecdote, not a breach. Fewer than
/// <see cref="HealthOptions.LatencyMinimumRequests"/> requests are no evidence at all. When warm-up
/// ends (<see cref="WarmUp"/>) the window is emptied: the first requests after start pay for JIT
/// compilation, not for load.
/// </summary>
public sealed class LatencyProbe(LatencyWindow window, HealthOptions options, WarmUp warmUp) : IProbe
{
    private bool _warm;
    private int _generation;

    public string Name => "latency";
    public ProbeKind Kind => ProbeKind.Server;

    /// <summary>This probe's headroom for a request latency of <paramref name="milliseconds"/>.</summary>
    public static double HeadroomAt(double milliseconds, HealthOptions options) =>
        ProbeSample.FromLoad(milliseconds, options.LatencyObjectiveMs, options.LatencyObjectiveMs * options.LatencyKnee);

    /// <summary>The quantile read from <paramref name="count"/> requests: p99, or lower so that at least three requests reach it.</summary>
    public static double QuantileFor(long count) => count <= 0 ? 0.99 : Math.Clamp(1 - 3.0 / count, 0.5, 0.99);

    public ProbeSample Sample()
    {
        if (warmUp.Generation != _generation)
        {
            _generation = warmUp.Generation;
            _warm = false;
        }
        if (!_warm && warmUp.IsOver)
        {
            _warm = true;
            window.Reset();
        }
        var (p50, _, p99, value, n) = window.Percentiles(QuantileFor);
        double quantile = QuantileFor(n);
        if (n == 0)
            return new ProbeSample(Name, Kind, 1, 0, "ms", true, _warm ? "no requests in the window" : "warming up: no requests counted yet");
        string figures = $"p50 {p50:0.###} ms, p99 {p99:0.###} ms over {n} requests; objective {options.LatencyObjectiveMs} ms";
        if (n < options.LatencyMinimumRequests)
            return new ProbeSample(Name, Kind, 1, value, "ms", true, $"no evidence: {figures} (fewer than {options.LatencyMinimumRequests})");
        return new ProbeSample(Name, Kind, HeadroomAt(value, options), value, $"ms p{quantile * 100:0.#}", true,
            $"p{quantile * 100:0.#} {value:0.###} ms; {figures}");
    }
}

/// <summary>
/// Drops that show the server's own distress, per second: the queue full, requests that waited past the
/// queue timeout, and the valid requests among the datagrams the kernel dropped because this server's own
/// sockets overflowed. Invalid input (unknown clients, bad authenticators, malformed packets) is counted by
/// reason and shown in the detail, but never lowers the headroom: a spoofer must not be able to push every
/// client away. The kernel cannot tell valid datagrams from invalid ones, so an overflow is scored as the
/// valid requests it cost: the overflows of the interval times the valid share of what the server received
/// in it (the kernel drops whatever arrives while the buffer is full, so the lost datagrams are mixed as
/// the received ones are). A flood of forged datagrams that overflows the buffer scores its few valid
/// casualties; an overload of real requests scores every one.
/// </summary>
public sealed class DropsProbe(ServerCounters counters, Func<IEnumerable<System.Net.IPEndPoint>> endpoints, HealthOptions options, TimeProvider time) : IProbe
{
    private readonly SocketDrops _sockets = new(endpoints);
    private long _lastDistress = -1, _lastOverflowed, _lastReceived, _lastInvalid;
    private long _lastTimestamp;
    private double _rate;

    public string Name => "drops";
    public ProbeKind Kind => ProbeKind.Server;

    public ProbeSample Sample()
    {
        long queueFull = counters.Dropped(DropReason.QueueFull), timedOut = counters.Dropped(DropReason.QueueTimeout);
        long overflowed = _sockets.Read();
        long received = counters.Received, invalid = Invalid(counters);
        long distress = queueFull + timedOut;
        long now = time.GetTimestamp();
        if (_lastDistress >= 0)
        {
            double seconds = time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
            if (seconds > 0)
            {
                double lost = Math.Max(0, overflowed - _lastOverflowed) * ValidShare(received - _lastReceived, invalid - _lastInvalid);
                _rate = (Math.Max(0, distress - _lastDistress) + lost) / seconds;
            }
        }
        (_lastDistress, _lastOverflowed, _lastReceived, _lastInvalid, _lastTimestamp) = (distress, overflowed, received, invalid, now);
        return new ProbeSample(Name, Kind, ProbeSample.FromLoad(_rate, options.DropRateLimit), _rate, "distress drops/s", true,
            $"distress: queue full {queueFull}, queued too long {timedOut}, socket overflows {overflowed} (scored by the valid share received); invalid input (not scored) {invalid}");
    }

    /// <summary>
    /// Drops of input that is wrong in itself (malformed, from no known client, failing its authenticators):
    /// not the symptoms of load (queue full or too long, the slow-work pool full, a duplicate in progress, an
    /// internal error), nor a drill's drops (which are not counted as received).
    /// </summary>
    private static long Invalid(ServerCounters counters)
    {
        long sum = 0;
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            if (reason is not (DropReason.None or DropReason.QueueFull or DropReason.QueueTimeout or DropReason.SlowWorkFull
                or DropReason.DuplicateInProgress or DropReason.InternalError or DropReason.Drill))
                sum += counters.Dropped(reason);
        }
        return sum;
    }

    /// <summary>The share of the datagrams received in an interval that were not invalid input (1 when none arrived).</summary>
    internal static double ValidShare(long received, long invalid) =>
        received <= 0 ? 1 : Math.Clamp(1 - (double)invalid / received, 0, 1);
}

/// <summary>
/// Datagrams the kernel dropped on this server's own sockets (the receive buffer was full): the "drops"
/// column of /proc/net/udp and /proc/net/udp6 for the listeners' local addresses and ports. Other
/// processes' sockets are not this server's distress.
/// </summary>
internal sealed class SocketDrops(Func<IEnumerable<System.Net.IPEndPoint>> endpoints)
{
    private string[]? _keys;

    public long Read()
    {
        if (!Proc.Available)
            return 0;
        if (_keys is null or { Length: 0 })
            _keys = [.. endpoints().Select(Key)];
        if (_keys.Length == 0)
            return 0;
        return Sum(Proc.Read("/proc/net/udp"), _keys) + Sum(Proc.Read("/proc/net/udp6"), _keys);
    }

    /// <summary>The local_address column for an endpoint: each 32-bit word of the address in host order, in hex, then the port.</summary>
    internal static string Key(System.Net.IPEndPoint endpoint)
    {
        var bytes = endpoint.Address.GetAddressBytes();
        var text = new System.Text.StringBuilder(41);
        for (int i = 0; i < bytes.Length; i += 4)
            text.Append(BitConverter.ToUInt32(bytes, i).ToString("X8", System.Globalization.CultureInfo.InvariantCulture));
        return text.Append(':').Append(endpoint.Port.ToString("X4", System.Globalization.CultureInfo.InvariantCulture)).ToString();
    }

    internal static long Sum(string? table, string[] keys)
    {
        if (table is null)
            return 0;
        long sum = 0;
        foreach (var line in table.Split('\n'))
        {
            // "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"
            var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length < 13 || Array.IndexOf(keys, columns[1]) < 0)
                continue;
            if (long.TryParse(columns[^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long drops))
                sum += drops;
        }
        return sum;
    }
}
