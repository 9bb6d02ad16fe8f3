namespace Forewarn.Client;

/// <summary>
/// A server's response deadline from its measured round trips, in the manner of TCP's retransmission
/// timer (RFC 6298 §2): SRTT and RTTVAR smoothed with gains 1/8 and 1/4, the deadline
/// SRTT + 4 × RTTVAR, floored and capped. Samples come only from requests answered on their first
/// transmission (Karn's rule: an answer to a retransmitted request could belong to either copy). Before
/// the first sample the deadline is the cap, so that nothing is hedged on no evidence.
/// </summary>
public sealed class RoundTripEstimator(TimeSpan floor, TimeSpan cap)
{
    private readonly Lock _lock = new();
    private double _srtt = double.NaN, _rttvar;
    private int _backoff = 1;

    /// <summary>Round trips measured so far.</summary>
    public long Samples { get; private set; }

    /// <summary>The smoothed round trip, if any was measured.</summary>
    public TimeSpan? Smoothed
    {
        get
        {
            lock (_lock)
                return double.IsNaN(_srtt) ? null : TimeSpan.FromSeconds(_srtt);
        }
    }

    public void Add(TimeSpan sample)
    {
        double r = Math.Max(0, sample.TotalSeconds);
        lock (_lock)
        {
            if (double.IsNaN(_srtt))
            {
                _srtt = r;
                _rttvar = r / 2;
            }
            else
            {
                _rttvar = 0.75 * _rttvar + 0.25 * Math.Abs(_srtt - r);
                _srtt = 0.875 * _srtt + 0.125 * r;
            }
            Samples++;
            _backoff = 1;
        }
    }

    /// <summary>
    /// A copy was sent again at the deadline: the next copies wait twice as long (RFC 6298 §5.5), up to four
    /// times, until a round trip is measured again (the hedging deadline itself does not back off). Without it a server that became slower than its deadline would have every
    /// request retransmitted early, and so (Karn's rule) never be measured again.
    /// </summary>
    public void Backoff()
    {
        lock (_lock)
            _backoff = Math.Min(4, _backoff * 2);
    }

    /// <summary>How long to wait for this server's answer before hedging the request elsewhere.</summary>
    public TimeSpan Deadline
    {
        get
        {
            lock (_lock)
            {
                if (double.IsNaN(_srtt))
                    return cap;
                var deadline = TimeSpan.FromSeconds(_srtt + 4 * _rttvar);
                return deadline < floor ? floor : deadline > cap ? cap : deadline;
            }
        }
    }

    /// <summary>When to send an unanswered request again to the same server: the deadline, backed off (<see cref="Backoff"/>) while no round trip is measured.</summary>
    public TimeSpan RetransmitDeadline
    {
        get
        {
            var deadline = Deadline;
            int backoff;
            lock (_lock)
                backoff = _backoff;
            var backedOff = deadline * backoff;
            return backedOff > cap ? cap : backedOff;
        }
    }
}

/// <summary>
/// Hedges allowed against requests sent, so that a slow server's clients cannot double its alternates'
/// load: each request earns <see cref="Share"/> of a hedge, up to <see cref="Burst"/> saved; a hedge
/// spends one. A fleet moving off a dead server needs only a few each (suspicion follows within
/// <see cref="ClientOptions.SuspectAfter"/> misses); a server merely slow for everyone gets at most
/// one extra request in ten.
/// </summary>
internal sealed class HedgeBudget(double share, double burst)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;

    public void Earn()
    {
        lock (_lock)
            _tokens = Math.Min(Burst, _tokens + Share);
    }

    public double Share { get; } = share;
    public double Burst { get; } = burst;

    public bool TrySpend()
    {
        lock (_lock)
        {
            if (_tokens < 1)
                return false;
            _tokens--;
            return true;
        }
    }
}
