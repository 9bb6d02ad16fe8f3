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

    /// <summary>
    /// An Access-Request its server has not answered by the server's response deadline (from measured
    /// round trips, <see cref="RoundTripEstimator"/>) is sent to the best alternate as well; the first
    /// valid answer wins. Accounting is never hedged (two servers would each store it), nor is a round
    /// of an EAP conversation in progress (only its server knows the State).
    /// </summary>
    public bool Hedging { get; set; } = true;
    /// <summary>The response deadline is never shorter than this (nor longer than <see cref="Timeout"/>).</summary>
    public TimeSpan MinDeadline { get; set; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Hedges allowed per request sent, and how many may be saved up.</summary>
    public double HedgeShare { get; set; } = 0.1;
    public double HedgeBurst { get; set; } = 5;
    /// <summary>A server that misses this many deadlines in a row, the last with no answer from it since its request went out, is suspected: new requests go elsewhere at once.</summary>
    public int SuspectAfter { get; set; } = 3;
    /// <summary>A request unanswered at its server's deadline is sent again to that server then, and at doubling intervals (at most the larger of the deadline and 4 × <see cref="MinDeadline"/>) up to <see cref="Timeout"/> (same Identifier and bytes: its duplicate cache answers), not only after T: a lost datagram costs a deadline, not T.</summary>
    public bool RetransmitAtDeadline { get; set; } = true;
    /// <summary>A suspected server is first probed after this (jittered), then twice as far apart each time it stays silent ...</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>... up to this.</summary>
    public TimeSpan MaxProbeInterval { get; set; } = TimeSpan.FromSeconds(8);
    /// <summary>
    /// A server this client would use that has not answered anything for this long is asked with
    /// Status-Server, so that an idle device learns of a dead server before it needs it (zero: never).
    /// </summary>
    public TimeSpan KeepaliveInterval { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Counters of what the client saw (for metrics and tests).</summary>
public sealed class ClientCounters
{
    internal long _sent, _answered, _timeouts, _failovers, _invites, _refusals, _rejected, _resentInFlight, _advisoriesSent,
        _retransmissions, _lateAnswers, _invalidAnswers, _sendErrors, _hedges, _hedgesWon, _missedDeadlines, _suspicions, _keepalives, _peerDowns, _earlyRetransmissions;
    /// <summary>Copies sent again to the same server at its deadline (a lost datagram recovered in a deadline, not T).</summary>
    public long EarlyRetransmissions => Interlocked.Read(ref _earlyRetransmissions);
    /// <summary>PeerDowns acted on: a server of the pool told this client that another one fell silent.</summary>
    public long PeerDowns => Interlocked.Read(ref _peerDowns);
    /// <summary>Access-Requests also sent to an alternate because their server missed its deadline.</summary>
    public long Hedges => Interlocked.Read(ref _hedges);
    /// <summary>Hedged requests the alternate answered first.</summary>
    public long HedgesWon => Interlocked.Read(ref _hedgesWon);
    /// <summary>Requests (and keepalives) not answered by their server's deadline.</summary>
    public long MissedDeadlines => Interlocked.Read(ref _missedDeadlines);
    /// <summary>Times a server was suspected (missed deadlines in a row).</summary>
    public long Suspicions => Interlocked.Read(ref _suspicions);
    /// <summary>Status-Server requests sent to keep an idle server's liveness known.</summary>
    public long Keepalives => Interlocked.Read(ref _keepalives);
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
    private readonly HedgeBudget _budget;

    /// <summary>A request waiting for its answer: when its latest copy went out and how many copies did (Karn's rule).</summary>
    internal sealed class Pending(byte[] authenticator, PoolServer server)
    {
        public byte[] Authenticator { get; } = authenticator;
        public PoolServer Server { get; } = server;
        public TaskCompletionSource<byte[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long SentAt;
        public int Copies;
    }

    public ClientCounters Counters { get; } = new();
    public ServerPool Pool => _pool;

    /// <summary>Conversations (EAP) pinned to the server that began them.</summary>
    public int ConversationsInProgress => _pins.Count;

    /// <summary>Raised for every advisory that is dropped, with the source and the reason.</summary>
    public event Action<IPEndPoint, AdvisoryError>? AdvisoryRejected;

    /// <summary>Raised when a server tells the client to move (server, alternates).</summary>
    public event Action<PoolServer, IReadOnlyList<Alternate>>? MovedAway;

    /// <summary>Raised when a server is suspected: it missed its deadlines in a row, and new requests go elsewhere.</summary>
    public event Action<PoolServer>? Suspected;

    /// <summary>Raised when a suspected server is used again (it invited the client back, or answered Status-Server).</summary>
    public event Action<PoolServer>? Cleared;

    public ForewarnClient(ClientOptions options, IEnumerable<PoolServer> servers, TimeProvider? time = null)
    {
        _options = options;
        _time = time ?? TimeProvider.System;
        _pool = new ServerPool(servers, _time);
        foreach (var server in _pool.Servers)
        {
            server.RoundTrip = new RoundTripEstimator(options.MinDeadline, options.Timeout);
            server.LastAnswerAt = _time.GetTimestamp();
        }
        _budget = new HedgeBudget(options.HedgeShare, options.HedgeBurst);
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
        }
        // Probes for deferred and suspected servers, and keepalives for idle ones.
        _loops.Add(Task.Run(ProbeLoopAsync));
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
            var answer = await AttemptAsync(request, pinned, _options.Retries, CancellationToken.None, CancellationToken.None, cancellationToken).ConfigureAwait(false);
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
        bool stayed = false;
        while (_pool.Pick(tried) is { } server)
        {
            var moved = MovedToken(server);
            // A FAILOVER that arrived between the pick and here cancelled the token before this one: pick again.
            if (server.Deferred && HasUsableOtherThan(server, tried))
                continue;
            var (result, hedge) = await AttemptHedgedAsync(request, server, tried, moved, cancellationToken).ConfigureAwait(false);
            if (result is not null)
            {
                _pins.Learn(request, result.Response, result.Server);
                return result;
            }
            if (moved.IsCancellationRequested)
            {
                Interlocked.Increment(ref Counters._resentInFlight);
                // Told to move with nowhere else to go: once more to the same server rather than failing the request.
                if (hedge is null && !stayed && !HasUsableOtherThan(server, tried))
                {
                    stayed = true;
                    continue;
                }
            }
            else
            {
                Interlocked.Increment(ref Counters._timeouts);
                server.DeadUntil = _time.GetUtcNow() + _options.DeadTime;
            }
            tried.Add(server);
            if (hedge is not null)
                tried.Add(hedge);
        }
        throw new TimeoutException("No RADIUS server answered.");
    }

    private bool HasUsableOtherThan(PoolServer server, List<PoolServer> tried)
    {
        var now = _time.GetUtcNow();
        foreach (var other in _pool.Servers)
        {
            if (!ReferenceEquals(other, server) && other.UsableAt(now) && !tried.Contains(other))
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
    /// One request to <paramref name="server"/>, hedged: if the server has not answered by its response
    /// deadline, the miss counts towards suspicion and an Access-Request also goes to the best alternate
    /// (its own Identifier and authenticator there), within the hedge budget; the first valid answer
    /// wins and the other copy is not retransmitted again (it may still be answered, which keeps the
    /// slow server's round trips measured). Classic T × R stays the outer limit of each copy.
    /// </summary>
    private async Task<(Exchange? Result, PoolServer? Hedge)> AttemptHedgedAsync(RadiusRequest request, PoolServer server, List<PoolServer> tried, CancellationToken moved, CancellationToken cancellationToken)
    {
        _budget.Earn();
        long sentAt = _time.GetTimestamp();
        using var finished = new CancellationTokenSource();
        var primary = AttemptAsync(request, server, _options.Retries, moved, finished.Token, cancellationToken);
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var timer = Task.Delay(server.RoundTrip.Deadline, _time, deadline.Token);
            var first = await Task.WhenAny(primary, timer).ConfigureAwait(false);
            await deadline.CancelAsync().ConfigureAwait(false);
            if (first == primary)
                return (await primary.ConfigureAwait(false), null);
        }
        Missed(server, sentAt);
        if (!_options.Hedging || request.Code != RadiusCode.AccessRequest || moved.IsCancellationRequested)
            return (await primary.ConfigureAwait(false), null);
        var alternate = _pool.Pick([.. tried, server]);
        if (alternate is null || ReferenceEquals(alternate, server) || !alternate.UsableAt(_time.GetUtcNow()) || !_budget.TrySpend())
            return (await primary.ConfigureAwait(false), null);
        Interlocked.Increment(ref Counters._hedges);
        var hedge = AttemptAsync(request, alternate, _options.Retries, MovedToken(alternate), finished.Token, cancellationToken);
        var winner = await Task.WhenAny(primary, hedge).ConfigureAwait(false);
        var result = await winner.ConfigureAwait(false) ?? await (winner == primary ? hedge : primary).ConfigureAwait(false);
        await finished.CancelAsync().ConfigureAwait(false);
        if (result is not null && ReferenceEquals(result.Server, alternate))
            Interlocked.Increment(ref Counters._hedgesWon);
        return (result, alternate);
    }

    private CancellationToken MovedToken(PoolServer server) => _moved.GetOrAdd(server, _ => new CancellationTokenSource()).Token;

    /// <summary>A deadline missed: after <see cref="ClientOptions.SuspectAfter"/> in a row the server is suspected.</summary>
    private void Missed(PoolServer server, long sentAt)
    {
        Interlocked.Increment(ref Counters._missedDeadlines);
        if (Interlocked.Increment(ref server._missed) < _options.SuspectAfter)
            return;
        // A server that has answered anything since this request went out is slow (queueing behind a burst), not silent.
        if (server.LastAnswerAt > sentAt)
            return;
        Suspect(server);
    }

    /// <summary>New requests go elsewhere, and those waiting on it too, until an INVITE or an answered probe clears it.</summary>
    private void Suspect(PoolServer server)
    {
        lock (server)
        {
            if (server.Suspected)
                return;
            server.Suspected = true;
            server.UnansweredProbes = 0;
            server.ProbeAt = _time.GetUtcNow() + Jitter(_options.ProbeInterval);
        }
        Interlocked.Increment(ref Counters._suspicions);
        // Requests waiting on it go elsewhere now, as on a FAILOVER, if there is anywhere else to go.
        if (HasUsableOtherThan(server, []))
            WakeRequestsWaitingOn(server);
        Suspected?.Invoke(server);
    }

    private void WakeRequestsWaitingOn(PoolServer server)
    {
        if (_moved.TryRemove(server, out var moved))
        {
            moved.Cancel();
            moved.Dispose();
        }
    }

    /// <summary>A suspected server is used again: it invited the client back, or (without advisories) answered Status-Server.</summary>
    private void Clear(PoolServer server)
    {
        lock (server)
        {
            if (!server.Suspected)
                return;
            server.Suspected = false;
            server.UnansweredProbes = 0;
            if (!server.Deferred)
                server.ProbeAt = null;
        }
        Cleared?.Invoke(server);
    }

    /// <summary>
    /// Sends the request to one server and retransmits it on each timeout, byte for byte — the same
    /// Identifier, the same Request Authenticator (RFC 2865 §2.5, RFC 5080 §2.2.1) — so that the server's
    /// duplicate cache answers a retransmission instead of authenticating (or storing) it again.
    /// Null when every attempt timed out, the server told the client to move, or (<paramref name="finished"/>)
    /// another copy was answered and the current wait ran out.
    /// </summary>
    private async Task<Exchange?> AttemptAsync(RadiusRequest request, PoolServer server, int retries, CancellationToken moved, CancellationToken finished, CancellationToken cancellationToken, TimeSpan? fixedTimeout = null)
    {
        var target = new IPEndPoint(server.Address, request.Code == RadiusCode.AccountingRequest ? server.AcctPort : server.AuthPort);
        using var lease = await _ports.AcquireAsync(target, cancellationToken).ConfigureAwait(false);
        var authenticator = RandomNumberGenerator.GetBytes(16);
        var buffer = new byte[RadiusPacket.MaxLength];
        int length = request.Encode(buffer, lease.Identifier, authenticator, server.Secret);
        if (request.Code != RadiusCode.AccessRequest && request.Code != RadiusCode.StatusServer)
            buffer.AsSpan(4, 16).CopyTo(authenticator); // Accounting: the computed Request Authenticator
        var pending = new Pending(authenticator, server);
        // One copy of the request, byte for byte (each one counted; Karn's rule reads Copies).
        async Task SendCopyAsync()
        {
            Interlocked.Increment(ref Counters._sent);
            Interlocked.Increment(ref pending.Copies);
            try
            {
                await lease.Port.Socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                Interlocked.Increment(ref Counters._sendErrors);
            }
        }
        var key = (target, lease.Identifier);
        // The lease makes the key ours alone until it is released below.
        lease.Port.Pending[key] = pending;
        try
        {
            var timeout = fixedTimeout ?? _options.Timeout;
            // Early copies at the deadline (a lost datagram costs a deadline, not T), outside the retry count.
            var early = fixedTimeout is null && _options.RetransmitAtDeadline ? server.RoundTrip.RetransmitDeadline : timeout;
            for (int attempt = 0; attempt <= retries; attempt++)
            {
                if (moved.IsCancellationRequested || finished.IsCancellationRequested)
                    return null;
                if (attempt > 0)
                {
                    Interlocked.Increment(ref Counters._retransmissions);
                    if (fixedTimeout is null)
                        timeout = NextTimeout(timeout);
                }
                Volatile.Write(ref pending.SentAt, _time.GetTimestamp());
                await SendCopyAsync().ConfigureAwait(false);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(moved, cancellationToken);
                wait.CancelAfter(timeout);
                // The first transmission's T is split by the deadline, doubling (RFC 6298 §5.5): copies at the deadline, then at
                // doubling intervals no longer than the larger of it and 4 × MinDeadline, up to T. A lost datagram costs a deadline, not T.
                var sentAt = _time.GetTimestamp();
                var longest = early > _options.MinDeadline * 4 ? early : _options.MinDeadline * 4;
                for (var step = early; attempt == 0 && _time.GetElapsedTime(sentAt) + step < timeout; step = step * 2 > longest ? longest : step * 2)
                {
                    using var first = CancellationTokenSource.CreateLinkedTokenSource(wait.Token);
                    first.CancelAfter(step);
                    try
                    {
                        return new Exchange(await pending.Done.Task.WaitAsync(first.Token).ConfigureAwait(false), authenticator, server);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !wait.IsCancellationRequested)
                    {
                        if (moved.IsCancellationRequested || finished.IsCancellationRequested)
                            return null;
                        server.RoundTrip.Backoff();
                        Interlocked.Increment(ref Counters._retransmissions);
                        Interlocked.Increment(ref Counters._earlyRetransmissions);
                        await SendCopyAsync().ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        break;
                    }
                }
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
            // The server is alive: its deadline count starts again, and a first copy's answer is a round trip measured.
            var server = pending.Server;
            Interlocked.Exchange(ref server._missed, 0);
            server.LastAnswerAt = _time.GetTimestamp();
            if (Volatile.Read(ref pending.Copies) == 1)
                server.RoundTrip.Add(_time.GetElapsedTime(Volatile.Read(ref pending.SentAt)));
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
        {
            server!.SpeaksAdvisories = true;
            Act(server, message!);
        }
        if (message!.Type is AdvisoryType.Failover or AdvisoryType.Invite or AdvisoryType.PeerDown)
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
                WakeRequestsWaitingOn(server);
                MovedAway?.Invoke(server, message.Alternates);
                break;
            case AdvisoryType.PeerDown:
                // A server of this pool, signed with its own key, says another one fell silent to its peers: leave
                // that one as if it had missed its deadlines. It can only make the client prefer the rest of its
                // own pool, and only the silent server's INVITE (or answer) brings the client back (docs/protocol.md §6b).
                if (message.Subject is { } subjectAddress && _pool.Find(subjectAddress) is { } subject && !ReferenceEquals(subject, server))
                {
                    Interlocked.Increment(ref Counters._peerDowns);
                    Suspect(subject);
                }
                break;
            case AdvisoryType.Invite:
                Interlocked.Increment(ref Counters._invites);
                server.ProbeAt = null;
                var delay = Jitter(_options.ReturnJitter);
                _ = Task.Delay(delay, _time).ContinueWith(_ =>
                {
                    server.Deferred = false;
                    Clear(server);
                }, TaskScheduler.Default);
                break;
            case AdvisoryType.Refuse:
                Interlocked.Increment(ref Counters._refusals);
                server.UnansweredProbes = 0;
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

    /// <summary>
    /// Every 200 ms: a deferred server with a probe time is asked (PROBE) whether the client may return;
    /// a suspected server is probed too, further apart each time it stays silent — with PROBE when it
    /// speaks advisories (an INVITE in answer is admission by its connection threshold), else with
    /// Status-Server; a server this client would use that has been silent for
    /// <see cref="ClientOptions.KeepaliveInterval"/> is asked with Status-Server.
    /// </summary>
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
                    if ((server.Deferred || server.Suspected) && server.ProbeAt is { } at && at <= now)
                    {
                        bool advisories = _advisory is not null && server.AdvisoryPort != 0;
                        if (server.Suspected)
                        {
                            // The next probe, unless this one is answered (a REFUSE sets its own time, an INVITE clears).
                            var spacing = _options.ProbeInterval * Math.Pow(2, Math.Min(server.UnansweredProbes++, 16));
                            server.ProbeAt = now + Jitter(spacing < _options.MaxProbeInterval ? spacing : _options.MaxProbeInterval);
                            // A server that has never sent this client an advisory may not speak them (FreeRADIUS, say): Status-Server too.
                            if (!server.SpeaksAdvisories)
                                _ = StatusCheckAsync(server, advisories);
                            if (!advisories)
                                continue;
                        }
                        else
                        {
                            server.ProbeAt = null;
                        }
                        if (advisories)
                            await ProbeAsync(server, now).ConfigureAwait(false);
                    }
                    else if (KeepaliveDue(server, now))
                    {
                        _ = KeepaliveAsync(server);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private Task ProbeAsync(PoolServer server, DateTimeOffset now) =>
        SendAdvisoryAsync(server, new IPEndPoint(server.Address, server.AdvisoryPort), new AdvisoryMessage
        {
            Type = AdvisoryType.Probe,
            KeyId = server.Keys.CurrentId,
            Sequence = _sequence.Next(),
            Timestamp = now.ToUnixTimeMilliseconds(),
            Server = _options.LocalAddress,
            Client = server.Address,
        });

    /// <summary>
    /// A suspected server that speaks no advisories is used again as soon as it answers Status-Server.
    /// When a PROBE went with it, the answer counts only if no advisory follows within a second: a
    /// Forewarn server answers the PROBE (INVITE or REFUSE), and its admission decides.
    /// </summary>
    private async Task StatusCheckAsync(PoolServer server, bool probed)
    {
        try
        {
            if (await AttemptAsync(new RadiusRequest(RadiusCode.StatusServer), server, 0, CancellationToken.None, CancellationToken.None, _stop.Token, _options.Timeout).ConfigureAwait(false) is null)
                return;
            if (probed)
                await Task.Delay(TimeSpan.FromSeconds(1), _time, _stop.Token).ConfigureAwait(false);
            if (!server.SpeaksAdvisories)
                Clear(server);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>A usable server of the best priority this client has, silent for the keepalive interval, and not being asked already.</summary>
    private bool KeepaliveDue(PoolServer server, DateTimeOffset now)
    {
        if (_options.KeepaliveInterval <= TimeSpan.Zero || !server.UsableAt(now) || server.KeepaliveInFlight
            || _time.GetElapsedTime(server.LastAnswerAt) < _options.KeepaliveInterval)
            return false;
        foreach (var other in _pool.Servers)
        {
            if (other.Priority < server.Priority && other.UsableAt(now))
                return false;
        }
        return true;
    }

    /// <summary>Status-Server to an idle server, each copy timed by its deadline; unanswered ones count as missed, and suspect it as requests would.</summary>
    private async Task KeepaliveAsync(PoolServer server)
    {
        server.KeepaliveInFlight = true;
        try
        {
            for (int i = 0; i < Math.Max(1, _options.SuspectAfter) && !server.Suspected; i++)
            {
                Interlocked.Increment(ref Counters._keepalives);
                long sentAt = _time.GetTimestamp();
                if (await AttemptAsync(new RadiusRequest(RadiusCode.StatusServer), server, 0, CancellationToken.None, CancellationToken.None, _stop.Token, server.RoundTrip.Deadline).ConfigureAwait(false) is not null)
                    return;
                Missed(server, sentAt);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            server.KeepaliveInFlight = false;
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
                    var status = await AttemptAsync(new RadiusRequest(RadiusCode.StatusServer), server, 0, CancellationToken.None, CancellationToken.None, _stop.Token).ConfigureAwait(false);
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
