namespace Forewarn.Core.Deferrals;

/// <summary>
/// The request rate a pool of workers carries, read from how long its recent requests held a worker
/// (Little's law: busy workers = rate × time each request holds one). A slow store makes every request
/// hold its worker longer, and this shows at any load: one request taking 50 ms says that 16 workers
/// carry at most 320 a second, before anyone has sent 320. The load budget (<see cref="LoadBudget"/>)
/// learns capacity only from a break, so a degradation that shows only under load (a store slowed
/// since the clients left) looked healed to it, and the return sent a third of the fleet straight back
/// into the same break; returns held under this rate do not. Only the last few seconds count: once
/// nobody sends, the estimate lapses, and a store that healed meanwhile is not held against the server.
/// </summary>
public sealed class WorkerCapacity(int windowSeconds = 3)
{
    private readonly Lock _lock = new();
    private readonly Queue<(double Busy, long Completed)> _intervals = new();
    private double _busy;
    private long _completed;

    /// <summary>
    /// Records one interval (about a second): <paramref name="busyWorkerSeconds"/> of worker time spent,
    /// in-flight requests included, and the requests completed.
    /// </summary>
    public void Record(double busyWorkerSeconds, long completed)
    {
        if (double.IsNaN(busyWorkerSeconds) || busyWorkerSeconds < 0 || completed < 0)
            return;
        lock (_lock)
        {
            _intervals.Enqueue((busyWorkerSeconds, completed));
            _busy += busyWorkerSeconds;
            _completed += completed;
            while (_intervals.Count > Math.Max(1, windowSeconds))
            {
                var old = _intervals.Dequeue();
                _busy -= old.Busy;
                _completed -= old.Completed;
            }
        }
    }

    /// <summary>
    /// The mean time a request holds a worker, seconds, over the window: NaN while there is no evidence
    /// (nothing completed and less than a worker-second spent), infinity while workers are held and
    /// nothing completes (a stall).
    /// </summary>
    public double ServiceSeconds
    {
        get
        {
            lock (_lock)
            {
                if (_completed > 0)
                    return Math.Max(0, _busy) / _completed;
                return _busy >= 1 ? double.PositiveInfinity : double.NaN;
            }
        }
    }

    /// <summary>
    /// Requests per second <paramref name="workers"/> carry while busy <paramref name="utilisation"/> of
    /// the time: infinity while there is no evidence (no limit), 0 during a stall.
    /// </summary>
    public double RateAt(double utilisation, int workers)
    {
        double service = ServiceSeconds;
        if (double.IsNaN(service) || workers <= 0)
            return double.PositiveInfinity;
        if (service <= 0)
            return double.PositiveInfinity;
        return Math.Clamp(utilisation, 0, 1) * workers / service;
    }
}
