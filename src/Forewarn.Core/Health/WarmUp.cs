namespace Forewarn.Core.Health;

/// <summary>
/// When the server's start-up is over: <see cref="HealthOptions.WarmupSeconds"/> have passed and the
/// request path has answered <see cref="HealthOptions.WarmupRequests"/> requests within the latency
/// window (or <see cref="HealthOptions.WarmupMaxSeconds"/> have passed, for a server that stays quiet).
/// A time alone was not enough: a server given a fleet just after its warm-up ended scored 0 while
/// the JIT compiled the request path (measured: Accept → Defer on a fresh server under EAP load), and
/// deferred the clients it had just taken back. Once over, it stays over until <see cref="Restart"/>
/// (after a stall, as after a start).
/// </summary>
public sealed class WarmUp(HealthOptions options, TimeProvider time, Func<long>? recentRequests = null)
{
    private long _started = time.GetTimestamp();
    private volatile bool _over = options.WarmupSeconds <= 0;
    private volatile int _generation;

    /// <summary>How many times the warm-up has started again: a reader that keeps state from the last one sees it change.</summary>
    public int Generation => _generation;

    /// <summary>Starts the warm-up again from now.</summary>
    public void Restart()
    {
        if (options.WarmupSeconds <= 0)
            return;
        Interlocked.Exchange(ref _started, time.GetTimestamp());
        _over = false;
        _generation++;
    }

    public bool IsOver
    {
        get
        {
            if (_over)
                return true;
            double elapsed = time.GetElapsedTime(Interlocked.Read(ref _started)).TotalSeconds;
            if (elapsed < options.WarmupSeconds)
                return false;
            if (recentRequests is null || options.WarmupRequests <= 0 || elapsed >= options.WarmupMaxSeconds || recentRequests() >= options.WarmupRequests)
                _over = true;
            return _over;
        }
    }
}
