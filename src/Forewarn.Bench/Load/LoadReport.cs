namespace Forewarn.Bench.Load;

/// <summary>
/// The result of a load run. Every count is of requests sent inside the measured window (after the
/// warm-up): answered ones (valid answers: identifier, Response Authenticator and, when present,
/// Message-Authenticator all verified), timeouts (no valid answer within the timeout), invalid answers,
/// late answers (for a request already timed out or an identifier since reused) and requests the
/// generator could not send (an open loop that ran out of identifiers).
/// </summary>
public sealed record LoadReport
{
    public required string Kind { get; init; }
    public required string Mode { get; init; }
    public required string Server { get; init; }
    public int Outstanding { get; init; }
    public double OfferedRate { get; init; }
    public int Sockets { get; init; }
    public double Seconds { get; init; }
    public long Sent { get; init; }
    public long Answered { get; init; }
    public long Accepted { get; init; }
    public long Rejected { get; init; }
    public long Timeouts { get; init; }
    public long Invalid { get; init; }
    public long Late { get; init; }
    public long Unsent { get; init; }
    public double Throughput { get; init; }
    public double LatencyMeanMs { get; init; }
    public double LatencyP50Ms { get; init; }
    public double LatencyP90Ms { get; init; }
    public double LatencyP99Ms { get; init; }
    public double LatencyP999Ms { get; init; }
    public double LatencyMaxMs { get; init; }
    /// <summary>CPU time this process (the generator) spent during the measured window, per answered request.</summary>
    public double GeneratorCpuMicrosecondsPerRequest { get; init; }
    /// <summary>CPU time the server process spent during the measured window, per answered request (when its pid was given).</summary>
    public double? ServerCpuMicrosecondsPerRequest { get; init; }
    /// <summary>The server's resident memory at the end of the window, in MiB (when its pid was given).</summary>
    public double? ServerResidentMiB { get; init; }

    public long Lost => Timeouts + Invalid;
}

/// <summary>A live view of a run, for progress bars.</summary>
public readonly record struct LoadProgress(double Elapsed, double Total, long Answered, long Timeouts, bool Measuring);
