namespace Forewarn.Server.Tacacs;

/// <summary>Why a TACACS+ packet or connection was refused. Each is counted; none lowers the health score but the queue's.</summary>
public enum TacacsDrop
{
    None = 0,
    /// <summary>A connection from an address no client entry covers.</summary>
    UnknownClient,
    /// <summary>The client already holds Forewarn:Tacacs:MaxConnectionsPerClient connections.</summary>
    ConnectionLimit,
    /// <summary>A header that is not TACACS+ (version, type, sequence 0, a length past the limit).</summary>
    BadHeader,
    /// <summary>A body that does not decode: with the right key it always does, so almost always a wrong key.</summary>
    BadBody,
    /// <summary>A sequence number out of order for its session, or a new session not starting at 1.</summary>
    BadSequence,
    /// <summary>An unobfuscated packet on plain TCP from a client not allowed to send them, or an obfuscated one over TLS.</summary>
    ObfuscationRefused,
    /// <summary>More sessions in progress on one connection than Forewarn:Tacacs:MaxSessionsPerConnection.</summary>
    SessionLimit,
    /// <summary>A packet that did not arrive whole within Forewarn:Tacacs:PacketTimeoutSeconds (slow-loris).</summary>
    SlowPacket,
    /// <summary>The shared worker queue was full.</summary>
    QueueFull,
    /// <summary>The packet waited in the worker queue past Forewarn:QueueTimeoutMs.</summary>
    QueueTimeout,
    /// <summary>A connection refused or closed because this server is deferring its clients (drain, degradation).</summary>
    Deferred,
    /// <summary>A failure inside the server (logged).</summary>
    InternalError,
}

/// <summary>What the TACACS+ listener has done: plain counters, read by status, tests and the metrics.</summary>
public sealed class TacacsCounters
{
    private readonly long[] _drops = new long[Enum.GetValues<TacacsDrop>().Length];
    private long _connections;
    private long _open;
    private long _received;
    private long _authenPass;
    private long _authenFail;
    private long _authorPass;
    private long _authorFail;
    private long _accounted;
    private long _errors;

    public long Connections => Interlocked.Read(ref _connections);
    public long OpenConnections => Interlocked.Read(ref _open);
    public long Received => Interlocked.Read(ref _received);
    public long AuthenticationPasses => Interlocked.Read(ref _authenPass);
    public long AuthenticationFailures => Interlocked.Read(ref _authenFail);
    public long AuthorizationPasses => Interlocked.Read(ref _authorPass);
    public long AuthorizationFailures => Interlocked.Read(ref _authorFail);
    public long AccountingSuccesses => Interlocked.Read(ref _accounted);
    /// <summary>Replies with status ERROR (the device tries another server).</summary>
    public long Errors => Interlocked.Read(ref _errors);
    public long Dropped(TacacsDrop reason) => Interlocked.Read(ref _drops[(int)reason]);

    public IReadOnlyDictionary<string, long> DropsByReason() => ServerCounters.ByReason<TacacsDrop>(_drops);

    internal void OnConnected()
    {
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _open);
    }

    internal void OnClosed() => Interlocked.Decrement(ref _open);
    internal void OnReceived() => Interlocked.Increment(ref _received);
    internal long OnDrop(TacacsDrop reason) => Interlocked.Increment(ref _drops[(int)reason]);
    internal void OnError() => Interlocked.Increment(ref _errors);
    internal void OnAuthentication(bool passed) => Interlocked.Increment(ref passed ? ref _authenPass : ref _authenFail);
    internal void OnAuthorization(bool passed) => Interlocked.Increment(ref passed ? ref _authorPass : ref _authorFail);
    internal void OnAccounted() => Interlocked.Increment(ref _accounted);
}
