using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Forewarn.Core.Aaa;
using Forewarn.Core.Aaa.Tacacs;
using Forewarn.Core.Clients;
using Forewarn.Core.Deferrals;
using Forewarn.Protocol.Tacacs;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Tacacs;

/// <summary>
/// One TACACS+ connection: frames packets off the stream (a header, then exactly the body it announces,
/// never more than <see cref="TacacsPacket.MaxBodyLength"/>), keeps the table of its sessions by session id
/// with the sequence number each expects next, and answers its packets concurrently — up to
/// <see cref="TacacsOptions.MaxSessionsPerConnection"/> in flight, replies written whole, one at a time —
/// so that one single-connect connection's accounting shares group commits like many. Single-connection mode
/// (RFC 8907 §4.3) is granted when the device asks in its first packet; otherwise the connection is
/// closed once its session ends. Every refusal is a counted <see cref="TacacsDrop"/>: an ERROR reply where
/// the device can read one, a closed connection where it cannot (a wrong key, a broken header).
/// </summary>
public sealed partial class TacacsConnection(ConnectionContext connection, RadiusClient client, IPAddress address, IPAddress? local, bool tls, bool isSelf, TacacsConnection.Services services) : IDisposable
{
    /// <summary>What every connection shares: admission, counters, the three handlers, the registry, the latency window.</summary>
    public sealed record Services(
        WorkerPool Pool,
        TacacsCounters Counters,
        ITacacsHandler Handler,
        ClientRegistry Registry,
        Health.LatencyWindow Latency,
        TacacsOptions Options,
        TimeProvider Time,
        ILogger<TacacsConnection> Logger);

    private sealed class Session(long now)
    {
        public byte Expected = 1;
        public bool Busy;
        public long LastActivity = now;
        public readonly AuthenSession Authentication = new();
    }

    /// <summary>A packet waiting for a worker in the shared queue; its connection's loop awaits the start.</summary>
    private sealed class Waiting(long receivedAt) : IQueuedWork
    {
        private readonly TaskCompletionSource<long> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long ReceivedAt => receivedAt;
        public Task<long> Started => _started.Task;
        public void Run(long started) => _started.TrySetResult(started);
        public void Expire() => _started.TrySetResult(0);
    }

    private const int MaxPacket = TacacsHeader.Size + TacacsPacket.MaxBodyLength;
    private readonly Dictionary<uint, Session> _sessions = [];
    private readonly byte[] _key = Encoding.UTF8.GetBytes(client.Record.TacacsSecret);
    private readonly TimeProvider _time = services.Time;
    private bool _first = true;
    private bool _singleConnect;
    private int _handling;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly SemaphoreSlim _slots = new(services.Options.MaxSessionsPerConnection, services.Options.MaxSessionsPerConnection);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Task, byte> _inFlight = new();
    private long _partialSince;
    private long _lastActivity = services.Time.GetTimestamp();

    public RadiusClient Client => client;
    /// <summary>The server's own listener check: not a device, so neither registered nor deferred.</summary>
    public bool IsSelf => isSelf;
    public IPAddress Address => address;

    public async Task RunAsync()
    {
        var input = connection.Transport.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
                var buffer = result.Buffer;
                bool open = true, framed = false;
                while (open && TryFrame(ref buffer, out var packet, out int length, out var header, out var error))
                {
                    framed = true;
                    if (error != TacacsError.None)
                    {
                        Drop(TacacsDrop.BadHeader, error.ToString());
                        return;
                    }
                    // A packet that completes at once (a cached login) is answered before the next is read;
                    // one that waits (a commit, a lookup) goes on while the next packets are read.
                    await _slots.WaitAsync(connection.ConnectionClosed).ConfigureAwait(false);
                    var pending = HandleOwnedAsync(packet!, length, header);
                    if (pending.IsCompleted)
                        open = pending.Result;
                    else
                        Track(pending.AsTask());
                }
                // A packet begun is timed from its first octets: from now if it began in this read, from before if it was already waiting.
                long now = _time.GetTimestamp();
                if (buffer.Length == 0)
                    Interlocked.Exchange(ref _partialSince, 0);
                else if (framed || Interlocked.Read(ref _partialSince) == 0)
                    Interlocked.Exchange(ref _partialSince, now);
                Interlocked.Exchange(ref _lastActivity, now);
                input.AdvanceTo(buffer.Start, buffer.End);
                if (!open || _closing || result.IsCompleted || result.IsCanceled)
                    return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or ConnectionAbortedException or IOException or InvalidOperationException)
        {
            // the device went away, or the sweep closed the connection
        }
        finally
        {
            // Answers still being worked on are finished (a commit is not abandoned half way) before the connection goes.
            try
            {
                await Task.WhenAll(_inFlight.Keys).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or ConnectionAbortedException or IOException or InvalidOperationException)
            {
            }
        }
    }

    private async ValueTask<bool> HandleOwnedAsync(byte[] packet, int length, TacacsHeader header)
    {
        try
        {
            return await HandleAsync(packet, length, header).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packet);
            _slots.Release();
        }
    }

    /// <summary>
    /// An answer that went asynchronous: when it says the connection is to close, the read loop is stopped
    /// (not the connection aborted, which would discard the reply just written) and the connection closes
    /// once every answer is out.
    /// </summary>
    private void Track(Task<bool> pending)
    {
        _inFlight[pending] = 0;
        _ = pending.ContinueWith(t =>
        {
            _inFlight.TryRemove(t, out _);
            if (t.IsFaulted || !t.Result)
            {
                _closing = true;
                connection.Transport.Input.CancelPendingRead();
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private volatile bool _closing;

    /// <summary>
    /// Takes one whole packet off the front of <paramref name="buffer"/> into a pooled array; false when
    /// more octets are needed. A bad header is returned as an error (the stream cannot be re-synchronised).
    /// </summary>
    private static bool TryFrame(ref ReadOnlySequence<byte> buffer, out byte[]? packet, out int length, out TacacsHeader header, out TacacsError error)
    {
        packet = null;
        length = 0;
        header = default;
        error = TacacsError.None;
        if (buffer.Length < TacacsHeader.Size)
            return false;
        Span<byte> head = stackalloc byte[TacacsHeader.Size];
        buffer.Slice(0, TacacsHeader.Size).CopyTo(head);
        error = TacacsPacket.TryReadHeader(head, out header);
        if (error != TacacsError.None)
            return true;
        length = TacacsHeader.Size + header.Length;
        if (buffer.Length < length)
            return false;
        packet = ArrayPool<byte>.Shared.Rent(length);
        buffer.Slice(0, length).CopyTo(packet);
        buffer = buffer.Slice(length);
        return true;
    }

    /// <summary>Answers one packet; false when the connection is to close.</summary>
    private async ValueTask<bool> HandleAsync(byte[] packet, int length, TacacsHeader header)
    {
        services.Counters.OnReceived();
        long receivedAt = _time.GetTimestamp();
        Interlocked.Increment(ref _handling);
        try
        {
            if (!header.FromClient)
                return Drop(TacacsDrop.BadSequence, "an even sequence number from the device");
            bool unencrypted = (header.Flags & TacacsFlags.Unencrypted) != 0;
            if (tls && !unencrypted)
            {
                // RFC 9887 §4: obfuscation is never used inside TLS.
                await WriteAsync(Error(header.Type, "Obfuscation is not used over TLS"), header).ConfigureAwait(false);
                return Drop(TacacsDrop.ObfuscationRefused, "an obfuscated packet over TLS");
            }
            if (!tls && unencrypted && !client.Record.TacacsUnencrypted)
                return Drop(TacacsDrop.ObfuscationRefused, "an unobfuscated packet from a client not allowed to send them");

            var (session, refusal) = Begin(header);
            if (session is null)
            {
                services.Counters.OnDrop(refusal);
                await WriteAsync(Error(header.Type, refusal == TacacsDrop.SessionLimit ? "Too many sessions on this connection" : "Unexpected sequence number"), header).ConfigureAwait(false);
                return _singleConnect || SessionCount > 0;
            }
            var decoded = TacacsPacket.TryDecode(packet.AsSpan(0, length), tls ? [] : _key, out _, out var body);
            if (decoded != TacacsError.None)
            {
                // With the right key a well-formed packet always decodes: almost always a wrong key.
                End(header.SessionId);
                return Drop(TacacsDrop.BadBody, decoded.ToString());
            }
            if (_first)
            {
                _first = false;
                _singleConnect = (header.Flags & TacacsFlags.SingleConnect) != 0;
            }
            if (!isSelf)
                services.Registry.Seen(address, client, local, receivedAt);

            var (reply, ends, noEvidence) = await AnswerAsync(header, body!, session, receivedAt).ConfigureAwait(false);
            // The session is ready for the device's next packet before the reply can bring it.
            if (ends)
                End(header.SessionId);
            else
                Continue(header.SessionId, session, header.Sequence);
            await WriteAsync(reply, header).ConfigureAwait(false);
            if (!noEvidence)
            {
                var elapsed = _time.GetElapsedTime(receivedAt);
                services.Latency.Record(elapsed);
                Health.ServerMetrics.RequestLatency(elapsed, tacacs: true);
            }
            return _singleConnect || SessionCount > 0;
        }
        finally
        {
            Interlocked.Decrement(ref _handling);
        }
    }

    private int SessionCount
    {
        get
        {
            lock (_sessions)
                return _sessions.Count;
        }
    }

    /// <summary>The session this packet belongs to, checked: a new one starts at 1, a known one continues where it left off.</summary>
    private (Session?, TacacsDrop) Begin(TacacsHeader header)
    {
        lock (_sessions)
        {
            if (_sessions.TryGetValue(header.SessionId, out var session))
            {
                if (session.Busy || header.Sequence != session.Expected || header.Type != TacacsType.Authentication)
                {
                    _sessions.Remove(header.SessionId);
                    return (null, TacacsDrop.BadSequence);
                }
                session.Busy = true;
                return (session, TacacsDrop.None);
            }
            if (header.Sequence != 1)
                return (null, TacacsDrop.BadSequence);
            if (_sessions.Count >= services.Options.MaxSessionsPerConnection)
                return (null, TacacsDrop.SessionLimit);
            session = new Session(_time.GetTimestamp()) { Busy = true };
            _sessions[header.SessionId] = session;
            return (session, TacacsDrop.None);
        }
    }

    private void End(uint sessionId)
    {
        lock (_sessions)
            _sessions.Remove(sessionId);
    }

    private void Continue(uint sessionId, Session session, byte sequence)
    {
        lock (_sessions)
        {
            // The device's next packet follows the reply (sequence + 1); a session that would pass 255 ends (RFC 8907 §4.1).
            if (sequence >= 253)
            {
                _sessions.Remove(sessionId);
                return;
            }
            session.Expected = (byte)(sequence + 2);
            session.LastActivity = _time.GetTimestamp();
            session.Busy = false;
        }
    }

    /// <summary>
    /// Admission, then the handler for the packet's type; the reply, whether it ends the session, and
    /// whether its time says nothing of the service's latency: spent on purpose (a derivation), or no
    /// service at all (the listener check's canned answer, a busy or error reply), which would otherwise
    /// dilute a slow store's evidence, and most when the server is overloaded.
    /// </summary>
    private async ValueTask<(TacacsBody Reply, bool Ends, bool NoEvidence)> AnswerAsync(TacacsHeader header, TacacsBody body, Session session, long receivedAt)
    {
        long started = await AdmitAsync(receivedAt).ConfigureAwait(false);
        if (started <= 0)
            return Busy(header, started < 0 ? TacacsDrop.QueueFull : TacacsDrop.QueueTimeout);
        services.Pool.RecordWait(receivedAt, started);
        try
        {
            var pending = DispatchAsync(body, header, session.Authentication);
            bool synchronous = pending.IsCompleted;
            var (reply, ends) = await pending.ConfigureAwait(false);
            // An authentication that had to wait was waiting for a store lookup or a PBKDF2 derivation: the slow-work probe watches those.
            return (reply, ends, isSelf || (!synchronous && header.Type == TacacsType.Authentication));
        }
        catch (SlowWorkFullException)
        {
            return Busy(header, TacacsDrop.QueueFull);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            services.Counters.OnDrop(TacacsDrop.InternalError);
            services.Counters.OnError();
            LogFailed(services.Logger, address, e);
            return (Error(header.Type, "Internal error"), true, true);
        }
        finally
        {
            services.Pool.Release(started);
            services.Pool.Pump();
        }
    }

    /// <summary>Refused for want of room (the shared queue, the slow-work pool): ERROR, so the device tries its next server now.</summary>
    private (TacacsBody, bool, bool) Busy(TacacsHeader header, TacacsDrop reason)
    {
        services.Counters.OnDrop(reason);
        services.Counters.OnError();
        return (Error(header.Type, "Server busy; try another server"), true, true);
    }

    /// <summary>A worker for this packet: at once when one is free and none waits, otherwise in the shared queue (-1: queue full; 0: it waited too long).</summary>
    private async ValueTask<long> AdmitAsync(long receivedAt)
    {
        var pool = services.Pool;
        if (pool.TryAdmitNow())
            return pool.Begin();
        var waiting = new Waiting(receivedAt);
        if (!pool.TryEnqueue(waiting))
            return -1;
        pool.Pump();
        return await waiting.Started.ConfigureAwait(false);
    }

    /// <summary>The handler's reply, whether it ends the session, and the counters it moves.</summary>
    private async ValueTask<(TacacsBody, bool)> DispatchAsync(TacacsBody body, TacacsHeader header, AuthenSession authentication)
    {
        // The listener check proves accept, framing, keys and admission; the user store has its own check.
        if (isSelf && body is AuthorRequest)
            return (new AuthorResponse(AuthorStatus.PassAdd, [], [], []), true);
        var reply = await services.Handler.HandleAsync(body, header, client, address, authentication, CancellationToken.None).ConfigureAwait(false);
        var counters = services.Counters;
        switch (reply)
        {
            case AuthenReply authen:
                if (authen.Status is AuthenStatus.Pass or AuthenStatus.Fail)
                    counters.OnAuthentication(authen.Status == AuthenStatus.Pass);
                else if (authen.Status == AuthenStatus.Error)
                    counters.OnError();
                return (reply, TacacsAuthenticator.Ends(authen));
            case AuthorResponse author:
                if (author.Status == AuthorStatus.Error)
                    counters.OnError();
                else
                    counters.OnAuthorization(author.Status is AuthorStatus.PassAdd or AuthorStatus.PassReplace);
                return (reply, true);
            case AcctReply acct:
                if (acct.Status == AcctStatus.Success)
                    counters.OnAccounted();
                else
                    counters.OnError();
                return (reply, true);
            default:
                return (Error(body.Type, "Unexpected packet"), true);
        }
    }

    /// <summary>An ERROR reply of the packet's type.</summary>
    public static TacacsBody Error(TacacsType type, string message)
    {
        var text = Encoding.UTF8.GetBytes(message);
        return type switch
        {
            TacacsType.Authentication => new AuthenReply(AuthenStatus.Error, 0, text, []),
            TacacsType.Authorization => new AuthorResponse(AuthorStatus.Error, text, [], []),
            _ => new AcctReply(text, [], AcctStatus.Error),
        };
    }

    /// <summary>The reply: the request's version and session, the next sequence number, obfuscated with the client's key unless the request was not (over TLS it never is).</summary>
    private async ValueTask WriteAsync(TacacsBody reply, TacacsHeader request)
    {
        // Over TLS never obfuscated (RFC 9887 §4), whatever the device sent; on plain TCP as the request was.
        var flags = tls ? TacacsFlags.Unencrypted : request.Flags & TacacsFlags.Unencrypted;
        if (_singleConnect)
            flags |= TacacsFlags.SingleConnect;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxPacket);
        try
        {
            int length = TacacsPacket.Encode(reply, request.Version, (byte)(request.Sequence + 1), flags, request.SessionId, _key, buffer);
            await _write.WaitAsync().ConfigureAwait(false);
            try
            {
                await connection.Transport.Output.WriteAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
            finally
            {
                _write.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private bool Drop(TacacsDrop reason, string detail)
    {
        long count = services.Counters.OnDrop(reason);
        if (count == 1 || count % 1000 == 0)
            LogDropped(services.Logger, reason, address, client.Name, detail, count);
        return false;
    }

    /// <summary>
    /// Called every 100 ms: a deferred client's connection closes once nothing is in progress on it; a
    /// packet begun and not finished within the packet timeout closes it (slow-loris); a connection idle
    /// past the idle timeout closes; authentication sessions left waiting past the session timeout are forgotten.
    /// </summary>
    internal void Sweep(long now, bool deferred)
    {
        var options = services.Options;
        long partial = Interlocked.Read(ref _partialSince);
        if (partial != 0 && _time.GetElapsedTime(partial, now).TotalSeconds > options.PacketTimeoutSeconds)
        {
            Drop(TacacsDrop.SlowPacket, $"a packet unfinished after {options.PacketTimeoutSeconds} s");
            connection.Abort(new ConnectionAbortedException("slow packet"));
            return;
        }
        int sessions;
        lock (_sessions)
        {
            foreach (var (id, session) in _sessions.Where(s => !s.Value.Busy && _time.GetElapsedTime(s.Value.LastActivity, now).TotalSeconds > options.SessionTimeoutSeconds).ToList())
                _sessions.Remove(id);
            sessions = _sessions.Count;
        }
        bool quiet = sessions == 0 && partial == 0 && Volatile.Read(ref _handling) == 0;
        if (quiet && deferred)
        {
            services.Counters.OnDrop(TacacsDrop.Deferred);
            connection.Abort(new ConnectionAbortedException("deferred"));
        }
        else if (quiet && _time.GetElapsedTime(Interlocked.Read(ref _lastActivity), now).TotalSeconds > options.IdleTimeoutSeconds)
        {
            connection.Abort(new ConnectionAbortedException("idle"));
        }
    }

    /// <summary>After <see cref="RunAsync"/> has returned (it waits for every answer in flight).</summary>
    public void Dispose()
    {
        _write.Dispose();
        _slots.Dispose();
    }

    [LoggerMessage(EventId = 34, Level = LogLevel.Warning, Message = "TACACS+ packet dropped ({Reason}) from {Address} ({Client}): {Detail}; {Count} dropped for this reason so far")]
    private static partial void LogDropped(ILogger logger, TacacsDrop reason, IPAddress address, string client, string detail, long count);

    [LoggerMessage(EventId = 35, Level = LogLevel.Error, Message = "TACACS+ request from {Address} failed")]
    private static partial void LogFailed(ILogger logger, IPAddress address, Exception exception);
}
