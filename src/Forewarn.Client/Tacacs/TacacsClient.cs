using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Client.Tacacs;

/// <summary>Why a TACACS+ exchange produced no reply from the server.</summary>
public sealed class TacacsException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>How a <see cref="TacacsClient"/> talks to one server.</summary>
public sealed record TacacsClientOptions
{
    public required IPEndPoint Server { get; init; }
    public required string Key { get; init; }
    /// <summary>Single-connect connections kept open and shared; sessions are spread over them in turn.</summary>
    public int Connections { get; init; } = 1;
    /// <summary>A reply not received within this long fails the exchange (the connection is then replaced).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>The address connections are made from (a client entry the server knows); null for the system's choice.</summary>
    public IPAddress? LocalAddress { get; init; }
    /// <summary>Sessions open at once on one connection; more wait their turn. Forewarn's server allows 32 by default.</summary>
    public int MaxSessionsPerConnection { get; init; } = 32;
}

/// <summary>
/// The NAS side of TACACS+ (RFC 8907) for software that can load this library: pooled single-connect
/// connections, many sessions in flight on each (replies matched by session id), PAP and ASCII login,
/// authorization and accounting. A connection the server closes (a deferring server closes idle ones,
/// RFC 8907 gives no other way to say "go elsewhere") fails its pending exchanges and is reopened on the
/// next use; <see cref="ConnectionsClosedByServer"/> counts those moves for the caller's failover.
/// </summary>
public sealed class TacacsClient(TacacsClientOptions options) : IAsyncDisposable
{
    private readonly byte[] _key = Encoding.UTF8.GetBytes(options.Key);
    private readonly Connection?[] _connections = new Connection?[Math.Max(1, options.Connections)];
    private readonly SemaphoreSlim _opening = new(1, 1);
    private readonly SemaphoreSlim[] _sessions = [.. Enumerable.Range(0, Math.Max(1, options.Connections)).Select(_ => new SemaphoreSlim(Math.Max(1, options.MaxSessionsPerConnection)))];
    private uint _next;
    private long _closedByServer;

    public TacacsClientOptions Options => options;

    /// <summary>Connections that ended because the server closed them or refused them at connect.</summary>
    public long ConnectionsClosedByServer => Interlocked.Read(ref _closedByServer);

    public static uint NewSessionId() => BinaryPrimitives.ReadUInt32BigEndian(RandomNumberGenerator.GetBytes(4));

    /// <summary>PAP login (minor version 1): true when the server passed it.</summary>
    public async Task<AuthenReply> PapAsync(string user, string password, string port = "tty0", string remoteAddress = "", CancellationToken cancellationToken = default)
    {
        var start = new AuthenStart(AuthenAction.Login, 1, AuthenType.Pap, AuthenService.Login, Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(port),
            Encoding.UTF8.GetBytes(remoteAddress), Encoding.UTF8.GetBytes(password));
        return (AuthenReply)await ExchangeAsync(start, NewSessionId(), 1, TacacsHeader.VersionOne, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>ASCII login as a terminal would run it: START with the user, then the password when asked.</summary>
    public async Task<AuthenReply> AsciiAsync(string user, string password, string port = "tty0", CancellationToken cancellationToken = default)
    {
        uint session = NewSessionId();
        var start = new AuthenStart(AuthenAction.Login, 1, AuthenType.Ascii, AuthenService.Login, Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(port), [], []);
        int slot = NextSlot();
        await _sessions[slot].WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var reply = (AuthenReply)await ExchangeOnAsync(slot, start, session, 1, TacacsHeader.VersionDefault, cancellationToken).ConfigureAwait(false);
            byte sequence = 3;
            while (reply.Status is AuthenStatus.GetUser or AuthenStatus.GetPass && sequence < 9)
            {
                var answer = reply.Status == AuthenStatus.GetUser ? user : password;
                reply = (AuthenReply)await ExchangeOnAsync(slot, new AuthenContinue(Encoding.UTF8.GetBytes(answer), [], 0), session, sequence, TacacsHeader.VersionDefault, cancellationToken).ConfigureAwait(false);
                sequence += 2;
            }
            return reply;
        }
        finally
        {
            _sessions[slot].Release();
        }
    }

    public async Task<AuthorResponse> AuthorizeAsync(string user, IReadOnlyList<string> arguments, string port = "tty0", CancellationToken cancellationToken = default)
    {
        var request = new AuthorRequest(AuthenMethod.TacacsPlus, 1, AuthenType.Ascii, AuthenService.Login, Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(port), [],
            [.. arguments.Select(Encoding.UTF8.GetBytes)]);
        return (AuthorResponse)await ExchangeAsync(request, NewSessionId(), 1, TacacsHeader.VersionDefault, cancellationToken).ConfigureAwait(false);
    }

    public async Task<AcctReply> AccountAsync(AcctFlags flags, string user, IReadOnlyList<string> arguments, string port = "tty0", CancellationToken cancellationToken = default)
    {
        var request = new AcctRequest(flags, AuthenMethod.TacacsPlus, 1, AuthenType.Ascii, AuthenService.Login, Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(port), [],
            [.. arguments.Select(Encoding.UTF8.GetBytes)]);
        return (AcctReply)await ExchangeAsync(request, NewSessionId(), 1, TacacsHeader.VersionDefault, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Connections in turn, so that sessions spread evenly (a server bounds the sessions of each connection).</summary>
    private int NextSlot() => (int)(Interlocked.Increment(ref _next) % (uint)_connections.Length);

    /// <summary>A session of one packet each way: sent on the next connection in turn, when it has room for another session.</summary>
    public async Task<TacacsBody> ExchangeAsync(TacacsBody body, uint session, byte sequence, byte version, CancellationToken cancellationToken)
    {
        int slot = NextSlot();
        await _sessions[slot].WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ExchangeOnAsync(slot, body, session, sequence, version, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sessions[slot].Release();
        }
    }

    /// <summary>A packet of a session kept by the caller (a relay's conversation): every packet of the session on the same connection, chosen by its id.</summary>
    public Task<TacacsBody> ExchangeInSessionAsync(TacacsBody body, uint session, byte sequence, byte version, CancellationToken cancellationToken) =>
        ExchangeOnAsync((int)(session % (uint)_connections.Length), body, session, sequence, version, cancellationToken);

    private async Task<TacacsBody> ExchangeOnAsync(int slot, TacacsBody body, uint session, byte sequence, byte version, CancellationToken cancellationToken)
    {
        var connection = await ConnectionAsync(slot, cancellationToken).ConfigureAwait(false);
        try
        {
            return await connection.ExchangeAsync(body, session, sequence, version, options.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TacacsException)
        {
            Interlocked.CompareExchange(ref _connections[slot], null, connection);
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A slot's connection, opened (or reopened after the server closed it) on demand.</summary>
    private async ValueTask<Connection> ConnectionAsync(int slot, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _connections[slot]) is { Closed: false } open)
            return open;
        await _opening.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connections[slot] is { Closed: false } again)
                return again;
            var socket = new Socket(options.Server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                if (options.LocalAddress is { } local)
                    socket.Bind(new IPEndPoint(local, 0));
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.Timeout);
                await socket.ConnectAsync(options.Server, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                socket.Dispose();
                throw new TacacsException($"cannot connect to TACACS+ server {options.Server}: {e.Message}", e);
            }
            var connection = new Connection(socket, _key, () => Interlocked.Increment(ref _closedByServer));
            _connections[slot] = connection;
            return connection;
        }
        finally
        {
            _opening.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
            connection?.Dispose();
        _opening.Dispose();
        foreach (var sessions in _sessions)
            sessions.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>One single-connect connection: writes serialized, one reader completing replies by session id.</summary>
    private sealed class Connection : IDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _key;
        private readonly Action _closedByServer;
        private readonly SemaphoreSlim _write = new(1, 1);
        private readonly ConcurrentDictionary<uint, TaskCompletionSource<TacacsBody>> _pending = new();
        private readonly byte[] _send = new byte[TacacsHeader.Size + TacacsPacket.MaxBodyLength];
        private bool _first = true;
        private volatile bool _closed;

        public Connection(Socket socket, byte[] key, Action closedByServer)
        {
            _socket = socket;
            _key = key;
            _closedByServer = closedByServer;
            _ = Task.Run(ReadLoopAsync);
        }

        public bool Closed => _closed;

        public async Task<TacacsBody> ExchangeAsync(TacacsBody body, uint session, byte sequence, byte version, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var reply = new TaskCompletionSource<TacacsBody>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_pending.TryAdd(session, reply))
                throw new InvalidOperationException($"session {session} already has an exchange in flight");
            try
            {
                await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    if (_closed)
                        throw new TacacsException("the server closed the connection");
                    var flags = _first ? TacacsFlags.SingleConnect : TacacsFlags.None;
                    _first = false;
                    int length = TacacsPacket.Encode(body, version, sequence, flags, session, _key, _send);
                    await _socket.SendAsync(_send.AsMemory(0, length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    throw new TacacsException($"sending failed: {e.Message}", e);
                }
                finally
                {
                    _write.Release();
                }
                try
                {
                    return await reply.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException e)
                {
                    throw new TacacsException($"no reply within {timeout.TotalSeconds:0.#} s", e);
                }
            }
            finally
            {
                _pending.TryRemove(session, out _);
            }
        }

        private async Task ReadLoopAsync()
        {
            var buffer = new byte[TacacsHeader.Size + TacacsPacket.MaxBodyLength];
            int filled = 0;
            string why = "the server closed the connection";
            try
            {
                while (true)
                {
                    int n = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0)
                        break;
                    filled += n;
                    int offset = 0;
                    while (filled - offset >= TacacsHeader.Size)
                    {
                        if (TacacsPacket.TryReadHeader(buffer.AsSpan(offset, filled - offset), out var header) != TacacsError.None)
                        {
                            why = "the server sent a malformed header";
                            return;
                        }
                        int length = TacacsHeader.Size + header.Length;
                        if (filled - offset < length)
                            break;
                        if (TacacsPacket.TryDecode(buffer.AsSpan(offset, length), _key, out _, out var body) == TacacsError.None
                            && _pending.TryGetValue(header.SessionId, out var waiter))
                            waiter.TrySetResult(body!);
                        offset += length;
                    }
                    Buffer.BlockCopy(buffer, offset, buffer, 0, filled - offset);
                    filled -= offset;
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                why = e.Message;
            }
            finally
            {
                if (!_closed)
                    _closedByServer();
                _closed = true;
                foreach (var waiter in _pending.Values)
                    waiter.TrySetException(new TacacsException(why));
            }
        }

        public void Dispose()
        {
            _closed = true;
            _socket.Dispose();
        }
    }
}
