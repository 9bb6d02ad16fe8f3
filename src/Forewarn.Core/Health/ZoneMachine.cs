namespace Forewarn.Core.Health;

/// <summary>
/// Where the score stands against the two thresholds (patent ¶[0060]–[0062]):
/// connection above failover gives Accept / Hold / Defer; equal gives Accept / Defer; connection below
/// failover gives Accept / AdmitThenDefer / Defer.
/// </summary>
public enum Zone
{
    /// <summary>Clients are served and may connect.</summary>
    Accept,
    /// <summary>Between the thresholds (connection above failover): no client is deferred and none may connect.</summary>
    Hold,
    /// <summary>Between the thresholds (connection below failover): new clients are admitted, then deferred after a grace time.</summary>
    AdmitThenDefer,
    /// <summary>Clients are told to fail over.</summary>
    Defer,
}

/// <summary>Why the zone changed.</summary>
public enum ZoneCause { Score, Forecast, MandatoryService, DependentService, Drain, Resume }

public sealed record ZoneChange(
    string Class,
    DateTimeOffset At,
    Zone From,
    Zone To,
    double Score,
    double Predicted,
    ZoneCause Cause)
{
    /// <summary>For a change the forecast made: how long before the actual score crossed (set once it has).</summary>
    public TimeSpan? LeadTime { get; set; }
}

/// <summary>
/// The zone of one client class, with hysteresis (the score must clear a boundary by a margin before
/// the zone improves) and a minimum dwell time (no recovery and no forecast-made move until it has
/// passed; a breach of the actual score and a forced move to Defer do not wait). The forecast may only
/// make things worse: a predicted fall below a boundary moves the zone early; recovery waits for the
/// actual score. And it moves the zone at most one zone ahead of the actual score: from Accept to the
/// layout's middle zone (Hold: the door shut; AdmitThenDefer: deferrals after the grace time), and to
/// Defer only once the actual score has left Accept too (with equal thresholds there is no middle zone,
/// and one zone ahead is Defer). A guess that shuts the door costs a few seconds of new connections; a
/// guess that defers costs every deferred client a failover and a return. Measured: at 73 % of its
/// capacity, a server's score swinging 0.5–0.9 on its workers' noise was once extrapolated to 0.24 from
/// 0.70, straight to Defer, and 41 clients were sent away from a healthy server.
/// </summary>
public sealed class ZoneMachine(string className, Thresholds thresholds, HealthOptions options, TimeProvider time)
{
    private long _enteredAt = long.MinValue;
    private ZoneChange? _pendingLead;
    private int _improvingRun;

    public string Class { get; } = className;
    public Thresholds Thresholds { get; } = thresholds;
    public Zone Current { get; private set; } = Zone.Accept;

    /// <summary>May a client that was never deferred connect now?</summary>
    public bool AdmitsNew { get; private set; } = true;

    /// <summary>May a previously deferred client return now?</summary>
    public bool AdmitsReturning { get; private set; } = true;

    /// <summary>The zone the score alone puts us in (no hysteresis, no dwell).</summary>
    public Zone Classify(double score)
    {
        double failover = Thresholds.Failover, connect = Thresholds.ConnectNew;
        if (score < failover)
            return connect < failover && score >= connect ? Zone.AdmitThenDefer : Zone.Defer;
        if (score < connect)
            return Zone.Hold;
        return Zone.Accept;
    }

    private static int Rank(Zone zone) => zone switch
    {
        Zone.Accept => 0,
        Zone.Hold or Zone.AdmitThenDefer => 1,
        _ => 2,
    };

    /// <summary>The lowest score at which the better zone <paramref name="zone"/> is entered.</summary>
    private double LowerBound(Zone zone) => zone switch
    {
        Zone.Accept => Math.Max(Thresholds.Failover, Thresholds.ConnectNew),
        Zone.Hold => Thresholds.Failover,
        Zone.AdmitThenDefer => Thresholds.ConnectNew,
        _ => 0,
    };

    /// <summary>
    /// Feeds one sample. <paramref name="forced"/> (a mandatory service down, a dependent-service
    /// failure, a drain) moves straight to Defer. Returns the change, if any.
    /// </summary>
    public ZoneChange? Update(double score, double predicted, ZoneCause? forced)
    {
        long now = time.GetTimestamp();
        UpdateLeadTime(score);
        if (forced is { } cause)
        {
            AdmitsNew = AdmitsReturning = false;
            return Current == Zone.Defer ? null : Move(Zone.Defer, score, predicted, cause, now);
        }

        double h = options.Hysteresis;
        AdmitsNew = score >= Thresholds.ConnectNew + (AdmitsNew ? 0 : h) && predicted >= Thresholds.ConnectNew;
        AdmitsReturning = score >= Thresholds.ConnectReturning + (AdmitsReturning ? 0 : h) && predicted >= Thresholds.ConnectReturning;

        var byScore = Classify(score);
        double guess = Math.Min(score, predicted);
        // One zone ahead at most: from Accept, no lower than the middle zone (where the layout has one).
        if (byScore == Zone.Accept && Thresholds.ConnectNew != Thresholds.Failover)
            guess = Math.Max(guess, Math.Min(Thresholds.Failover, Thresholds.ConnectNew));
        var byForecast = Classify(guess);
        var target = Rank(byForecast) > Rank(byScore) ? byForecast : byScore;
        var cause2 = Rank(byForecast) > Rank(byScore) ? ZoneCause.Forecast : ZoneCause.Score;
        bool clears = Rank(target) < Rank(Current) && score >= LowerBound(target) + h;
        _improvingRun = clears ? _improvingRun + 1 : 0;
        if (target == Current)
            return null;
        bool dwelt = _enteredAt == long.MinValue || time.GetElapsedTime(_enteredAt, now).TotalSeconds >= options.MinimumDwellSeconds;
        // The dwell holds back recoveries and the forecast's guesses, never a breach the sustained score
        // has already shown: a server that just came back to Accept and is swamped again defers at once
        // (measured: 3 s more of Accept at score 0 while the dwell ran out after a lull in the load).
        bool breached = Rank(byScore) > Rank(Current);
        if (!dwelt)
        {
            if (!breached)
                return null;
            // Only as far as the breach itself: the forecast's word still waits for the dwell.
            target = byScore;
            cause2 = ZoneCause.Score;
        }
        if (Rank(target) < Rank(Current))
        {
            // Improving: the actual score must clear the better zone's boundary by the hysteresis margin,
            // sample after sample: one quiet sample (a lull in the traffic) is not a recovery.
            if (!clears || _improvingRun < options.ImprovementSamples)
                return null;
            cause2 = ZoneCause.Score;
        }
        return Move(target, score, predicted, cause2, now);
    }

    private ZoneChange Move(Zone to, double score, double predicted, ZoneCause cause, long now)
    {
        var change = new ZoneChange(Class, time.GetUtcNow(), Current, to, score, predicted, cause);
        Current = to;
        _improvingRun = 0;
        _enteredAt = now;
        // Another move leaves a forecast's open lead alone: it closes when the score crosses, or when the zone is back where the forecast found it.
        if (cause == ZoneCause.Forecast)
            _pendingLead = change;
        return change;
    }

    /// <summary>Once the actual score reaches the zone the forecast moved to, the lead time is known.</summary>
    private void UpdateLeadTime(double score)
    {
        if (_pendingLead is not { } pending)
            return;
        if (Rank(Classify(score)) >= Rank(pending.To))
        {
            pending.LeadTime = time.GetUtcNow() - pending.At;
            _pendingLead = null;
        }
        else if (Rank(Current) <= Rank(pending.From))
        {
            // Back where the forecast found it before the actual score ever crossed: no lead to report.
            _pendingLead = null;
        }
    }

    /// <summary>A change made by the forecast whose lead time is still open (the actual score has not crossed yet).</summary>
    public ZoneChange? AwaitingCrossing => _pendingLead;
}
