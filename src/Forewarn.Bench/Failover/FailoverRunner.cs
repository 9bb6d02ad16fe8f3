using System.Diagnostics;
using System.Globalization;

namespace Forewarn.Bench.Failover;

/// <summary>
/// Runs one failover scenario end to end: prepares and starts the servers, starts the fleet, degrades
/// the first server, heals it, waits for the return, and measures everything the result reports.
/// Polls the servers and the fleet every 250 ms; <see cref="Live"/> is the latest view.
/// </summary>
public sealed class FailoverRunner(FailoverOptions options)
{
    private readonly Stopwatch _clock = new();
    private readonly List<RequestRecord> _records = [];
    private readonly List<TimelinePoint> _timeline = [];
    private int[] _lastServer = [];
    private long _failed, _late;
    private string _phase = "starting";
    private List<ServerNode> _nodes = [];

    /// <summary>The latest view of the run, for a progress bar or a live display.</summary>
    public FailoverLive Live { get; private set; } = new("starting", 0, 1, null, [], options.Devices);

    private double Now => _clock.Elapsed.TotalSeconds;
    private double Total => options.BaselineSeconds + options.DegradeSeconds + options.ReturnSeconds;

    public async Task<FailoverResult> RunAsync(CancellationToken cancellationToken = default)
    {
        options.Validate();
        Directory.CreateDirectory(options.WorkDirectory);
        _lastServer = Enumerable.Repeat(-1, options.Devices).ToArray();
        try
        {
            _nodes = [.. await Task.WhenAll(Enumerable.Range(0, options.Servers)
                .Select(i => ServerNode.PrepareAsync(i, options.ServerAddress(i), options, Settings(i), cancellationToken))).ConfigureAwait(false)];
            await Task.WhenAll(_nodes.Select(n => n.StartAsync(cancellationToken))).ConfigureAwait(false);
            _clock.Start();
            await using var fleet = new Fleet(options, _clock, advisories: options.Mode != FailoverMode.Classic);
            if (options.MeasuresCapacity)
            {
                // A's lookups cost the same all run long; its capacity is measured (warm, before the fleet
                // starts), and the fleet offers a share of it (OverloadStart) until the ramp. Measuring
                // saturates A, and its latency window remembers it: the fleet starts once every server is
                // back in Accept, so that what A learns from its first break is the ramp's load.
                _phase = "measuring server A's capacity";
                await WarmAsync(cancellationToken).ConfigureAwait(false);
                await _nodes[0].DrillAsync("slow-store", Total + 120, options.OverloadLookupMs / 200, cancellationToken).ConfigureAwait(false);
                _capacity = await MeasureCapacityAsync(_nodes[0], cancellationToken).ConfigureAwait(false);
                Offer(fleet, StartShare);
                await WaitSteadyAsync(cancellationToken).ConfigureAwait(false);
            }
            using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var sampler = SampleLoopAsync(fleet, sampling.Token);
            fleet.Start();

            // A server that has just started scores low for a while (its first requests ran while the JIT
            // compiled, and the latency window remembers them): start from every server in Accept.
            _phase = "warming up";
            if (!options.MeasuresCapacity)
                await WarmAsync(cancellationToken).ConfigureAwait(false);
            await WaitSteadyAsync(cancellationToken).ConfigureAwait(false);
            _phase = "steady";
            _steadyAt = Now;
            await Task.Delay(TimeSpan.FromSeconds(options.BaselineSeconds), cancellationToken).ConfigureAwait(false);
            double degradedAt = Now;
            // What A sent before the event (to the capacity measurement's clients, say) is not the event's.
            var sentBefore = await _nodes[0].AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);
            _phase = $"degrading server A ({options.Degradation})";
            var degrade = options.Degradation switch
            {
                Degradation.Overload => RampLoadAsync(fleet, cancellationToken),
                Degradation.Steady => SwingLoadAsync(fleet, cancellationToken),
                Degradation.Oscillate => OscillateAsync(_nodes[0], cancellationToken),
                _ => DegradeAsync(_nodes[0], cancellationToken),
            };
            await Task.Delay(TimeSpan.FromSeconds(options.DegradeSeconds), cancellationToken).ConfigureAwait(false);
            await degrade.ConfigureAwait(false);
            double healedAt = Now;
            var sentWhileDegraded = await _nodes[0].AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);
            // A crashed A answers nothing (no counts to subtract from).
            if (sentWhileDegraded != default)
                sentWhileDegraded -= sentBefore;
            _phase = "healed: devices return";
            if (options.MeasuresCapacity)
                Offer(fleet, StartShare);
            else
                await HealAsync(_nodes[0], cancellationToken).ConfigureAwait(false);
            while (Now - healedAt < options.ReturnSeconds && !AllBack(healedAt))
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            _phase = "stopping";
            await fleet.StopAsync().ConfigureAwait(false);
            double endedAt = Now;
            await sampling.CancelAsync().ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
            Consume(fleet);

            var changes = await _nodes[0].ZoneChangesAsync(cancellationToken).ConfigureAwait(false);
            var advisoryMessages = await _nodes[0].AdvisoriesSentAsync(cancellationToken).ConfigureAwait(false);
            return Measure(fleet, degradedAt, healedAt, endedAt, changes, sentWhileDegraded, advisoryMessages);
        }
        finally
        {
            foreach (var node in _nodes)
                await node.DisposeAsync().ConfigureAwait(false);
        }
    }

    private List<string> Settings(int index)
    {
        var settings = new List<string>
        {
            // Few workers, so that stalled lookups exhaust them; cached lookups need microseconds.
            $"Forewarn:Workers={(index == 0 && options.MeasuresCapacity ? options.OverloadWorkers : 16)}",
            // Every server and the fleet share this machine: machine-wide probes would see them all.
            "Forewarn:Health:Weights:cpu=0",
            "Forewarn:Health:Weights:processes=0",
            $"Forewarn:Advisory:InviteBatchSize={Math.Max(10, options.Devices / 20)}",
            "Forewarn:Advisory:InviteSpacingMs=500",
            $"Forewarn:Advisory:Carrier={options.Carrier}",
            "Logging:LogLevel:Default=Warning",
            // The advisory service's few Information lines (budget learned, returns held) say why a return paused.
            "Logging:LogLevel:Forewarn.Server.Advisories=Information",
            $"Forewarn:Advisory:PeerSecret={options.Secret}-peers",
        };
        if (options.Mode == FailoverMode.Classic)
            settings.Add("Forewarn:Advisory:Enabled=false");
        // Overload: shed only the load above what the server carried when it broke, not every client.
        if (options.MeasuresCapacity)
            settings.Add("Forewarn:Advisory:Select:Strategy=enough");
        if (index == 0 && options.MeasuresCapacity)
        {
            settings.Add(FormattableString.Invariant($"Forewarn:Health:LatencyObjectiveMs={options.OverloadLatencyObjectiveMs}"));
            settings.Add(FormattableString.Invariant($"Forewarn:Health:QueueDelayObjectiveMs={options.OverloadQueueObjectiveMs}"));
            // A queue stands (and serves the newest first) once its oldest has waited this long: two lookups, not 20 ms.
            settings.Add(FormattableString.Invariant($"Forewarn:QueueTargetMs={options.OverloadQueueObjectiveMs}"));
        }
        if (options.Mode == FailoverMode.Advisory)
            settings.Add("Forewarn:Health:ForecastHorizonSeconds=0");
        int peer = 0;
        for (int p = 0; p < options.Servers; p++)
        {
            if (p == index)
                continue;
            settings.Add($"Forewarn:Advisory:Peers:{peer}:Address={options.ServerAddress(p)}");
            settings.Add($"Forewarn:Advisory:Peers:{peer}:AuthPort=1812");
            settings.Add($"Forewarn:Advisory:Peers:{peer}:AdvisoryPort=1814");
            peer++;
        }
        return settings;
    }

    /// <summary>Applies the degradation, growing it over the ramp in one-second steps.</summary>
    private async Task DegradeAsync(ServerNode node, CancellationToken cancellationToken)
    {
        double seconds = options.DegradeSeconds + 5;
        switch (options.Degradation)
        {
            case Degradation.Crash:
                await node.CrashAsync().ConfigureAwait(false);
                return;
            case Degradation.Hang:
                await node.SignalAsync(stop: true).ConfigureAwait(false);
                return;
            case Degradation.CpuHog:
                await node.DrillAsync("cpu-hog", seconds, 1, cancellationToken).ConfigureAwait(false);
                return;
            case Degradation.FailAccounting:
                await node.DrillAsync("fail-accounting", seconds, 1, cancellationToken).ConfigureAwait(false);
                return;
            case Degradation.Loss:
                await node.DrillAsync("loss", seconds, 0.3, cancellationToken).ConfigureAwait(false);
                return;
        }
        // Workers: lookups stall for up to 25 × 200 ms = 5 s each, every worker busy within a step.
        // Slow store: lookups grow from 5 ms to 50 ms, so the server keeps up at first, then falls behind
        // (sixteen workers serve 1,000 lookups a second up to 16 ms each): a degradation the forecast can see coming.
        double full = options.Degradation == Degradation.Workers ? 25 : 0.25;
        int steps = Math.Max(1, (int)Math.Round(options.RampSeconds));
        var start = Stopwatch.StartNew();
        for (int step = 1; step <= steps; step++)
        {
            await node.DrillAsync("slow-store", seconds - start.Elapsed.TotalSeconds, full * step / steps, cancellationToken).ConfigureAwait(false);
            if (step < steps)
                await Task.Delay(TimeSpan.FromSeconds(1) - TimeSpan.FromSeconds(start.Elapsed.TotalSeconds - (step - 1)), cancellationToken).ConfigureAwait(false);
        }
    }

    private double _capacity;
    private double _steadyAt = 1;
    private double? _peakReachedAt;

    /// <summary>
    /// Overload: the offered load grows by <see cref="FailoverOptions.OverloadStepPerSecond"/> of the
    /// capacity a second (in tenth-of-a-second steps) from its start to its peak, and stays there.
    /// </summary>
    private async Task RampLoadAsync(Fleet fleet, CancellationToken cancellationToken)
    {
        var start = Stopwatch.StartNew();
        double share;
        do
        {
            share = Math.Min(options.OverloadPeak, options.OverloadStart + options.OverloadStepPerSecond * start.Elapsed.TotalSeconds);
            Offer(fleet, share);
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
        while (share < options.OverloadPeak && start.Elapsed.TotalSeconds < options.DegradeSeconds);
        _peakReachedAt = Now;
    }

    /// <summary>The offered load before and after the event, and at its peak, as shares of A's capacity.</summary>
    private double StartShare => options.Degradation == Degradation.Steady ? options.SteadyShare : options.OverloadStart;
    private double PeakShare => options.Degradation == Degradation.Steady ? options.SteadyShare + options.SteadySwing : options.OverloadPeak;

    /// <summary>The whole fleet offers <paramref name="share"/> of A's measured capacity.</summary>
    private void Offer(Fleet fleet, double share) => fleet.RateScale = share * _capacity / (options.Devices * options.RatePerDevice);

    /// <summary>Steady: the offered load swings around its middle share of A's capacity, updated every tenth of a second.</summary>
    private async Task SwingLoadAsync(Fleet fleet, CancellationToken cancellationToken)
    {
        var start = Stopwatch.StartNew();
        while (start.Elapsed.TotalSeconds < options.DegradeSeconds)
        {
            double share = options.SteadyShare + options.SteadySwing * Math.Sin(2 * Math.PI * start.Elapsed.TotalSeconds / options.SteadyPeriodSeconds);
            Offer(fleet, share);
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Oscillate: A's score held by a Level drill, set about three times a second (each setting waits for the monitor's next tick), on a sine around the returning
    /// clients' threshold, then the new clients', then the failover threshold, a third of the time each.
    /// </summary>
    private async Task OscillateAsync(ServerNode node, CancellationToken cancellationToken)
    {
        var thresholds = new Core.Health.Thresholds();
        double[] centres = [thresholds.ConnectReturning, thresholds.ConnectNew, thresholds.Failover];
        var start = Stopwatch.StartNew();
        while (start.Elapsed.TotalSeconds < options.DegradeSeconds)
        {
            double t = start.Elapsed.TotalSeconds;
            double centre = centres[Math.Min(centres.Length - 1, (int)(t / options.DegradeSeconds * centres.Length))];
            double level = centre + options.OscillationAmplitude * Math.Sin(2 * Math.PI * t / options.OscillationPeriodSeconds);
            await node.DrillAsync("level", options.DegradeSeconds + 5, level, cancellationToken).ConfigureAwait(false);
            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What server A answers a second when asked as fast as it can: every worker busy and a short queue
    /// (below) from eight clients on their own addresses, for 4 s, the last 3 s counted.
    /// Classic client settings, so that nothing is hedged or copied and every answer is A's. (One client
    /// alone measured 276/s in a run where A then carried 482/s for the fleet: the measuring client, not
    /// A, was the limit.)
    /// </summary>
    private async Task<double> MeasureCapacityAsync(ServerNode node, CancellationToken cancellationToken)
    {
        var clients = Enumerable.Range(0, 8).Select(i => new Client.ForewarnClient(
            new Client.ClientOptions
            {
                LocalAddress = System.Net.IPAddress.Parse($"127.3.251.{i + 1}"), AdvisoryPort = 0, StatusServerInterval = TimeSpan.Zero,
                Timeout = TimeSpan.FromSeconds(5), Hedging = false, RetransmitAtDeadline = false, SuspectAfter = int.MaxValue, KeepaliveInterval = TimeSpan.Zero,
            },
            [new Client.PoolServer(node.Address, 1812, 1813, options.Secret)])).ToList();
        try
        {
            var clock = Stopwatch.StartNew();
            long counted = 0;
            // Enough requests outstanding to keep every worker busy, and a queue short enough (about 10 ms of
            // waiting) not to stand: a standing queue serves the newest first and drops the oldest, whose
            // clients then wait out their timeout, and 64 outstanding on 4 workers measured half the capacity.
            int outstanding = options.OverloadWorkers + (int)Math.Ceiling(options.OverloadWorkers * 10 / options.OverloadLookupMs) + 1;
            await Task.WhenAll(Enumerable.Range(0, outstanding).Select(async n =>
            {
                var client = clients[n % clients.Count];
                while (clock.Elapsed < TimeSpan.FromSeconds(4))
                {
                    try
                    {
                        await client.SendAsync(Client.RadiusRequest.Pap("u", "pw"), cancellationToken).ConfigureAwait(false);
                        if (clock.Elapsed >= TimeSpan.FromSeconds(1))
                            Interlocked.Increment(ref counted);
                    }
                    catch (TimeoutException)
                    {
                    }
                }
            })).ConfigureAwait(false);
            return counted / (clock.Elapsed.TotalSeconds - 1);
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HealAsync(ServerNode node, CancellationToken cancellationToken)
    {
        if (options.Degradation == Degradation.Crash)
            await node.StartAsync(cancellationToken).ConfigureAwait(false);
        else if (options.Degradation == Degradation.Hang)
            await node.SignalAsync(stop: false).ConfigureAwait(false);
        else
            await node.StopDrillAsync(cancellationToken).ConfigureAwait(false);
    }

    private bool AllBack(double healedAt)
    {
        lock (_records)
        {
            var back = new HashSet<int>();
            for (int i = _records.Count - 1; i >= 0 && _records[i].DoneAt >= healedAt; i--)
            {
                if (_records[i].Server == 0)
                    back.Add(_records[i].Device);
            }
            return back.Count == options.Devices;
        }
    }

    private void Consume(Fleet fleet)
    {
        lock (_records)
        {
            while (fleet.Records.TryDequeue(out var record))
            {
                _records.Add(record);
                if (record.Server >= 0)
                    _lastServer[record.Device] = record.Server;
                if (record.Server < 0)
                    _failed++;
                else if (record.DoneAt - record.SentAt > options.Timeout.TotalSeconds)
                    _late++;
            }
        }
    }

    /// <summary>The 99th percentile of <paramref name="sortedSeconds"/> (latencies in seconds, ascending), in ms; null for none.</summary>
    private static double? P99Ms(List<double> sortedSeconds) => sortedSeconds.Count == 0 ? null
        : Math.Round(1000 * sortedSeconds[Math.Min(sortedSeconds.Count - 1, (int)Math.Ceiling(0.99 * sortedSeconds.Count) - 1)], 1);

    private async Task SampleLoopAsync(Fleet fleet, CancellationToken cancellationToken)
    {
        var names = _nodes.Select(n => n.Name).ToList();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        // The last second's counts (five samples a quarter second apart): what the fleet sent, and what
        // each server received (every request, the fleet's copies and keepalives included).
        var counts = new Queue<(double At, long Sent, long?[] Received)>();
        var latencies = new List<double>();
        try
        {
            do
            {
                Consume(fleet);
                var samples = await Task.WhenAll(_nodes.Select(n => n.SampleAsync(cancellationToken))).ConfigureAwait(false);
                double now = Now;
                counts.Enqueue((now, fleet.Sent, samples.Select(s => s?.Received).ToArray()));
                while (counts.Count > 5)
                    counts.Dequeue();
                var (firstAt, firstSent, firstReceived) = counts.Peek();
                double span = now - firstAt;
                double sentPerSecond = span > 0 ? Math.Round((fleet.Sent - firstSent) / span, 1) : 0;
                var receivedPerSecond = samples.Select((s, i) => span > 0 && s?.Received is long r && firstReceived[i] is long r0 && r >= r0
                    ? Math.Round((r - r0) / span, 1) : (double?)null).ToList();
                int[] attached = new int[_nodes.Count];
                double rate;
                lock (_records)
                {
                    foreach (int server in _lastServer)
                    {
                        if (server >= 0)
                            attached[server]++;
                    }
                    for (int i = _records.Count - 1; i >= 0 && _records[i].DoneAt > now - 1; i--)
                    {
                        if (_records[i].Server >= 0)
                            latencies.Add(_records[i].DoneAt - _records[i].SentAt);
                    }
                    rate = latencies.Count;
                }
                latencies.Sort();
                double? p99 = P99Ms(latencies);
                latencies.Clear();
                var point = new TimelinePoint(Math.Round(now, 3),
                    samples.Select(s => s?.Score).ToList(), samples.Select(s => s?.Predicted).ToList(),
                    samples.Select(s => s?.Zone ?? "down").ToList(), attached, rate, Interlocked.Read(ref _failed), Interlocked.Read(ref _late),
                    samples.Select(s => s?.WarmingUp ?? false).ToList(), sentPerSecond, receivedPerSecond, p99);
                lock (_timeline)
                    _timeline.Add(point);
                _connectThreshold = samples[0]?.ConnectThreshold ?? _connectThreshold;
                Live = new FailoverLive(_phase, now, Total, point, names, options.Devices);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private double _connectThreshold = 0.5;

    /// <summary>
    /// Every server answers a few hundred logins before the run, as alternates that serve their own
    /// devices would have: their code is compiled and the user is cached when the fleet arrives.
    /// </summary>
    private async Task WarmAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_nodes.Select(async node =>
        {
            await using var client = new Client.ForewarnClient(
                new Client.ClientOptions { LocalAddress = System.Net.IPAddress.Parse($"127.3.250.{node.Index + 1}"), AdvisoryPort = 0, StatusServerInterval = TimeSpan.Zero, Timeout = TimeSpan.FromSeconds(2) },
                [new Client.PoolServer(node.Address, 1812, 1813, options.Secret)]);
            for (int wave = 0; wave < 20; wave++)
            {
                await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
                {
                    try
                    {
                        await client.SendAsync(Client.RadiusRequest.Pap("u", "pw"), cancellationToken).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                })).ConfigureAwait(false);
            }
        })).ConfigureAwait(false);
    }

    /// <summary>Until every server is in Accept with a score of at least 0.8, at most 30 s.</summary>
    private async Task WaitSteadyAsync(CancellationToken cancellationToken)
    {
        var waiting = Stopwatch.StartNew();
        while (waiting.Elapsed < TimeSpan.FromSeconds(30) && !await SteadyAsync(cancellationToken).ConfigureAwait(false))
            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> SteadyAsync(CancellationToken cancellationToken)
    {
        var samples = await Task.WhenAll(_nodes.Select(n => n.SampleAsync(cancellationToken))).ConfigureAwait(false);
        return samples.All(s => s is { Zone: "Accept", Score: >= 0.8 });
    }

    private FailoverResult Measure(Fleet fleet, double degradedAt, double healedAt, double endedAt,
        IReadOnlyList<(DateTimeOffset At, string To, string Cause, double? LeadSeconds)> changes, ServerNode.AdvisoryCounts sentWhileDegraded, ServerNode.AdvisoryCounts serverAdvisories)
    {
        double timeout = options.Timeout.TotalSeconds;
        var records = _records;
        // Moved: a device's first answer from another server after the degradation.
        var moved = new Dictionary<int, double>();
        var back = new Dictionary<int, double>();
        // A device has moved when its client acts on a FAILOVER, or (classic) when an alternate first answers it.
        foreach (var (device, at) in fleet.MovedAway.OrderBy(m => m.At))
        {
            if (at >= degradedAt && !moved.ContainsKey(device))
                moved[device] = at - degradedAt;
        }
        foreach (var r in records.OrderBy(r => r.DoneAt))
        {
            if (r.DoneAt >= degradedAt && r.Server > 0 && (!moved.TryGetValue(r.Device, out var earlier) || earlier > r.DoneAt - degradedAt))
                moved[r.Device] = r.DoneAt - degradedAt;
            if (r.DoneAt >= healedAt && r.Server == 0 && !back.ContainsKey(r.Device))
                back[r.Device] = r.DoneAt - healedAt;
        }
        var movedTimes = moved.Values.Order().ToList();
        // Each device's own delay: from its first request after the degradation to its move (a device
        // that sends once a second cannot move before it sends; this is what the client library adds).
        var firstSent = new Dictionary<int, double>();
        foreach (var r in records)
        {
            if (r.SentAt >= degradedAt && (!firstSent.TryGetValue(r.Device, out var sent) || r.SentAt < sent))
                firstSent[r.Device] = r.SentAt;
        }
        var detection = moved.Where(m => firstSent.ContainsKey(m.Key)).Select(m => Math.Max(0, m.Value + degradedAt - firstSent[m.Key])).Order().ToList();
        double? Detection(double fraction) => detection.Count == 0 ? null : Math.Round(detection[Math.Min(detection.Count - 1, (int)Math.Ceiling(fraction * detection.Count) - 1)], 3);
        double? MovedAt(double fraction)
        {
            int needed = (int)Math.Ceiling(fraction * options.Devices);
            return movedTimes.Count >= needed ? Math.Round(movedTimes[needed - 1], 3) : null;
        }

        var inEvent = records.Where(r => r.SentAt >= degradedAt - timeout).ToList();
        long failed = inEvent.Count(r => r.Server < 0), late = inEvent.Count(r => r.Server >= 0 && r.DoneAt - r.SentAt > timeout);
        long laterThanOne = inEvent.Count(r => r.Server >= 0 && r.DoneAt - r.SentAt > 1);
        var firstLate = records.Where(r => r.SentAt >= degradedAt - timeout && (r.Server < 0 || r.DoneAt - r.SentAt > timeout))
            .Select(r => (double?)(r.SentAt + timeout - degradedAt)).Min();

        // The degraded server's first move to Defer after the degradation (its clock and ours are the same machine's).
        var degradedWall = DateTimeOffset.UtcNow - TimeSpan.FromSeconds(Now - degradedAt);
        var defer = changes.Where(c => c.To == "Defer" && c.At >= degradedWall.AddSeconds(-1)).OrderBy(c => c.At).FirstOrDefault();

        double baselineRate = records.Count(r => r.Server == 0 && r.DoneAt >= 1 && r.DoneAt < degradedAt) / Math.Max(1, degradedAt - 1);
        double? peak = null;
        for (double t = healedAt; t + 1 <= endedAt; t += 0.25)
        {
            double windowStart = t;
            int count = records.Count(r => r.Server == 0 && r.DoneAt >= windowStart && r.DoneAt < windowStart + 1);
            peak = Math.Max(peak ?? 0, count);
        }
        List<TimelinePoint> timeline;
        lock (_timeline)
            timeline = [.. _timeline];
        // The return starts when the healed server is back in Accept (it invites no one before): its worst score from then on.
        double returnFrom = timeline.FirstOrDefault(p => p.At >= healedAt && p.Zone[0] == "Accept")?.At ?? endedAt;
        // Readings taken while the server warms up (it restarted, or it was stopped and has just resumed) are shown, not acted on: apart.
        bool Warming(TimelinePoint p) => p.WarmingUp is { } w && w[0];
        var returnScores = timeline.Where(p => p.At >= returnFrom && p.Score[0] is not null && !Warming(p)).Select(p => p.Score[0]!.Value).ToList();
        var warmUpScores = timeline.Where(p => p.At >= healedAt && p.Score[0] is not null && Warming(p)).Select(p => p.Score[0]!.Value).ToList();

        // Latency of the answered requests: before the degradation (the unloaded figure) and during it.
        static double? P99(IEnumerable<RequestRecord> answered) => P99Ms(answered.Select(r => r.DoneAt - r.SentAt).Order().ToList());
        double? baselineP99 = P99(records.Where(r => r.Server >= 0 && r.SentAt >= _steadyAt && r.SentAt < degradedAt));
        double? eventP99 = P99(records.Where(r => r.Server >= 0 && r.SentAt >= degradedAt && r.SentAt < healedAt));
        // The requests the degraded server admitted and answered itself (the fleet's figure adds those hedged to an alternate at their deadline).
        double? admittedP99 = P99(records.Where(r => r.Server == 0 && r.SentAt >= degradedAt && r.SentAt < healedAt));
        double? worstAlternate = timeline.Where(p => p.At >= degradedAt && p.At <= healedAt)
            .SelectMany(p => p.Score.Skip(1)).Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(double.NaN).Min();

        // Overload: A's goodput (its answers within T, per second) at its best over 3 s (one second's count
        // reads the bursts of a draining queue as capacity), and what it kept once the
        // offered load reached its peak; and the share of the fleet's requests sent then that were answered within T.
        double? peakGoodput = null, keptGoodput = null, fleetGoodput = null;
        if (options.Degradation == Degradation.Overload)
        {
            var goodA = records.Where(r => r.Server == 0 && r.DoneAt - r.SentAt <= timeout).Select(r => r.DoneAt).Order().ToList();
            double best = 0;
            for (int i = 0, j = 0; i < goodA.Count; i++)
            {
                while (goodA[i] - goodA[j] >= 3)
                    j++;
                if (goodA[i] < healedAt && goodA[i] - goodA[0] >= 3)
                    best = Math.Max(best, (i - j + 1) / 3.0);
            }
            peakGoodput = Math.Round(best);
            if (_peakReachedAt is { } peakAt && healedAt - peakAt >= 1 && best > 0)
            {
                keptGoodput = Math.Round(goodA.Count(t => t >= peakAt && t < healedAt) / (healedAt - peakAt) / best, 3);
                var sent = records.Where(r => r.SentAt >= peakAt && r.SentAt < healedAt).ToList();
                fleetGoodput = sent.Count == 0 ? null : Math.Round((double)sent.Count(r => r.Server >= 0 && r.DoneAt - r.SentAt <= timeout) / sent.Count, 4);
            }
        }

        // How many times each device left A from the degradation on (a FAILOVER acted on, or a suspicion): a device moved back and forth counts each time.
        var movesPerDevice = new int[options.Devices];
        foreach (var (device, at) in fleet.MovedAway)
        {
            if (at >= degradedAt)
                movesPerDevice[device]++;
        }
        long attempts = fleet.Clients.Sum(c => c.Counters.Sent), answers = fleet.Clients.Sum(c => c.Counters.Answered);
        long clientAdvisories = fleet.Clients.Sum(c => c.Counters.AdvisoriesSent);
        return new FailoverResult
        {
            Mode = options.Mode.ToString().ToLowerInvariant(),
            Degradation = options.Degradation.ToString().ToLowerInvariant(),
            Devices = options.Devices,
            RatePerDevice = options.RatePerDevice,
            Profile = options.Profile,
            Carrier = options.Carrier,
            RampSeconds = options.RampSeconds,
            TimeoutSeconds = timeout,
            DegradedAt = Math.Round(degradedAt, 3),
            HealedAt = Math.Round(healedAt, 3),
            EndedAt = Math.Round(endedAt, 3),
            DeferredAfter = defer.To is null ? null : Math.Round((defer.At - degradedWall).TotalSeconds, 3),
            DeferCause = defer.Cause,
            ForecastLeadSeconds = defer.LeadSeconds is { } lead ? Math.Round(lead, 3) : null,
            FirstLateAfter = firstLate is { } f ? Math.Round(f, 3) : null,
            Moved = moved.Count,
            Moved50After = MovedAt(0.5),
            Moved99After = MovedAt(0.99),
            Moved100After = MovedAt(1.0),
            MovedAfterOwnRequest50 = Detection(0.5),
            MovedAfterOwnRequest99 = Detection(0.99),
            Requests = records.Count,
            RequestsInEvent = inEvent.Count,
            Failed = failed,
            Late = late,
            FailedOrLatePercent = inEvent.Count == 0 ? 0 : Math.Round(100.0 * (failed + late) / inEvent.Count, 3),
            LaterThanOneSecond = laterThanOne,
            FailedOrLaterThanOneSecondPercent = inEvent.Count == 0 ? 0 : Math.Round(100.0 * (failed + laterThanOne) / inEvent.Count, 3),
            Hedges = fleet.Clients.Sum(c => c.Counters.Hedges),
            Suspicions = fleet.Clients.Sum(c => c.Counters.Suspicions),
            Keepalives = fleet.Clients.Sum(c => c.Counters.Keepalives),
            PeerDowns = fleet.Clients.Sum(c => c.Counters.PeerDowns),
            EarlyRetransmissions = fleet.Clients.Sum(c => c.Counters.EarlyRetransmissions),
            SignallingPerDevice = Math.Round((sentWhileDegraded.Failovers + sentWhileDegraded.Reminders + sentWhileDegraded.Retransmissions) / (double)options.Devices, 3),
            RefusalsWhileDegradedPerDevice = Math.Round(sentWhileDegraded.Refusals / (double)options.Devices, 3),
            AllAdvisoriesPerDevice = Math.Round((serverAdvisories.Sent + clientAdvisories) / (double)options.Devices, 3),
            AdvisoryBreakdown = FormattableString.Invariant($"server sent {serverAdvisories.Failovers} FAILOVER, {serverAdvisories.Reminders} reminders, {serverAdvisories.Retransmissions} retransmissions, {serverAdvisories.Invites} INVITE, {serverAdvisories.Refusals} REFUSE; devices sent {clientAdvisories} ACK and PROBE (server counted {serverAdvisories.Acks} ACKs)"),
            Moved99AfterDefer = defer.To is not null && MovedAt(0.99) is { } m99 ? Math.Round(m99 - (defer.At - degradedWall).TotalSeconds, 3) : null,
            UnansweredAttemptsPerDevice = Math.Round((attempts - answers) / (double)options.Devices, 3),
            Returned = back.Count,
            AllBackAfter = back.Count == options.Devices ? Math.Round(back.Values.Max(), 3) : null,
            WorstScoreDuringReturn = returnScores.Count == 0 ? null : Math.Round(returnScores.Min(), 3),
            WorstScoreInWarmUp = warmUpScores.Count == 0 ? null : Math.Round(warmUpScores.Min(), 3),
            ConnectThreshold = _connectThreshold,
            PeakRateRatio = peak is { } p && baselineRate > 0 ? Math.Round(p / baselineRate, 3) : null,
            ServerCpuSeconds = _nodes.Select(n => Math.Round(n.CpuTime.TotalSeconds, 2)).ToList(),
            BaselineP99Ms = baselineP99,
            EventP99Ms = eventP99,
            AdmittedP99Ms = admittedP99,
            WorstAlternateScore = worstAlternate is { } w && !double.IsNaN(w) ? Math.Round(w, 3) : null,
            // A keepalive is a Status-Server and its answer: two messages.
            KeepaliveMessagesPerDeviceMinute = Math.Round(2.0 * fleet.Clients.Sum(c => c.Counters.Keepalives) / options.Devices / Math.Max(1 / 60.0, (endedAt - 1) / 60), 4),
            CapacityPerSecond = options.MeasuresCapacity ? Math.Round(_capacity) : null,
            PeakOfferedPerSecond = options.MeasuresCapacity ? Math.Round(PeakShare * _capacity) : null,
            MovesPerDeviceMean = Math.Round(movesPerDevice.Average(), 3),
            MovesPerDeviceMax = movesPerDevice.Max(),
            ZoneChangesInEvent = changes.Count(c => c.At >= degradedWall && c.At < degradedWall.AddSeconds(healedAt - degradedAt)),
            FailoversWhileDegraded = sentWhileDegraded.Failovers,
            PeakGoodput = peakGoodput,
            GoodputKeptAtPeak = keptGoodput,
            FleetAnsweredWithinTAtPeak = fleetGoodput,
            Timeline = timeline,
        };
    }

    public static string Describe(FailoverResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Mode}: moved 50/99/100 % after {r.Moved50After?.ToString("0.###", CultureInfo.InvariantCulture) ?? "-"}/{r.Moved99After?.ToString("0.###", CultureInfo.InvariantCulture) ?? "-"}/{r.Moved100After?.ToString("0.###", CultureInfo.InvariantCulture) ?? "-"} s, {r.Failed} failed, {r.Late} late");
}
