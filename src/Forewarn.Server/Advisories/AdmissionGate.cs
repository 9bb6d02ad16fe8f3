namespace Forewarn.Server.Advisories;

/// <summary>
/// Paces the clients a server admits by PROBE, so that a fleet that left it all at once (a crash, a
/// hang, a restart) comes back in staggered batches: <see cref="AdvisoryOptions.InviteBatchSize"/>
/// admissions per <see cref="AdvisoryOptions.InviteSpacingMs"/>, the same pace as the invitations it
/// sends on its own after a deferral. A probe beyond the pace is refused with a Retry-After that puts
/// it behind those already refused (each refusal takes the next free slot), so the refused spread out
/// over the time the pace needs to admit them all, never longer than
/// <see cref="AdvisoryOptions.RefuseRetryAfterSeconds"/>.
/// </summary>
public sealed class AdmissionGate
{
    private readonly TimeProvider _time;
    private readonly double _perSecond;
    private readonly double _burst;
    private readonly int _maxRetryAfter;
    private readonly Lock _lock = new();
    private double _tokens;
    private long _refilledAt;
    private double _queueEnd;

    public AdmissionGate(TimeProvider time, int batch, int spacingMs, int maxRetryAfterSeconds)
    {
        _time = time;
        _burst = Math.Max(1, batch);
        _perSecond = spacingMs <= 0 ? double.PositiveInfinity : _burst * 1000.0 / spacingMs;
        _maxRetryAfter = Math.Max(1, maxRetryAfterSeconds);
        _tokens = _burst;
        _refilledAt = time.GetTimestamp();
    }

    /// <summary>True to admit now; else the seconds (at least one) after which to ask again.</summary>
    public bool TryAdmit(out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            double elapsed = _time.GetElapsedTime(_refilledAt, now).TotalSeconds;
            _refilledAt = now;
            _tokens = double.IsPositiveInfinity(_perSecond) ? _burst : Math.Min(_burst, _tokens + elapsed * _perSecond);
            _queueEnd = Math.Max(0, _queueEnd - elapsed);
            if (_tokens >= 1)
            {
                _tokens--;
                return true;
            }
            _queueEnd = Math.Min(_queueEnd + 1 / _perSecond, _maxRetryAfter);
            retryAfterSeconds = Math.Clamp((int)Math.Ceiling(_queueEnd), 1, _maxRetryAfter);
            return false;
        }
    }
}
