namespace Forewarn.Bench.Failover;

/// <summary>
/// One poll of the run: every server's score, forecast, zone, and the devices attached to it (whose last
/// answer came from it); over the last second, the fleet's answers (and their p99 latency, ms), the
/// requests it sent and those each server received (its copies and keepalives included).
/// </summary>
public sealed record TimelinePoint(double At, IReadOnlyList<double?> Score, IReadOnlyList<double?> Predicted, IReadOnlyList<string> Zone, IReadOnlyList<int> Attached,
    double AnswersPerSecond, long Failed, long Late, IReadOnlyList<bool>? WarmingUp = null,
    double SentPerSecond = 0, IReadOnlyList<double?>? ReceivedPerSecond = null, double? P99Ms = null);

/// <summary>
/// What a failover run measured. Times are seconds on the run's clock; "after degradation" times are
/// from the moment the first server was degraded (or killed), "after heal" times from the moment it was healed.
/// </summary>
public sealed record FailoverResult
{
    public required string Mode { get; init; }
    public required string Degradation { get; init; }
    public required int Devices { get; init; }
    public required double RatePerDevice { get; init; }
    public required string Profile { get; init; }
    public required string Carrier { get; init; }
    public required double RampSeconds { get; init; }
    public required double TimeoutSeconds { get; init; }
    public double DegradedAt { get; init; }
    public double HealedAt { get; init; }
    public double EndedAt { get; init; }

    /// <summary>When the degraded server's zone first went to Defer, after degradation; null if it never did.</summary>
    public double? DeferredAfter { get; init; }
    public string? DeferCause { get; init; }
    /// <summary>For a forecast move: how long before the measured score crossed.</summary>
    public double? ForecastLeadSeconds { get; init; }
    /// <summary>When the first request sent after degradation exceeded T (or failed), after degradation.</summary>
    public double? FirstLateAfter { get; init; }

    public int Moved { get; init; }
    public double? Moved50After { get; init; }
    public double? Moved99After { get; init; }
    public double? Moved100After { get; init; }
    /// <summary>From each device's first request after the degradation to its move: 50th and 99th percentile over devices.</summary>
    public double? MovedAfterOwnRequest50 { get; init; }
    public double? MovedAfterOwnRequest99 { get; init; }

    public long Requests { get; init; }
    public long RequestsInEvent { get; init; }
    public long Failed { get; init; }
    public long Late { get; init; }
    public double FailedOrLatePercent { get; init; }
    /// <summary>Answered, but more than a second after they were sent.</summary>
    public long LaterThanOneSecond { get; init; }
    public double FailedOrLaterThanOneSecondPercent { get; init; }
    /// <summary>The fleet's Access-Requests hedged to an alternate, its suspicions of a server, its keepalives.</summary>
    public long Hedges { get; init; }
    public long Suspicions { get; init; }
    public long Keepalives { get; init; }
    /// <summary>PeerDowns the devices acted on: a surviving server told them their server had fallen silent.</summary>
    public long PeerDowns { get; init; }
    /// <summary>Copies the devices sent again to the same server at its deadline.</summary>
    public long EarlyRetransmissions { get; init; }
    /// <summary>What the degraded server sent on its own while degraded (FAILOVER, its retransmissions, reminders), per device.</summary>
    public double SignallingPerDevice { get; init; }
    /// <summary>REFUSE answers to devices' PROBEs while degraded, per device (each a PROBE/REFUSE pair the device started).</summary>
    public double RefusalsWhileDegradedPerDevice { get; init; }
    /// <summary>Every advisory message of the run, both ways (FAILOVER, INVITE, REFUSE, reminders, retransmissions; devices' ACKs and PROBEs), per device.</summary>
    public double AllAdvisoriesPerDevice { get; init; }
    public string? AdvisoryBreakdown { get; init; }
    /// <summary>From the zone change to 99 % of devices moved.</summary>
    public double? Moved99AfterDefer { get; init; }
    /// <summary>Attempts that got no answer (retransmissions, tries of a dead server) per device.</summary>
    public double UnansweredAttemptsPerDevice { get; init; }

    public int Returned { get; init; }
    public double? AllBackAfter { get; init; }
    public double? WorstScoreDuringReturn { get; init; }
    /// <summary>The lowest score the healed server showed while warming up (after a restart or a stall), which its zones do not act on.</summary>
    public double? WorstScoreInWarmUp { get; init; }
    public double ConnectThreshold { get; init; }
    /// <summary>Peak one-second answer rate of the healed server during the return, against its rate before degradation.</summary>
    public double? PeakRateRatio { get; init; }
    public IReadOnlyList<double> ServerCpuSeconds { get; init; } = [];
    /// <summary>p99 latency (ms) of the answered requests sent before the degradation, and of those sent during it.</summary>
    public double? BaselineP99Ms { get; init; }
    public double? EventP99Ms { get; init; }
    /// <summary>p99 of the answers server A itself gave to requests sent during the event (ms).</summary>
    public double? AdmittedP99Ms { get; init; }
    /// <summary>The lowest score any alternate showed while the first server was degraded (a collapse on the alternates shows here).</summary>
    public double? WorstAlternateScore { get; init; }
    /// <summary>Keepalive messages (Status-Server and answer) per device per minute of the run: the price of liveness for idle devices.</summary>
    public double KeepaliveMessagesPerDeviceMinute { get; init; }
    /// <summary>Overload: the first server's measured capacity (answers a second) and the peak load the fleet offered.</summary>
    public double? CapacityPerSecond { get; init; }
    public double? PeakOfferedPerSecond { get; init; }
    /// <summary>Overload: the first server's best one-second goodput (answers within T) before it was healed, and the share of it kept, on average, while the offered load stayed at its peak.</summary>
    public double? PeakGoodput { get; init; }
    public double? GoodputKeptAtPeak { get; init; }
    /// <summary>Overload: of the fleet's requests sent while the offered load stayed at its peak, the share answered within T (by any server).</summary>
    public double? FleetAnsweredWithinTAtPeak { get; init; }
    /// <summary>How many times a device left A from the degradation on (mean over devices, and the most any device did): a failover/return cycle each.</summary>
    public double MovesPerDeviceMean { get; init; }
    public int MovesPerDeviceMax { get; init; }
    /// <summary>A's zone changes while degraded, and the FAILOVERs it sent then (not counting retransmissions and reminders).</summary>
    public int ZoneChangesInEvent { get; init; }
    public long FailoversWhileDegraded { get; init; }
    public IReadOnlyList<TimelinePoint> Timeline { get; init; } = [];
}

/// <summary>What the live view shows while a run goes on.</summary>
public sealed record FailoverLive(string Phase, double Elapsed, double Total, TimelinePoint? Latest, IReadOnlyList<string> ServerNames, int Devices);
