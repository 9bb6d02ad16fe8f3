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
/// Each second's figure is taken apart and the median kept. A stall of half a second (a collection, a
/// machine's hiccup) holds every worker: on 32 workers at 530 requests/s, averaged over three seconds, it
/// reads as a store a fifth slower, and the load budget where the workers bind would fall by as much for
/// seconds. A real slowing lasts, and the median follows it within a few seconds.
/// </summary>
public sealed class WorkerCapacity(int windowSeconds = 5)
{
    private readonly Lock _lock = new();
    private readonly Queue<(double Busy, long Completed)> _intervals = new();

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
            while (_intervals.Count > Math.Max(1, windowSeconds))
                _intervals.Dequeue();
        }
    }

    /// <summary>
    /// The time a request holds a worker, seconds: the median of the window's seconds that give evidence
    /// (the lower of the middle two for an even count). A second gives the mean of its requests, or infinity
    /// when workers were held a worker-second or more and nothing completed (a stall); one with neither
    /// gives nothing, and with none the figure is NaN (no evidence).
    /// </summary>
    public double ServiceSeconds
    {
        get
        {
            lock (_lock)
            {
                var seconds = new List<double>(_intervals.Count);
                foreach (var (busy, completed) in _intervals)
                {
                    if (completed > 0)
                        seconds.Add(busy / completed);
                    else if (busy >= 1)
                        seconds.Add(double.PositiveInfinity);
                }
                if (seconds.Count == 0)
                    return double.NaN;
                seconds.Sort();
                return seconds[(seconds.Count - 1) / 2];
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
