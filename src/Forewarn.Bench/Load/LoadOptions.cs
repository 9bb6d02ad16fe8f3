using System.Net;

namespace Forewarn.Bench.Load;

/// <summary>What a load run sends.</summary>
public enum LoadKind
{
    /// <summary>Access-Request with User-Password.</summary>
    Pap,
    /// <summary>Access-Request with CHAP-Password (the Request Authenticator is the challenge).</summary>
    Chap,
    /// <summary>Access-Request with MS-CHAP-Challenge and MS-CHAP2-Response.</summary>
    MsChapV2,
    /// <summary>Accounting-Request: each slot runs sessions of Start, Interim-Update, Stop.</summary>
    Accounting,
    /// <summary>Status-Server (RFC 5997).</summary>
    Status,
}

/// <summary>
/// A load run. <see cref="Rate"/> of 0 is a closed loop (<see cref="Outstanding"/> requests always in
/// flight, the next sent as soon as one is answered); a positive rate is an open loop (requests sent on a
/// fixed schedule whatever the answers, latency measured from the scheduled time, so that a server that
/// stalls is charged for the whole stall).
/// </summary>
public sealed record LoadOptions
{
    public required IPEndPoint Server { get; init; }
    public required byte[] Secret { get; init; }
    public LoadKind Kind { get; init; } = LoadKind.Pap;
    /// <summary>User names: the format gets 1..<see cref="Users"/>; without "{0}" it is the one user's name.</summary>
    public string UserFormat { get; init; } = "user{0}";
    public int Users { get; init; } = 1;
    public string Password { get; init; } = "password";
    public int Outstanding { get; init; } = 64;
    /// <summary>Requests per second for an open loop; 0 for a closed loop.</summary>
    public double Rate { get; init; }
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Load before measuring (JIT, caches, the server's pools): not counted.</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Source sockets; each has its own 256 identifiers and its own receiving thread.</summary>
    public int Sockets { get; init; } = 4;
    /// <summary>Addresses the sockets bind to, in turn (every one a client the server knows).</summary>
    public IReadOnlyList<IPAddress> SourceAddresses { get; init; } = [IPAddress.Loopback];
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Adds Message-Authenticator to Access-Requests (Status-Server always has it).</summary>
    public bool MessageAuthenticator { get; init; } = true;

    /// <summary>The server's process id when it runs on this machine: its CPU time per request and memory are reported.</summary>
    public int? ServerProcessId { get; init; }

    public bool OpenLoop => Rate > 0;

    public string UserName(int index) => UserFormat.Contains("{0}", StringComparison.Ordinal)
        ? string.Format(System.Globalization.CultureInfo.InvariantCulture, UserFormat, index + 1)
        : UserFormat;

    /// <summary>Open loop: the rate grows by this many requests per second every second (0: steady), up to <see cref="RampTo"/>.</summary>
    public double RampPerSecond { get; init; }

    /// <summary>The highest rate a ramp reaches.</summary>
    public double RampTo { get; init; } = double.MaxValue;

    /// <summary>
    /// When the n-th request is due, in seconds from the start: n / rate for a steady rate; for a ramp
    /// r(t) = Rate + RampPerSecond × t, the t at which ∫r = n, and beyond <see cref="RampTo"/> steady again.
    /// </summary>
    public double SecondsUntil(long n)
    {
        if (RampPerSecond <= 0)
            return n / Rate;
        double a = RampPerSecond, r0 = Rate, top = Math.Max(RampTo, r0);
        double t1 = (top - r0) / a, n1 = r0 * t1 + a * t1 * t1 / 2;
        return n <= n1 ? (-r0 + Math.Sqrt(r0 * r0 + 2 * a * n)) / a : t1 + (n - n1) / top;
    }

    /// <summary>Throws with a clear message for settings that cannot run.</summary>
    public void Validate()
    {
        if (Secret.Length == 0)
            throw new ArgumentException("The secret must not be empty.");
        if (Users < 1)
            throw new ArgumentException("At least one user is needed.");
        if (Sockets < 1 || Sockets > 1024)
            throw new ArgumentException("Sockets must be between 1 and 1024.");
        if (!OpenLoop && (Outstanding < 1 || Outstanding > Sockets * 256))
            throw new ArgumentException($"Outstanding must be between 1 and {Sockets * 256} (256 identifiers per socket; add sockets).");
        if (Duration <= TimeSpan.Zero || Timeout <= TimeSpan.Zero)
            throw new ArgumentException("Duration and timeout must be positive.");
        if (SourceAddresses.Count == 0)
            throw new ArgumentException("At least one source address is needed.");
    }
}
