namespace Forewarn.Server;

/// <summary>
/// The workers' utilisation between two readings of <see cref="WorkerPool.BusyTicks"/>: the share of
/// every worker's time spent processing since the last reading. One per reader and cadence (the workers
/// probe at the monitor's rate, the load budget each second and each quarter second), read on the pool's clock.
/// </summary>
public sealed class BusyMeter(WorkerPool pool)
{
    private long _lastBusy = -1, _lastAt;

    /// <summary>
    /// Since the last reading: the utilisation (0..1), and the worker-seconds spent and the seconds elapsed;
    /// null at the first reading, or when no time has passed or there are no workers.
    /// </summary>
    public (double Utilisation, double BusySeconds, double Seconds)? Read()
    {
        long busy = pool.BusyTicks, now = pool.Timestamp;
        long lastBusy = _lastBusy, lastAt = _lastAt;
        (_lastBusy, _lastAt) = (busy, now);
        int workers = pool.MaxWorkers;
        if (lastBusy < 0 || now <= lastAt || workers <= 0)
            return null;
        // BusyTicks is read without a snapshot of the pool (a worker between acquiring and starting its
        // clock reads high by a whole timestamp): no interval holds more than every worker all along.
        double seconds = (now - lastAt) / (double)pool.TickFrequency;
        double busySeconds = Math.Clamp((busy - lastBusy) / (double)pool.TickFrequency, 0, workers * seconds);
        return (busySeconds / (workers * seconds), busySeconds, seconds);
    }
}
