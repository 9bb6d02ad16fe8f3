using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Forewarn.Core.Health;

/// <summary>
/// A service check (an <see cref="IHealthCheck"/>: the listener answering Status-Server, the store
/// answering a query, a sink accepting a write) run on its own, slower cadence; the monitor samples
/// its latest result every tick. Its headroom falls as the check slows towards its time limit.
/// </summary>
public sealed class ServiceProbe(string name, ProbeKind kind, IHealthCheck check) : IProbe
{
    private volatile StrongBox? _last;

    private sealed record StrongBox(bool Healthy, double Milliseconds, double TimeoutMilliseconds, string? Detail);

    public string Name { get; } = name;
    public ProbeKind Kind { get; } = kind;
    public IHealthCheck Check { get; } = check;

    /// <summary>Runs the check once with a time limit and remembers the outcome.</summary>
    public async Task RunAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        long start = time.GetTimestamp();
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
        double ms = time.GetElapsedTime(start).TotalMilliseconds;
        _last = new StrongBox(result.Status == HealthStatus.Healthy, ms, timeout.TotalMilliseconds, result.Description);
    }

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
