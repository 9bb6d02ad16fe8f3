namespace Forewarn.Server.Advisories;

/// <summary>
/// How long a peer has been silent, as this server can judge it: counted from when the peer was last
/// heard, but never from before this server itself last ran without a gap. A server that was stopped
/// (SIGSTOP, a paused VM, starvation) heard nothing while it was, and must not take that for its peers'
/// silence (measured: resumed after a 30 s SIGSTOP, a server spoke for both of its healthy peers).
/// </summary>
public sealed class PeerSilence(TimeProvider time, int silentMs)
{
    private long _judgeFrom, _lastTick;

    /// <summary>Called on each of this server's housekeeping ticks; a gap of half the silence limit or more starts the judgement afresh.</summary>
    public void Tick()
    {
        long now = time.GetTimestamp();
        if (_lastTick == 0 || time.GetElapsedTime(_lastTick, now).TotalMilliseconds >= silentMs / 2.0)
            _judgeFrom = now;
        _lastTick = now;
    }

    /// <summary>The silence of a peer last heard at <paramref name="heardAt"/> (a timestamp of the same TimeProvider).</summary>
    public TimeSpan Of(long heardAt) => time.GetElapsedTime(Math.Max(heardAt, _judgeFrom));

    public bool IsSilent(long heardAt) => Of(heardAt).TotalMilliseconds >= silentMs;
}
