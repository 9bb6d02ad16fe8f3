using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Forewarn.Core.Health;

/// <summary>
/// A service check (an <see cref="IHealthCheck"/>: the listener answering Status-Server, the store
/// answering a query, a sink accepting a write) run on its own, slower cadence; the monitor samples
/// its latest result every tick. Its headroom falls as the check slows towards its time limit.
/// A service counts as down only after <paramref name="failuresToTrip"/> failed checks in a row: one
/// lost datagram or one slow moment is not an outage, while a dead service is still found within
/// about that many check intervals.
/// </summary>
public sealed class ServiceProbe(string name, ProbeKind kind, IHealthCheck check, int failuresToTrip = 1) : IProbe
{
    private volatile StrongBox? _last;
    private int _failuresInARow;
    private double _lastGoodMilliseconds;

    private sealed record StrongBox(bool Healthy, double Milliseconds, double TimeoutMilliseconds, string? Detail);

    public string Name { get; } = name;
    public ProbeKind Kind { get; } = kind;
    public IHealthCheck Check { get; } = check;

    // A check still running from an earlier round (one that ignored its cancellation: a synchronous
    // driver call blocked on a lock, a hung NFS read), when it started, and whether a round has already
    // counted it as a failure.
    private Task<(HealthCheckResult Result, double Milliseconds)>? _running;
    private long _runningSince;
    private bool _runningCounted;

    /// <summary>
    /// Runs the check once with a time limit and remembers the outcome. The limit holds even for a check
    /// that ignores its cancellation token: it runs on a thread of its own and is waited for at most
    /// <paramref name="timeout"/>; one still running is not started again but waited for again, and
    /// each round it is still running counts as another failure. A check that a round has already
    /// counted as timed out is not counted again when it ends: the next round starts a fresh one.
    /// </summary>
    public async Task RunAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (_running is { IsCompleted: true } && _runningCounted)
            _running = null;
        if (_running is null)
        {
            _runningSince = time.GetTimestamp();
            _runningCounted = false;
            // On a thread of its own, not the pool's: most checks block (a synchronous SQLite write and its
            // fsync), and a blocked check must not take a thread the request path needs.
            _running = Task.Factory.StartNew(() => CheckOnceAsync(timeout, time, cancellationToken).GetAwaiter().GetResult(),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        HealthCheckResult result;
        double ms;
        try
        {
            (result, ms) = await _running.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
            _running = null;
        }
        catch (TimeoutException)
        {
            ms = time.GetElapsedTime(_runningSince).TotalMilliseconds;
            result = HealthCheckResult.Unhealthy($"no answer within {timeout.TotalSeconds:0.#} s (still waiting after {ms / 1000:0.#} s)");
            _runningCounted = true;
        }
        if (result.Status == HealthStatus.Healthy)
        {
            _failuresInARow = 0;
            _lastGoodMilliseconds = ms;
            _last = new StrongBox(true, ms, timeout.TotalMilliseconds, result.Description);
        }
        else if (++_failuresInARow >= failuresToTrip)
        {
            _last = new StrongBox(false, ms, timeout.TotalMilliseconds, result.Description);
        }
        else
        {
            // Suspected, not yet down: the last good reading stands, and the detail says why it is in doubt.
            _last = new StrongBox(true, _lastGoodMilliseconds, timeout.TotalMilliseconds,
                $"{_failuresInARow} failed check(s) in a row of {failuresToTrip} to count as down: {result.Description}");
        }
    }

    /// <summary>One run of the check, with its own duration (from when it started, not from when a round began waiting).</summary>
    private async Task<(HealthCheckResult, double)> CheckOnceAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        long started = time.GetTimestamp();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        HealthCheckResult result;
        try
        {
            result = await Check.CheckHealthAsync(new HealthCheckContext
            {
                Registration = new HealthCheckRegistration(Name, Check, HealthStatus.Unhealthy, null),
            }, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            result = HealthCheckResult.Unhealthy($"no answer within {timeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result = HealthCheckResult.Unhealthy(e.Message, e);
        }
        return (result, time.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>Failed checks since the last good one.</summary>
    public int FailuresInARow => _failuresInARow;

    public ProbeSample Sample()
    {
        var last = _last;
        if (last is null)
            return new ProbeSample(Name, Kind, 1, 0, "ms", true, "not checked yet");
        // A service that answers, but slowly, is losing headroom: full up to a quarter of the check's time
        // limit, none at the limit. This is what shows a slow store when no requests arrive to show it.
        double headroom = last.Healthy ? ProbeSample.FromLoad(last.Milliseconds, last.TimeoutMilliseconds, last.TimeoutMilliseconds * 0.25) : 0;
        return new ProbeSample(Name, Kind, headroom, last.Milliseconds, "ms", last.Healthy, last.Detail);
    }
}
