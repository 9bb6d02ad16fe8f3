namespace Forewarn.Core.Aaa;

/// <summary>How an authentication ended.</summary>
public enum AuthResult { Accept, Reject }

/// <summary>
/// One authentication as the console shows it. <see cref="LatencyMs"/> is the time the server took to
/// decide, from the handler's start (store lookup and password derivation included; the wait for a
/// worker is the <c>queue</c> probe's); null where a person typed between the rounds (TACACS+ ASCII login).
/// </summary>
public readonly record struct AuthEvent(
    long Sequence,
    DateTimeOffset At,
    string Protocol,
    string Client,
    string? DeviceGroup,
    string? User,
    string Method,
    AuthResult Result,
    string? Reason,
    double? LatencyMs);

/// <summary>
/// The last <see cref="Capacity"/> authentications in memory, for the console's live log and its
/// failure and rate summaries. Recording takes a short lock and copies references the handler already
/// holds (the user name it read, the client's name, a constant reason): no allocation on the accept
/// path. Readers page by <see cref="AuthEvent.Sequence"/>, so a browser polling every second asks only
/// for what is new. Nothing here is durable: the log file and the accounting store are the record.
/// </summary>
public sealed class AuthLog(TimeProvider time, int capacity = AuthLog.DefaultCapacity)
{
    public const int DefaultCapacity = 20_000;

    private readonly Lock _gate = new();
    private readonly AuthEvent[] _ring = new AuthEvent[Math.Max(16, capacity)];
    private long _next = 1;
    // Totals since start by protocol, result and reason, for /metrics. Reasons are the handlers' constant
    // sentences, cut at the first ':' (a check item's name, a type number): a bounded set of labels.
    private readonly Dictionary<(string Protocol, AuthResult Result, string Reason), long> _totals = [];

    public int Capacity => _ring.Length;

    /// <summary>The sequence number the next event will have.</summary>
    public long Next
    {
        get
        {
            lock (_gate)
                return _next;
        }
    }

    public void Record(string protocol, string client, string? deviceGroup, string? user, string method, AuthResult result, string? reason, long startedAt)
    {
        double? latency = startedAt == 0 ? null : time.GetElapsedTime(startedAt).TotalMilliseconds;
        var at = time.GetUtcNow();
        lock (_gate)
        {
            long sequence = _next++;
            _ring[sequence % _ring.Length] = new AuthEvent(sequence, at, protocol, client, deviceGroup, user, method, result, reason, latency);
            var key = (protocol, result, reason is null ? "" : ReasonClass(reason));
            _totals[key] = _totals.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>A reason without its particulars: "check item failed: NAS-Port-Type == 15" counts as "check item failed".</summary>
    public static string ReasonClass(string reason)
    {
        int colon = reason.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? reason : reason[..colon];
    }

    /// <summary>Authentications since start by protocol, result and reason class (empty for an accept).</summary>
    public IReadOnlyList<KeyValuePair<(string Protocol, AuthResult Result, string Reason), long>> Totals()
    {
        lock (_gate)
            return [.. _totals];
    }

    /// <summary>
    /// Hands the kept events to <paramref name="visit"/>, newest first, until it returns false, under the
    /// log's lock (nothing copied: keep the visit short). Returns the sequence number the next event will
    /// have, read under the same lock (a reader pages from it without missing one); <paramref name="stopped"/>
    /// is true when the visit stopped the walk, false when the log ran out first.
    /// </summary>
    public long Visit(Func<AuthEvent, bool> visit, out bool stopped)
    {
        lock (_gate)
        {
            stopped = false;
            for (long s = _next - 1; s >= Math.Max(1, _next - _ring.Length); s--)
            {
                if (!visit(_ring[s % _ring.Length]))
                {
                    stopped = true;
                    break;
                }
            }
            return _next;
        }
    }

    /// <summary>Events after <paramref name="after"/> (a sequence number; 0 for all kept), oldest first, at most <paramref name="limit"/> of the newest.</summary>
    public IReadOnlyList<AuthEvent> Since(long after, int limit)
    {
        lock (_gate)
        {
            long first = Math.Max(Math.Max(after + 1, _next - _ring.Length), _next - Math.Max(0, limit));
            first = Math.Max(first, 1);
            var events = new AuthEvent[Math.Max(0, _next - first)];
            for (long s = first; s < _next; s++)
                events[s - first] = _ring[s % _ring.Length];
            return events;
        }
    }
}
