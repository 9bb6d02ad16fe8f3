using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Forewarn.Client.Carriers;
using Forewarn.Protocol.Advisory;
using Forewarn.Protocol.Radius;

namespace Forewarn.Client;

public sealed class ClientOptions
{
    /// <summary>The address the NAS sends from and receives advisories on.</summary>
    public IPAddress LocalAddress { get; set; } = IPAddress.Loopback;
    /// <summary>The UDP port advisories arrive on (0: none, classic failover only).</summary>
    public int AdvisoryPort { get; set; } = 1815;
    /// <summary>"udp" (default) or "icmp" (ICMP Echo payloads; needs a raw socket).</summary>
    public string Carrier { get; set; } = "udp";
    /// <summary>Classic timeout T per attempt.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>Classic retries R after the first attempt.</summary>
    public int Retries { get; set; } = 3;
    /// <summary>
    /// RFC 5080 §2.2.1 back-off: each retransmission waits twice the previous timeout, ±10 % at random,
    /// at most this long. Set it equal to <see cref="Timeout"/> for the fixed T of a classic NAS.
    /// </summary>
    public TimeSpan MaxTimeout { get; set; } = TimeSpan.FromSeconds(16);
    /// <summary>How long a server that timed out is avoided.</summary>
    public TimeSpan DeadTime { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>A server that timed out is asked with Status-Server (RFC 5997) this often, and used again as soon as it answers; zero turns it off.</summary>
    public TimeSpan StatusServerInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>Invitations are taken up at a random moment within this, so that clients do not stampede back.</summary>
    public TimeSpan ReturnJitter { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>Counters of what the client saw (for metrics and tests).</summary>
public sealed class ClientCounters
{
    internal long _sent, _answered, _timeouts, _failovers, _invites, _refusals, _rejected, _resentInFlight, _advisoriesSent,
        _retransmissions, _lateAnswers, _invalidAnswers, _sendErrors;
    /// <summary>Datagrams sent, retransmissions included.</summary>
    public long Sent => Interlocked.Read(ref _sent);
    /// <summary>Requests sent again after a timeout, with the same Identifier and authenticator (RFC 5080 §2.2.1).</summary>
    public long Retransmissions => Interlocked.Read(ref _retransmissions);
    /// <summary>Answers that came after their request had been answered, given up or moved.</summary>
    public long LateAnswers => Interlocked.Read(ref _lateAnswers);
    /// <summary>Answers to an outstanding Identifier that did not verify against its request (forged or misrouted).</summary>
    public long InvalidAnswers => Interlocked.Read(ref _invalidAnswers);
    /// <summary>Sends the operating system refused (no route, buffer full); the request waits out its timeout as if lost.</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);
    public long Answered => Interlocked.Read(ref _answered);
    public long Timeouts => Interlocked.Read(ref _timeouts);
    public long Failovers => Interlocked.Read(ref _failovers);
    public long Invites => Interlocked.Read(ref _invites);
    public long Refusals => Interlocked.Read(ref _refusals);
    /// <summary>Advisories dropped as forged, replayed, expired, misaddressed or malformed.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);
    /// <summary>Requests in flight re-sent to an alternate when their server told the client to move.</summary>
    public long ResentInFlight => Interlocked.Read(ref _resentInFlight);
    /// <summary>Advisory messages this client sent: ACKs and Probes.</summary>
    public long AdvisoriesSent => Interlocked.Read(ref _advisoriesSent);
}

/// <summary>
/// A RADIUS client for NAS software: a pool of servers with priorities and weights, verified responses,
/// classic timeout and retries as the fallback, and an advisory listener that moves traffic the moment
/// a server says so — re-sending requests in flight — and returns on invitation at a jittered moment.
/// Forged, replayed, misaddressed or expired advisories are dropped and reported, never acted upon.
/// </summary>
public sealed class ForewarnClient : IAsyncDisposable
{
    private readonly ClientOptions _options;
    private readonly ServerPool _pool;
    private readonly TimeProvider _time;
    private readonly SourcePorts _ports;
    private readonly Carriers.IAdvisoryCarrier? _advisory;
    private readonly AdvisoryReceiver _receiver;
    private readonly AdvisorySequence _sequence;
    private readonly ConcurrentDictionary<PoolServer, CancellationTokenSource> _moved = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly ConversationPins _pins;

    internal sealed record Pending(byte[] Authenticator, PoolServer Server, TaskCompletionSource<byte[]> Done);

    public ClientCounters Counters { get; } = new();
    public ServerPool Pool => _pool;

    /// <summary>Conversations (EAP) pinned to the server that began them.</summary>
    public int ConversationsInProgress => _pins.Count;

    /// <summary>Raised for every advisory that is dropped, with the source and the reason.</summary>
    public event Action<IPEndPoint, AdvisoryError>? AdvisoryRejected;

    /// <summary>Raised when a server tells the client to move (server, alternates).</summary>
    public event Action<PoolServer, IReadOnlyList<Alternate>>? MovedAway;

    public ForewarnClient(ClientOptions options, IEnumerable<PoolServer> servers, TimeProvider? time = null)
    {
        _options = options;
        _time = time ?? TimeProvider.System;
        _pool = new ServerPool(servers, _time);
        _receiver = new AdvisoryReceiver(_time, AdvisoryReceiver.DefaultWindow);
        _sequence = new AdvisorySequence(_time);
        _pins = new ConversationPins(_time, TimeSpan.FromSeconds(60));
        _ports = new SourcePorts(options.LocalAddress, port =>
        {
            lock (_loops)
                _loops.Add(Task.Run(() => ReceiveResponsesAsync(port)));
        });
        if (options.StatusServerInterval > TimeSpan.Zero)
            _loops.Add(Task.Run(WatchDeadServersAsync));
        if (options.AdvisoryPort != 0)
        {
            _advisory = Carriers.AdvisoryCarriers.Open(options.Carrier, new IPEndPoint(options.LocalAddress, options.AdvisoryPort));
            _loops.Add(Task.Run(ReceiveAdvisoriesAsync));
            _loops.Add(Task.Run(ProbeLoopAsync));
        }
    }

    /// <summary>How many UDP source ports the client has opened (one per 256 requests outstanding to a server).</summary>
    public int SourcePortCount => _ports.Ports.Count;

    public IPEndPoint? AdvisoryEndpoint => _advisory?.LocalEndPoint;

    /// <summary>Sends the request and returns the verified response, failing over as needed. Throws TimeoutException when no server answers.</summary>
    public async Task<byte[]> SendAsync(RadiusRequest request, CancellationToken cancellationToken = default) =>
        (await ExchangeAsync(request, cancellationToken).ConfigureAwait(false)).Response;

    /// <summary>A verified answer, with the server that gave it and the Request Authenticator it answers (to reveal hidden attributes).</summary>
    public sealed record Exchange(byte[] Response, byte[] RequestAuthenticator, PoolServer Server);

    /// <summary>Like <see cref="SendAsync"/>, but says which server answered and under which authenticator.</summary>
    public async Task<Exchange> ExchangeAsync(RadiusRequest request, CancellationToken cancellationToken = default)
    {
        if (_pins.Find(request) is { } pinned)
        {
            // A round of a conversation in progress: to its server, whatever advisories said since (no other server knows the State).
            var answer = await AttemptAsync(request, pinned, _options.Retries, CancellationToken.None, cancellationToken).ConfigureAwait(false);
            if (answer is null)
            {
                _pins.Forget(request);
                Interlocked.Increment(ref Counters._timeouts);
                throw new TimeoutException("The RADIUS server holding this conversation did not answer.");
            }
            _pins.Learn(request, answer.Response, pinned);
            return answer;
        }
        var tried = new List<PoolServer>();
        while (_pool.Pick(tried) is { } server)
        {
            var moved = _moved.GetOrAdd(server, _ => new CancellationTokenSource()).Token;
            // A FAILOVER that arrived between the pick and here cancelled the token before this one: pick again.
            if (server.Deferred && HasUsableOtherThan(server, tried))
                continue;
            var result = await AttemptAsync(request, server, _options.Retries, moved, cancellationToken).ConfigureAwait(false);
            if (result is not null)
            {
                _pins.Learn(request, result.Response, server);
                return result;
            }
            if (moved.IsCancellationRequested)
                Interlocked.Increment(ref Counters._resentInFlight);
            else
            {
                Interlocked.Increment(ref Counters._timeouts);
                server.DeadUntil = _time.GetUtcNow() + _options.DeadTime;
            }
            tried.Add(server);
        }
        throw new TimeoutException("No RADIUS server answered.");
    }

    private bool HasUsableOtherThan(PoolServer server, List<PoolServer> tried)
    {
        var now = _time.GetUtcNow();
        foreach (var other in _pool.Servers)
        {
            if (!ReferenceEquals(other, server) && !other.Deferred && other.DeadUntil <= now && !tried.Contains(other))
                return true;
        }
        return false;
    }

    /// <summary>RT = 2 × RTprev + RAND × RTprev, RAND in [-0.1, 0.1], capped at MaxTimeout (RFC 5080 §2.2.1).</summary>
    private TimeSpan NextTimeout(TimeSpan previous)
    {
        var next = previous * (2 + (Random.Shared.NextDouble() * 0.2 - 0.1));
        return next > _options.MaxTimeout ? _options.MaxTimeout * (1 + (Random.Shared.NextDouble() * 0.2 - 0.1)) : next;
    }

    /// <summary>
    /// Sends the request to one server and retransmits it on each timeout, byte for byte — the same
    /// Identifier, the same Request Authenticator (RFC 2865 §2.5, RFC 5080 §2.2.1) — so that the server's
    /// duplicate cache answers a retransmission instead of authenticating (or storing) it again.
    /// Null when every attempt timed out or the server told the client to move.
    /// </summary>
    private async Task<Exchange?> AttemptAsync(RadiusRequest request, PoolServer server, int retries, CancellationToken moved, CancellationToken cancellationToken)
    {
        var target = new IPEndPoint(server.Address, request.Code == RadiusCode.AccountingRequest ? server.AcctPort : server.AuthPort);
        using var lease = await _ports.AcquireAsync(target, cancellationToken).ConfigureAwait(false);
        var authenticator = RandomNumberGenerator.GetBytes(16);
        var buffer = new byte[RadiusPacket.MaxLength];
        int length = request.Encode(buffer, lease.Identifier, authenticator, server.Secret);
        if (request.Code != RadiusCode.AccessRequest && request.Code != RadiusCode.StatusServer)
            buffer.AsSpan(4, 16).CopyTo(authenticator); // Accounting: the computed Request Authenticator
        var pending = new Pending(authenticator, server, new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously));
        var key = (target, lease.Identifier);
        // The lease makes the key ours alone until it is released below.
        lease.Port.Pending[key] = pending;
        try
        {
            var timeout = _options.Timeout;
            for (int attempt = 0; attempt <= retries; attempt++)
            {
                if (moved.IsCancellationRequested)
                    return null;
                if (attempt > 0)
                {
                    Interlocked.Increment(ref Counters._retransmissions);
                    timeout = NextTimeout(timeout);
                }
                Interlocked.Increment(ref Counters._sent);
                try
                {
                    await lease.Port.Socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    Interlocked.Increment(ref Counters._sendErrors);
                }
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(moved, cancellationToken);
                wait.CancelAfter(timeout);
                try
                {
                    return new Exchange(await pending.Done.Task.WaitAsync(wait.Token).ConfigureAwait(false), authenticator, server);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // timed out (retransmit), or the server told us to move (the caller goes elsewhere)
                }
            }
            return null;
        }
        finally
        {
            lease.Port.Pending.TryRemove(key, out _);
        }
    }

    private async Task ReceiveResponsesAsync(SourcePorts.Port port)
    {
        var buffer = new byte[RadiusPacket.MaxLength + 1];
        EndPoint any = new IPEndPoint(_options.LocalAddress.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await port.Socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException)
            {
                continue; // an ICMP error for an earlier send (Linux reports it on the next receive)
            }
            var source = (IPEndPoint)received.RemoteEndPoint;
            var bytes = buffer.AsSpan(0, received.ReceivedBytes);
            if (RadiusPacket.TryParse(bytes, out var packet) != DropReason.None)
                continue;
            if (!port.Pending.TryGetValue((source, packet.Identifier), out var pending))
            {
                Interlocked.Increment(ref Counters._lateAnswers);
                continue;
            }
            // A response must verify against our request (RFC 2865 §3), and so must its Message-Authenticator if present.
            if (!RadiusCrypto.VerifyResponseAuthenticator(packet.Bytes, pending.Authenticator, pending.Server.Secret)
                || (packet.HasAttribute(AttributeTypes.MessageAuthenticator) && !RadiusCrypto.VerifyMessageAuthenticator(packet, pending.Server.Secret, pending.Authenticator)))
            {
                Interlocked.Increment(ref Counters._invalidAnswers);
                continue;
            }
            if (pending.Done.TrySetResult(packet.Bytes.ToArray()))
                Interlocked.Increment(ref Counters._answered);
            else
                Interlocked.Increment(ref Counters._lateAnswers); // a second answer to a retransmission
        }
    }

    private Task ReceiveAdvisoriesAsync() => _advisory!.ReceiveLoopAsync(HandleAdvisoryAsync, _stop.Token);

    private async Task HandleAdvisoryAsync(ReadOnlyMemory<byte> data, IPEndPoint source)
    {
        var server = _pool.Find(source.Address);
        var verdict = _receiver.Check(data.Span, source.Address, _options.LocalAddress,
            id => server is not null && server.Keys.TryGet(id, out var key) ? key : null, out var message, out var error);
        if (verdict == AdvisoryReceiver.Verdict.Reject)
        {
            Interlocked.Increment(ref Counters._rejected);
            AdvisoryRejected?.Invoke(source, error);
            return;
        }
        if (verdict == AdvisoryReceiver.Verdict.Accept)
            Act(server!, message!);
        if (message!.Type is AdvisoryType.Failover or AdvisoryType.Invite)
            await AckAsync(server!, source, message).ConfigureAwait(false);
    }

    private void Act(PoolServer server, AdvisoryMessage message)
    {
        var now = _time.GetUtcNow();
        switch (message.Type)
        {
            case AdvisoryType.Failover:
                Interlocked.Increment(ref Counters._failovers);
                server.Alternates = message.Alternates;
                server.Deferred = true;
                server.ProbeAt = message.RetryAfter > 0 ? now + Jitter(TimeSpan.FromSeconds(message.RetryAfter)) : null;
                // Wake every request waiting on this server: they go to an alternate now, not after T.
                if (_moved.TryRemove(server, out var moved))
                {
                    moved.Cancel();
                    moved.Dispose();
                }
                MovedAway?.Invoke(server, message.Alternates);
                break;
            case AdvisoryType.Invite:
                Interlocked.Increment(ref Counters._invites);
                server.ProbeAt = null;
                var delay = Jitter(_options.ReturnJitter);
                _ = Task.Delay(delay, _time).ContinueWith(_ => server.Deferred = false, TaskScheduler.Default);
                break;
            case AdvisoryType.Refuse:
                Interlocked.Increment(ref Counters._refusals);
                server.ProbeAt = now + Jitter(TimeSpan.FromSeconds(Math.Max((int)message.RetryAfter, 1)));
                break;
        }
    }

    /// <summary>Between half and all of <paramref name="span"/>, at random.</summary>
    private static TimeSpan Jitter(TimeSpan span) => span * (0.5 + Random.Shared.NextDouble() * 0.5);

    private Task AckAsync(PoolServer server, IPEndPoint source, AdvisoryMessage message) =>
        SendAdvisoryAsync(server, source, new AdvisoryMessage
        {
            Type = AdvisoryType.Ack,
            KeyId = server.Keys.CurrentId,
            Sequence = _sequence.Next(),
            Timestamp = _time.GetUtcNow().ToUnixTimeMilliseconds(),
            // For messages from the client, the server field names the client (the sender) and the client field the server.
            Server = _options.LocalAddress,
            Client = source.Address,
            AckedSequence = message.Sequence,
        });

    private async Task SendAdvisoryAsync(PoolServer server, IPEndPoint target, AdvisoryMessage message)
    {
        var buffer = new byte[AdvisoryCodec.MaxLength];
        int length = AdvisoryCodec.Encode(message, server.Keys.Current, buffer);
        Interlocked.Increment(ref Counters._advisoriesSent);
        try
        {
            await _advisory!.SendAsync(buffer.AsMemory(0, length), target).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Deferred servers with a probe time are asked, at that (jittered) time, whether the client may return.</summary>
    private async Task ProbeLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var now = _time.GetUtcNow();
                foreach (var server in _pool.Servers)
                {
                    if (!server.Deferred || server.ProbeAt is not { } at || at > now)
                        continue;
                    server.ProbeAt = null;
                    await SendAdvisoryAsync(server, new IPEndPoint(server.Address, server.AdvisoryPort), new AdvisoryMessage
                    {
                        Type = AdvisoryType.Probe,
                        KeyId = server.Keys.CurrentId,
                        Sequence = _sequence.Next(),
                        Timestamp = now.ToUnixTimeMilliseconds(),
                        Server = _options.LocalAddress,
                        Client = server.Address,
                    }).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Classic servers send no advisories: a dead one is watched with Status-Server and revived when it answers.</summary>
    private async Task WatchDeadServersAsync()
    {
        using var timer = new PeriodicTimer(_options.StatusServerInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                foreach (var server in _pool.Servers)
                {
                    if (server.DeadUntil <= _time.GetUtcNow())
                        continue;
                    var status = await AttemptAsync(new RadiusRequest(RadiusCode.StatusServer), server, 0, CancellationToken.None, _stop.Token).ConfigureAwait(false);
                    if (status is not null)
                        server.DeadUntil = DateTimeOffset.MinValue;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _ports.Dispose();
        _advisory?.Dispose();
        Task[] loops;
        lock (_loops)
            loops = [.. _loops];
        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
        foreach (var cts in _moved.Values)
            cts.Dispose();
    }
}
