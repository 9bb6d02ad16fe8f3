using System.Collections.Concurrent;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Protocol.Advisory;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Advisories;

/// <summary>
/// The load budget's side of the advisory service: a deferral caused by load learns the rate this
/// server carried when it broke (where the workers bind, what they carry at BudgetUtilisation); under
/// strategy "enough" only the load above the budget is shed, and whatever arrives above it later (a
/// ramp that goes on) is shed each second (four times a second where the workers bind); invitations and admitted
/// probes bring clients back only while their rates fit under it, and under the rate the workers carry
/// at the returning clients' connection threshold, read from how long requests hold a worker now
/// (<see cref="WorkerCapacity"/>).
/// </summary>
public sealed partial class AdvisoryService
{
    private readonly ConcurrentDictionary<string, byte> _loadDeferred = new();
    private readonly LoadBudget _budget;
    private long _lastCut;
    private readonly WorkerCapacity _workerCapacity = new();
    private WorkerPool? _workers;
    private HealthOptions? _healthOptions;
    private Health.LatencyWindow? _latency;
    // The evidence of the last seconds a return is judged by: the current second and the two before it.
    private const int RecentSeconds = 3;
    private BusyMeter? _secondMeter, _quarterMeter;
    private long _lastCompleted = -1;
    // The return's decision and what it remembers (the probes, the load they brought) are shared by the
    // invite loops, the probe handler and the budget tick.
    private readonly Lock _returnLock = new();
    private readonly Queue<(long At, double Rate)> _probed = new();
    private bool _heldByEvidence;
    private double _probeLoad;
    // A deferral the workers caused (see WorkersBroke): while it lasts the budget follows what they carry at
    // BudgetUtilisation, the excess is shed four times a second, and the score, low because they are that
    // busy, cuts nothing.
    private volatile bool _workersBound;
    private ServerCounters? _counters;
    // Requests offered to the workers over the last second: those completed, what the queue grew by and
    // what it dropped. Per-client rates are counted as workers take requests and smoothed over seconds:
    // under a backlog they show what the server completes, and on a ramp they lag it by a second or more.
    private double _offeredRate, _offeredRise;
    // The workers' utilisation over the last quarter second: a load that has just fallen (a burst that
    // ended) still fills the last second's count, but no longer the workers.
    private double _quarterUtilisation;
    // The busiest of the last four quarter seconds (what the score's breach, half a second of 100 ms samples, saw).
    private readonly Queue<double> _quarterUtilisations = new();
    private double _busiestQuarter;
    // Four samples a second of what the workers were offered (completed, queued, dropped), two seconds' worth.
    private readonly Queue<(long At, long Completed, long Depth, long Drops)> _offeredSamples = new();
    // The workers' utilisation over the last second (NaN before the first).
    private double _lastUtilisation = double.NaN;

    /// <summary>Requests per second this server accepts clients up to (infinity while no load-caused deferral has taught it one).</summary>
    public double BudgetLimit => _budget.Limit;

    private static bool ByLoad(ZoneCause cause) => cause is ZoneCause.Score or ZoneCause.Forecast;

    /// <summary>
    /// The load this server carries, requests/s: every client's smoothed rate; a client that has just
    /// returned (or is invited) counts what it brought when it left until its own rate shows it; a
    /// client deferred in the last two seconds counts nothing (its last rate is from before it left),
    /// later its measured rate (a deferred client that still sends is served). An invitation nobody
    /// acknowledges is given up on and its client released (it is served whenever it sends): invited
    /// for good, two vanished clients once doubled the load the budget learned.
    /// </summary>
    private double CarriedRate(long now)
    {
        double carried = 0;
        foreach (var client in _registry.All)
        {
            double since = _time.GetElapsedTime(client.StateSince, now).TotalSeconds;
            carried += client.State switch
            {
                ClientState.Deferred => since < 2 ? 0 : client.Rate,
                ClientState.Invited => Math.Max(client.SmoothedRate, client.RateWhenDeferred),
                _ => since < 3 ? Math.Max(client.SmoothedRate, client.RateWhenDeferred) : client.SmoothedRate,
            };
        }
        return carried;
    }

    /// <summary>A deferral caused by load: the budget learns the rate carried; returns the share of <paramref name="className"/>'s load to shed ("enough").</summary>
    private double LearnBreak(ZoneChange change) => LearnBreak(change.Class);

    private double LearnBreak(string className)
    {
        long now = _time.GetTimestamp();
        double carried = CarriedRate(now);
        bool byWorkers = WorkersBroke(className);
        // A break at no more than a probe's load (what a return may bring with no evidence, see ReturnLimit,
        // or what the last probe did bring) is the server's slowness showing, not its capacity: it teaches
        // the budget nothing. Taught, it kept the fleet near a probe's load long after the slowness had passed.
        double probeLoad;
        lock (_returnLock)
            probeLoad = Math.Max(_healthOptions?.LatencyMinimumRequests ?? 0, _probeLoad);
        if (carried > probeLoad * 1.05)
        {
            double workersCarry = byWorkers ? WorkersCarry() : 0;
            _budget.Broke(carried, workersCarry);
            _workersBound = byWorkers && double.IsFinite(workersCarry) && workersCarry > 0;
            LogBudget(_logger, carried, _budget.Limit);
        }
        _loadDeferred[className] = 0;
        _lastCut = now;
        double classRate = _registry.All.Where(c => c.State == ClientState.Active && InClass(c, className)).Sum(c => c.Rate);
        // The workers' load as offered now, not as the rates show it: one shed, not one a second until they
        // catch up; and none for what is within that count's noise.
        if (byWorkers && !Exceeds(LoadNow(carried, byWorkers, rise: false), _budget.Limit, counted: true))
            return 0;
        double load = LoadNow(carried, byWorkers);
        return classRate <= 0 || carried <= 0 ? 0 : Math.Clamp(_budget.Excess(load) / (classRate * load / carried), 0, 1);
    }

    /// <summary>
    /// Every second: end an episode of load once its class accepts again, and forget the budget when
    /// none lasts and nobody waits; under "enough", while a class stays deferred by load, shed what
    /// arrives above the budget (and cut it when the score stays far below the failover threshold), or,
    /// where the workers bind, let the budget follow them (the quarter tick sheds); while the server is
    /// healthy and clients wait, raise it to the load carried and grow it.
    /// </summary>
    private async Task BudgetTickAsync()
    {
        SampleWorkers();
        // An episode of load lasts until its class accepts again, whether or not anyone had to leave yet.
        foreach (var className in _loadDeferred.Keys)
        {
            if (_monitor.ZoneOf(className).Current == Zone.Accept)
                _loadDeferred.TryRemove(className, out _);
        }
        if (_loadDeferred.IsEmpty)
            _workersBound = false;
        if (_loadDeferred.IsEmpty && !_registry.All.Any(c => c.State != ClientState.Active))
        {
            lock (_returnLock)
            {
                _probeLoad = 0;
                _probed.Clear();
            }
            _budget.Forget();
            _loadDeferred.Clear();
            _workersBound = false;
            return;
        }
        if (!_budget.Known)
            return;
        long now = _time.GetTimestamp();
        double carried = CarriedRate(now);
        if (_workersBound && _options.Select.Strategy == "enough")
            _budget.Follow(WorkersCarry());
        foreach (var className in _loadDeferred.Keys)
        {
            var zone = _monitor.ZoneOf(className);
            if (_options.Select.Strategy != "enough")
                continue;
            if (!_workersBound && _monitor.Current.Score < zone.Thresholds.Failover / 2 && _time.GetElapsedTime(_lastCut, now).TotalSeconds >= _options.BudgetCutSeconds)
            {
                _budget.Cut();
                _lastCut = now;
            }
            // Where the workers bind, the quarter tick sheds (QuarterTickAsync).
            if (!_workersBound)
                carried = await ShedExcessAsync(className, carried).ConfigureAwait(false);
        }
        var main = _monitor.ZoneOf(null);
        if (main.Current == Zone.Accept && main.AdmitsReturning)
        {
            _budget.Carries(carried);
            _budget.Grow(1);
        }
    }

    /// <summary>
    /// Under "enough", the workers' budget acts before the score breaks: the door already shut (Hold)
    /// and the workers offered more than they carry busy <see cref="AdvisoryOptions.BudgetUtilisation"/>
    /// of the time (and a noise margin), the excess is shed now, as at a break, instead of once the score
    /// reaches the failover threshold: a ramp of a tenth of the capacity a second had by then passed the
    /// capacity, and the queue it built held a few hundred requests past their clients' deadlines.
    /// </summary>
    private async Task ShedBeforeBreakAsync()
    {
        if (_options.Select.Strategy != "enough" || !_loadDeferred.IsEmpty)
            return;
        var zone = _monitor.ZoneOf(null);
        if (zone.Current != Zone.Hold || !WorkersBroke(zone.Class))
            return;
        // A real excess over what a break would teach, or nothing is learned (and forgotten a second later).
        double carried = CarriedRate(_time.GetTimestamp());
        if (!Exceeds(LoadNow(carried, byWorkers: true, rise: false), Math.Max(_options.BudgetBackoff * carried, WorkersCarry()), counted: true))
            return;
        LearnBreak(zone.Class);
        await ShedExcessAsync(zone.Class, carried).ConfigureAwait(false);
    }

    /// <summary>
    /// May <paramref name="client"/> come back now, while the server carries <paramref name="carried"/>, by
    /// the budget and by the evidence of the last seconds (<see cref="ReturnLimit"/>)? When it may,
    /// <paramref name="probe"/> says whether a probe admits it; the caller that then admits it calls
    /// <see cref="Returned"/>. Both under <see cref="_returnLock"/>, taken by the caller.
    /// </summary>
    private bool MayReturn(ActiveClient client, double carried, Thresholds thresholds, out bool probe)
    {
        double more = Math.Max(0, client.RateWhenDeferred);
        probe = false;
        if (!_budget.Admits(carried, more))
            return false;
        (double limit, probe, double latencyMs, double serviceMs) = ReturnLimit(thresholds);
        // A probe is sized by what it brings itself, whatever else the server carries (NAS keepalives,
        // TACACS+ logins: load that gives no latency evidence), and takes one client even past its load: a
        // client whose rate alone exceeds it must still come back, or no evidence would ever come. What it
        // brought counts for RecentSeconds; if no evidence came by then, the next probe goes.
        if (probe ? ProbedRecently() < limit : carried + more <= limit)
        {
            _heldByEvidence = false;
            return true;
        }
        Interlocked.Increment(ref Counters._held);
        if (!_heldByEvidence)
        {
            _heldByEvidence = true;
            LogReturnsHeld(_logger, carried, limit, latencyMs, serviceMs);
        }
        return false;
    }

    /// <summary><paramref name="client"/> comes back (invited, or its PROBE admitted): a probe's share is remembered; a return the evidence admitted ends the probe.</summary>
    private void Returned(ActiveClient client, double carried, bool probe)
    {
        double more = Math.Max(0, client.RateWhenDeferred);
        if (!probe)
        {
            _probeLoad = 0;
            return;
        }
        _probed.Enqueue((_time.GetTimestamp(), more));
        // The load this probe brought the server to, for LearnBreak; one heavy client cannot stretch it
        // past twice a probe's load (a break beyond that is the load's).
        double cap = 2 * (_healthOptions?.LatencyMinimumRequests ?? 0);
        _probeLoad = Math.Max(_probeLoad, Math.Min(cap, carried + more));
    }

    /// <summary>Requests/s that probes admitted in the last RecentSeconds (older ones are forgotten).</summary>
    private double ProbedRecently()
    {
        long now = _time.GetTimestamp();
        while (_probed.TryPeek(out var oldest) && _time.GetElapsedTime(oldest.At, now).TotalSeconds >= RecentSeconds)
            _probed.Dequeue();
        return _probed.Sum(p => p.Rate);
    }

    /// <summary>
    /// The load (requests/s) returning clients may bring the server up to, judged by the connection
    /// threshold for returning clients applied to the last seconds' requests rather than to the score
    /// alone: the score's latency window (10 s) and the zone's dwell answer for load that came seconds
    /// ago, and a degradation that shows only under load (a store slowing while the clients are away)
    /// reads as health until the return has brought the load back. Three cases:
    /// <list type="bullet">
    /// <item>Fewer than <see cref="HealthOptions.LatencyMinimumRequests"/> requests answered in the last
    /// seconds (no evidence): clients come back only up to that many requests a second, a probe that
    /// gives the evidence.</item>
    /// <item>Their latency, read as the latency probe reads it, below the returning threshold: nobody.</item>
    /// <item>Otherwise the rate at which the workers' utilisation reaches that threshold, at the time a
    /// request holds a worker now (Little's law, <see cref="WorkerCapacity"/>).</item>
    /// </list>
    /// Returns the limit, whether it is a probe's, and the recent latency and service time it was judged by
    /// (NaN where unknown).
    /// </summary>
    private (double Limit, bool Probe, double LatencyMs, double ServiceMs) ReturnLimit(Thresholds thresholds)
    {
        if (_workers is not { } pool || _healthOptions is not { } health || _latency is not { } window)
            return (double.PositiveInfinity, false, double.NaN, double.NaN);
        double serviceMs = _workerCapacity.ServiceSeconds * 1000, latencyMs = double.NaN;
        // Workers held while nothing completes (a stall): nobody, probe or not.
        if (double.IsPositiveInfinity(serviceMs) && Weighed(health, "workers"))
            return (0, false, latencyMs, serviceMs);
        // A probe the operator weighs at 0 does not judge the score, and so not the return either.
        if (Weighed(health, "latency"))
        {
            (_, _, _, latencyMs, long count) = window.Percentiles(Health.LatencyProbe.QuantileFor, RecentSeconds);
            if (count < health.LatencyMinimumRequests)
                return (health.LatencyMinimumRequests, true, double.NaN, serviceMs);
            if (Health.LatencyProbe.HeadroomAt(latencyMs, health) < thresholds.ConnectReturning)
                return (0, false, latencyMs, serviceMs);
        }
        double limit = Weighed(health, "workers")
            ? _workerCapacity.RateAt(Health.WorkersProbe.UtilisationAt(thresholds.ConnectReturning), pool.MaxWorkers) : double.PositiveInfinity;
        return (limit, false, latencyMs, serviceMs);
    }

    /// <summary>
    /// The load to hold under the budget: where the workers bind, the higher of the rates' sum and what
    /// was offered to them over the last second, less what the clients deferred within that second
    /// brought in it (they have gone); and, while it rises, half a second's rise.
    /// </summary>
    private double LoadNow(double carried, bool byWorkers, bool rise = true)
    {
        if (!byWorkers)
            return carried;
        long now = _time.GetTimestamp();
        // A client deferred s seconds ago sent for 1 − s of the last second, at what it was likely to send
        // then: its last second's count, judged among those that sent through that second (the active, and
        // the deferred within it). Its ten-second rate, by which it was chosen, ran high (it was chosen for
        // that) and lags a ramp.
        var recent = _registry.All.Where(c => c.State == ClientState.Active
            || (c.State == ClientState.Deferred && _time.GetElapsedTime(c.StateSince, now).TotalSeconds < 1)).ToList();
        var likely = DeferralPlanner.LastSecond(recent);
        double gone = recent.Where(c => c.State == ClientState.Deferred)
            .Sum(c => likely(c) * Math.Max(0, 1 - _time.GetElapsedTime(c.StateSince, now).TotalSeconds));
        return Math.Max(carried, _offeredRate - gone) + (rise ? Math.Max(0, _offeredRise) / 2 : 0);
    }

    /// <summary>
    /// Whether <paramref name="load"/> is really above <paramref name="limit"/>: by more than a few per cent
    /// (the rates' noise) and, where the load is a second's count of arrivals, by more than twice its
    /// Poisson noise (√load). A server swung between 50 and 90 % of its capacity shed clients at the top of
    /// every swing on one second's noise (499 FAILOVERs in five minutes) with the per-cent margin alone.
    /// And the workers must be that busy now (the last quarter second): the end of a burst still fills the
    /// last second's count, and 396 clients were once sent away as the load that filled it stopped.
    /// </summary>
    private bool Exceeds(double load, double limit, bool counted) =>
        load - limit > Math.Max(limit * 0.03, counted ? 2 * Math.Sqrt(Math.Max(0, load)) : 0)
        && (!counted || _quarterUtilisation >= _options.BudgetUtilisation);

    /// <summary>
    /// Were the workers what broke? Busy past <see cref="AdvisoryOptions.BudgetUtilisation"/> over the last
    /// second or in any quarter of it (the queue and the latency then suffer because of them: their probes
    /// may read lower), or their headroom the scarcest of the service's probes and below the returning
    /// clients' threshold: the measured score or the forecast (it falls because they fill up) alike. The
    /// quarters count because the score's breach is half a second of 100 ms samples: at 85 % of its
    /// capacity a server's workers read 95–100 % busy in some of them, the zone broke on those, and by the
    /// time the break was judged the probe's latest sample read lower; judged "not the workers", the
    /// break cut the budget to 95 % of the load and sent 44 clients away in the steady hour.
    /// </summary>
    private bool WorkersBroke(string className)
    {
        if (_workers is null || _healthOptions is not { } health || !Weighed(health, "workers"))
            return false;
        double carry = WorkersCarry();
        if (!(carry > 0 && double.IsFinite(carry)))
            return false;
        if (_lastUtilisation >= _options.BudgetUtilisation || _busiestQuarter >= _options.BudgetUtilisation || _offeredRate >= carry)
            return true;
        var probes = _monitor.Current.Probes;
        var workers = probes.FirstOrDefault(p => p.Name == "workers");
        if (workers.Name is null)
            return false;
        double headroom = ProbeSample.Clamp(workers.Headroom);
        double scarcest = probes.Where(p => p.Kind == ProbeKind.Server && Weighed(health, p.Name))
            .Select(p => ProbeSample.Clamp(p.Headroom)).DefaultIfEmpty(1).Min();
        return headroom <= scarcest + 0.02 && headroom < _monitor.ZoneOf(className).Thresholds.ConnectReturning;
    }

    /// <summary>Requests/s the workers carry busy <see cref="AdvisoryOptions.BudgetUtilisation"/> of the time, at the time a request holds one now (infinity without evidence).</summary>
    private double WorkersCarry() =>
        _workers is { } pool ? _workerCapacity.RateAt(_options.BudgetUtilisation, pool.MaxWorkers) : double.PositiveInfinity;

    /// <summary>What the return is judged by, from the host's services (absent where the service runs without a RADIUS server's pipeline).</summary>
    private void ResolveEvidence()
    {
        _workers = _services.GetService(typeof(WorkerPool)) as WorkerPool;
        _healthOptions = _services.GetService(typeof(HealthOptions)) as HealthOptions;
        _latency = _services.GetService(typeof(Health.LatencyWindow)) as Health.LatencyWindow;
        _counters = _services.GetService(typeof(ServerCounters)) as ServerCounters;
    }

    private static bool Weighed(HealthOptions health, string probe) => !health.Weights.TryGetValue(probe, out var weight) || weight > 0;

    /// <summary>
    /// Four times a second: what the workers were offered over the last second (what arrived is what
    /// completed, what the queue grew by and what it dropped), and how much that grew since the second
    /// before; and, while a deferral the workers caused lasts under "enough", the excess shed at once: a
    /// ramp of a tenth of the capacity a second, shed once a second, passed the capacity before each
    /// shed, and its queue held requests past their clients' deadlines.
    /// </summary>
    private async Task QuarterTickAsync()
    {
        if (_workers is not { } pool)
            return;
        long now = _time.GetTimestamp();
        if ((_quarterMeter ??= new BusyMeter(pool)).Read() is { } read)
        {
            _quarterUtilisation = read.Utilisation;
            _quarterUtilisations.Enqueue(read.Utilisation);
            while (_quarterUtilisations.Count > 4)
                _quarterUtilisations.Dequeue();
            _busiestQuarter = _quarterUtilisations.Max();
        }
        long drops = _counters is { } counters ? counters.Dropped(DropReason.QueueFull) + counters.Dropped(DropReason.QueueTimeout) : 0;
        var sample = (now, pool.Completed, (long)pool.QueueDepth, drops);
        _offeredSamples.Enqueue(sample);
        while (_offeredSamples.Count > 9)
            _offeredSamples.Dequeue();
        var samples = _offeredSamples.ToArray();
        double Offered(int from, int to)
        {
            double seconds = (samples[to].At - samples[from].At) / (double)_time.TimestampFrequency;
            return seconds <= 0 ? 0 : Math.Max(0, samples[to].Completed - samples[from].Completed + samples[to].Depth - samples[from].Depth + samples[to].Drops - samples[from].Drops) / seconds;
        }
        int last = samples.Length - 1, secondAgo = Math.Max(0, last - 4);
        _offeredRate = last > 0 ? Offered(secondAgo, last) : 0;
        _offeredRise = secondAgo >= 4 ? (_offeredRate - Offered(secondAgo - 4, secondAgo)) : 0;
        await ShedBeforeBreakAsync().ConfigureAwait(false);
        if (!_workersBound || _options.Select.Strategy != "enough" || !_budget.Known)
            return;
        double carried = CarriedRate(now);
        foreach (var className in _loadDeferred.Keys)
        {
            if (_monitor.ZoneOf(className).Current != Zone.Accept)
                carried = await ShedExcessAsync(className, carried).ConfigureAwait(false);
        }
    }

    /// <summary>Defers just enough of <paramref name="className"/>'s clients that the load falls under the budget (what is within its noise is no excess: <see cref="Exceeds"/>); returns the carried load left.</summary>
    private async Task<double> ShedExcessAsync(string className, double carried)
    {
        // Triggered by what was observed, sized with the rise to come.
        if (!Exceeds(LoadNow(carried, _workersBound, rise: false), _budget.Limit, counted: _workersBound))
            return carried;
        double load = LoadNow(carried, _workersBound);
        double excess = _budget.Excess(load);
        var active = _registry.All.Where(c => c.State == ClientState.Active && InClass(c, className)).ToList();
        double classRate = active.Sum(c => c.Rate);
        if (classRate <= 0)
            return carried;
        var likely = DeferralPlanner.Likely(active);
        var chosen = DeferralPlanner.Enough(active, excess / (carried > 0 ? classRate * load / carried : classRate), likely);
        LogShedding(_logger, chosen.Count, className, load, _budget.Limit);
        foreach (var client in chosen)
        {
            carried -= likely(client);
            await DeferClientAsync(client, AdvisoryReason.Overload).ConfigureAwait(false);
        }
        return carried;
    }

    /// <summary>Each second: the worker time spent and the requests completed since the last sample.</summary>
    private void SampleWorkers()
    {
        if (_workers is not { } pool)
            return;
        long completed = pool.Completed;
        var read = (_secondMeter ??= new BusyMeter(pool)).Read();
        if (read is { } interval && _lastCompleted >= 0)
        {
            _lastUtilisation = interval.Utilisation;
            _workerCapacity.Record(interval.BusySeconds, completed - _lastCompleted);
        }
        _lastCompleted = completed;
    }

    [LoggerMessage(EventId = 607, Level = LogLevel.Warning, Message = "Deferring {Count} more clients of class {Class}: carrying {Carried:0} requests/s over a load budget of {Limit:0}")]
    private static partial void LogShedding(ILogger logger, int count, string @class, double carried, double limit);

    [LoggerMessage(EventId = 606, Level = LogLevel.Information, Message = "Returns held at {Carried:0} requests/s: the last seconds' requests (latency {LatencyMs:0.#} ms, {ServiceMs:0.#} ms holding a worker) allow {Limit:0} at the returning threshold")]
    private static partial void LogReturnsHeld(ILogger logger, double carried, double limit, double latencyMs, double serviceMs);

    [LoggerMessage(EventId = 608, Level = LogLevel.Information, Message = "The score broke at {Carried:0} requests/s: load budget {Limit:0} requests/s")]
    private static partial void LogBudget(ILogger logger, double carried, double limit);
}
