using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Forewarn.Client;
using Forewarn.Client.Carriers;
using Forewarn.Core.Clients;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Core.Store;
using Forewarn.Protocol.Advisory;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Advisories;

/// <summary>What the advisory side has done, for status and tests.</summary>
public sealed class AdvisoryCounters
{
    internal long _failovers, _invites, _refusals, _reminders, _acks, _retransmissions, _givenUp, _rejected, _probes, _paced, _peerDowns, _held;
    /// <summary>PeerDowns sent: clients of a silent peer told to leave it.</summary>
    public long PeerDowns => Interlocked.Read(ref _peerDowns);
    /// <summary>Probes refused only because admissions were at their pace (the thresholds and the evidence would have let them in).</summary>
    public long Paced => Interlocked.Read(ref _paced);
    /// <summary>Returns (an invitation, or a probe the zone admits) held back by the last seconds' evidence: its absence (a probe's load at most), slow answers, or busy workers.</summary>
    public long Held => Interlocked.Read(ref _held);
    public long Failovers => Interlocked.Read(ref _failovers);
    public long Invites => Interlocked.Read(ref _invites);
    public long Refusals => Interlocked.Read(ref _refusals);
    public long Reminders => Interlocked.Read(ref _reminders);
    public long Acks => Interlocked.Read(ref _acks);
    public long Retransmissions => Interlocked.Read(ref _retransmissions);
    public long GivenUp => Interlocked.Read(ref _givenUp);
    public long Rejected => Interlocked.Read(ref _rejected);
    public long Probes => Interlocked.Read(ref _probes);
}

/// <summary>
/// The server side of the advisory protocol: on a zone change it defers the chosen clients with a
/// signed FAILOVER naming healthy peers, retransmits until ACKed, reminds deferred clients that still
/// send, invites them back in staggered batches once their class admits returning clients, answers
/// Probes with INVITE or REFUSE, and shares its health with its peers.
/// </summary>
public sealed partial class AdvisoryService : IHostedService, IAsyncDisposable
{
    private readonly AdvisoryOptions _options;
    private readonly HealthMonitor _monitor;
    private readonly ClientRegistry _registry;
    private readonly ClientDirectory _directory;
    private readonly RadiusServer _radius;
    private readonly TimeProvider _time;
    private readonly AlertHub _alerts;
    private readonly ILogger _logger;
    private readonly AdvisorySequence _sequence;
    private readonly AdvisoryReceiver _receiver;
    private readonly Channel<ZoneChange> _changes = Channel.CreateUnbounded<ZoneChange>();
    private readonly ConcurrentDictionary<ulong, Outstanding> _outstanding = new();
    private readonly ConcurrentDictionary<IPAddress, PeerHealth> _peers = new();
    private readonly ConcurrentDictionary<string, Task> _inviteLoops = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private volatile AdvisoryKeys? _peerKeys;
    private readonly AdmissionGate _admission;
    // The acknowledgements' round trips, for the retransmission timeout (RFC 6298, as a client times a server).
    private readonly RoundTripEstimator _ackTimes;
    // Since when acknowledgements have waited unread in the advisory socket (0: they have not).
    private long _backlogSince;
    private Forewarn.Client.Carriers.IAdvisoryCarrier? _carrier;
    private IPAddress _self = IPAddress.Loopback;
    // On the wildcard address (with no Advisory:Address), each client is told the address it sends to.
    private bool _wildcard;
    private LocalAddresses? _ownAddresses;
    private long _lastRejectAlert;

    private sealed record Outstanding(ActiveClient? Client, AdvisoryType Type, byte[] Bytes, IPEndPoint Target, IPAddress From, long FirstSent)
    {
        public int Attempts { get; set; } = 1;
        /// <summary>When the last copy went out.</summary>
        public long LastSent { get; set; }
    }

    public sealed record PeerHealth(IPAddress Address, int AuthPort, double Score, Zone Zone, long At, int TacacsPort = 0);

    public AdvisoryCounters Counters { get; } = new();
    private readonly IServiceProvider _services;

    public AdvisoryService(AdvisoryOptions options, HealthMonitor monitor, ClientRegistry registry, ClientDirectory directory, RadiusServer radius,
        TimeProvider time, AlertHub alerts, ILogger<AdvisoryService> logger, Microsoft.Extensions.Options.IOptions<ForewarnOptions> server, IServiceProvider services)
    {
        _services = services;
        _options = options;
        _monitor = monitor;
        _registry = registry;
        _directory = directory;
        _radius = radius;
        _time = time;
        _alerts = alerts;
        _logger = logger;
        _sequence = new AdvisorySequence(options.Enabled && server.Value.DataDirectory.Length > 0
            ? BootEpoch.Next(DataDirectory.Ensure(server.Value.DataDirectory), time)
            : (ulong)time.GetUtcNow().ToUnixTimeSeconds());
        _receiver = new AdvisoryReceiver(time, AdvisoryReceiver.DefaultWindow);
        _admission = new AdmissionGate(time, options.InviteBatchSize, options.InviteSpacingMs, options.RefuseRetryAfterSeconds);
        _budget = new LoadBudget(options.BudgetBackoff, options.BudgetGrowthPerSecond);
        _ackTimes = new RoundTripEstimator(TimeSpan.FromMilliseconds(options.RetransmitMs), MaxRetransmitTimeout);
        if (!string.IsNullOrEmpty(options.PeerSecret))
            _peerKeys = AdvisoryKeys.FromSharedSecret(Encoding.UTF8.GetBytes(options.PeerSecret));
        InitialisePeers();
    }

    /// <summary>The bound advisory endpoint (port resolved when configured as 0).</summary>
    public IPEndPoint? Endpoint => _carrier?.LocalEndPoint;

    public IReadOnlyCollection<PeerHealth> Peers => [.. _peers.Values];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
            return Task.CompletedTask;
        ResolveEvidence();
        var listen = _radius.Endpoints[0].Endpoint.Address;
        _self = _options.Address is { } configured ? IPAddress.Parse(configured) : listen;
        _wildcard = _options.Address is null && (listen.Equals(IPAddress.Any) || listen.Equals(IPAddress.IPv6Any));
        if (_wildcard)
        {
            _ownAddresses = new LocalAddresses(_time);
            if (_options.Peers.Count > 0)
                throw new StartupException("the server listens on the wildcard address and has advisory peers: set Forewarn:Advisory:Address to the address the peers know it by.");
            if (!string.Equals(_options.Carrier, "udp", StringComparison.OrdinalIgnoreCase))
                throw new StartupException($"the {_options.Carrier} advisory carrier needs one address: set Forewarn:Advisory:Address, or listen on one address.");
        }
        var bind = new IPEndPoint(_options.Address is not null && !_wildcard ? _self : listen, _options.Port);
        try
        {
            _carrier = Forewarn.Client.Carriers.AdvisoryCarriers.Open(_options.Carrier, bind);
        }
        catch (SocketException e)
        {
            throw new StartupException(e.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? $"cannot open the advisory socket on {_options.Carrier} {bind}: the port is in use by another program (on that address or on the wildcard address); choose another with Forewarn:Advisory:Port, or 0 for any."
                : $"cannot open the advisory socket on {_options.Carrier} {bind}: {e.Message}.");
        }
        _monitor.ZoneChanged += OnZoneChanged;
        _registry.DeferredClientSeen += OnDeferredClientSeen;
        _loops.Add(Task.Run(ReceiveLoopAsync, CancellationToken.None));
        _loops.Add(Task.Run(ChangeLoopAsync, CancellationToken.None));
        _loops.Add(Task.Run(HousekeepingLoopAsync, CancellationToken.None));
        if (_services.GetService(typeof(IForewarnStore)) is IClusterMembership cluster && _options.ClusterMembership)
        {
            if (_wildcard)
                LogClusterNeedsAddress(_logger);
            else
                _loops.Add(Task.Run(() => MembershipLoopAsync(cluster), CancellationToken.None));
        }
        LogListening(_logger, _carrier.LocalEndPoint, _options.Carrier);
        return Task.CompletedTask;
    }

    private void OnZoneChanged(ZoneChange change) => _changes.Writer.TryWrite(change);

    private async Task ChangeLoopAsync()
    {
        try
        {
            await foreach (var change in _changes.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (change.To == Zone.Defer)
                    await DeferAsync(change).ConfigureAwait(false);
                else if (change.To == Zone.Accept)
                    StartInvitations(change.Class);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private bool InClass(ActiveClient client, string className) =>
        (client.Client.Class ?? HealthMonitor.DefaultClass) == className || (className == HealthMonitor.DefaultClass && _monitor.ZoneOf(client.Client.Class).Class == className);

    private async Task DeferAsync(ZoneChange change)
    {
        var zone = _monitor.ZoneOf(change.Class);
        // Caused by load, the budget learns what the server carried when it broke; "enough" sheds what is above it.
        // Where the workers already bind under "enough" (the episode began in Hold), the quarter tick sheds: not twice.
        if (ByLoad(change.Cause) && _workersBound && _options.Select.Strategy == "enough" && _loadDeferred.ContainsKey(change.Class))
            return;
        double shed = ByLoad(change.Cause) ? LearnBreak(change) : 1;
        var chosen = DeferralPlanner.Choose(_registry.All.Where(c => InClass(c, change.Class)), _options.Select, change, shed);
        var reason = change.Cause switch
        {
            ZoneCause.Forecast => AdvisoryReason.Forecast,
            ZoneCause.MandatoryService => AdvisoryReason.ServiceDown,
            ZoneCause.DependentService => AdvisoryReason.DependentServiceDown,
            ZoneCause.Drain => AdvisoryReason.Maintenance,
            _ => AdvisoryReason.Overload,
        };
        long planned = _time.GetTimestamp();
        // One list of alternates for the whole burst: a thousand FAILOVERs go out in tens of milliseconds.
        var alternates = Alternates();
        foreach (var client in chosen)
            await DeferClientAsync(client, reason, alternates).ConfigureAwait(false);
        // Where the time between the zone change and the last FAILOVER went (the wall clocks of the change and of now).
        LogDeferring(_logger, chosen.Count, change.Class, change.Cause, (_time.GetUtcNow() - change.At).TotalMilliseconds,
            _time.GetElapsedTime(planned).TotalMilliseconds);
    }

    private async Task DeferClientAsync(ActiveClient client, AdvisoryReason reason, IReadOnlyList<Alternate>? alternates = null)
    {
        if (client.State != ClientState.Deferred)
            client.RateWhenDeferred = Math.Max(client.SmoothedRate, client.Rate);
        client.State = ClientState.Deferred;
        client.StateSince = _time.GetTimestamp();
        client.LastReminder = client.StateSince;
        Interlocked.Increment(ref Counters._failovers);
        await SendAsync(client, Build(AdvisoryType.Failover, client, reason, alternates: alternates), reliable: true).ConfigureAwait(false);
    }

    /// <summary>This server's address as <paramref name="client"/> knows it; <paramref name="asked"/> when the client named it in a message of its own.</summary>
    private IPAddress SelfFor(ActiveClient client, IPAddress? asked = null) =>
        _wildcard ? asked ?? client.LocalAddress ?? _self : _self;

    private AdvisoryMessage Build(AdvisoryType type, ActiveClient client, AdvisoryReason reason = AdvisoryReason.None, ushort retryAfter = 0, IPAddress? asked = null,
        IReadOnlyList<Alternate>? alternates = null) => new()
    {
        Type = type,
        KeyId = client.Client.AdvisoryKeysFor(client.Address).CurrentId,
        Reason = reason,
        Sequence = _sequence.Next(),
        Timestamp = _time.GetUtcNow().ToUnixTimeMilliseconds(),
        RetryAfter = type == AdvisoryType.Failover ? (ushort)_options.RetryAfterSeconds : retryAfter,
        Server = SelfFor(client, asked),
        Client = client.Address,
        Alternates = type == AdvisoryType.Failover ? alternates ?? Alternates() : [],
        Score = (ushort)Math.Round(_monitor.Current.Score * 1000),
        ServicePort = type == AdvisoryType.Invite ? (ushort)_radius.EndpointOf(PortKind.Authentication).Port : (ushort)0,
        TacacsPort = type == AdvisoryType.Invite ? OwnTacacsPort() : (ushort)0,
    };

    /// <summary>This server's plain TACACS+ port, named in PeerHealth and Invite (0 when TACACS+ is off); resolved late, as the listener starts after this service is built.</summary>
    private ushort OwnTacacsPort() => (ushort)((_services.GetService(typeof(Tacacs.TacacsServer)) as Tacacs.TacacsServer)?.EndpointOf(tls: false)?.Port ?? 0);

    /// <summary>Peers whose shared health is fresh and in the Accept zone, best score first. A peer that is itself deferring is never named.</summary>
    public IReadOnlyList<Alternate> Alternates()
    {
        long now = _time.GetTimestamp();
        return [.. _peers.Values
            .Where(p => p.Zone == Zone.Accept && _time.GetElapsedTime(p.At, now).TotalMilliseconds <= _options.PeerHealthStaleMs)
            .OrderByDescending(p => p.Score)
            .Select(p => new Alternate(p.Address, (ushort)p.AuthPort, (byte)Math.Clamp(Math.Round(p.Score * 255), 0, 255), (ushort)p.TacacsPort))];
    }

    private IPEndPoint TargetOf(ActiveClient client) =>
        new(client.Address, client.Client.Record.AdvisoryPort != 0 ? client.Client.Record.AdvisoryPort : _options.ClientPort);

    private async Task SendAsync(ActiveClient client, AdvisoryMessage message, bool reliable, IPEndPoint? target = null)
    {
        var buffer = new byte[AdvisoryCodec.MaxLength];
        int length = AdvisoryCodec.Encode(message, client.Client.AdvisoryKeysFor(client.Address).Current, buffer);
        var bytes = buffer[..length];
        target ??= TargetOf(client);
        if (reliable)
        {
            long now = _time.GetTimestamp();
            _outstanding[message.Sequence] = new Outstanding(client, message.Type, bytes, target, message.Server, now)
            {
                LastSent = now,
            };
        }
        await SendRawAsync(bytes, target, message.Server).ConfigureAwait(false);
    }

    private async Task SendRawAsync(byte[] bytes, IPEndPoint target, IPAddress from)
    {
        try
        {
            await _carrier!.SendAsync(bytes, target, from).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Invites the deferred clients of a class back in batches, pausing whenever the class does not admit returning clients.</summary>
    private void StartInvitations(string className)
    {
        _inviteLoops.AddOrUpdate(className, c => Task.Run(() => InviteLoopAsync(c)),
            (c, existing) => existing.IsCompleted ? Task.Run(() => InviteLoopAsync(c)) : existing);
    }

    private async Task InviteLoopAsync(string className)
    {
        var zone = _monitor.ZoneOf(className);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var waiting = _registry.All.Where(c => c.State == ClientState.Deferred && InClass(c, className)).ToList();
                if (waiting.Count == 0 || zone.Current == Zone.Defer)
                    return;
                if (!zone.AdmitsReturning || zone.Current != Zone.Accept)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200), _time, _stop.Token).ConfigureAwait(false);
                    continue;
                }
                // Oldest first, a batch at a time, and only as many as the load budget takes.
                double carried = CarriedRate(_time.GetTimestamp());
                var batch = new List<ActiveClient>();
                lock (_returnLock)
                {
                    foreach (var candidate in waiting.OrderBy(c => c.StateSince).Take(_options.InviteBatchSize))
                    {
                        if (!MayReturn(candidate, carried, zone.Thresholds, out bool probe))
                            break;
                        Returned(candidate, carried, probe);
                        carried += candidate.RateWhenDeferred;
                        batch.Add(candidate);
                    }
                }
                if (batch.Count == 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200), _time, _stop.Token).ConfigureAwait(false);
                    continue;
                }
                foreach (var client in batch)
                {
                    client.State = ClientState.Invited;
                    client.StateSince = _time.GetTimestamp();
                    Interlocked.Increment(ref Counters._invites);
                    await SendAsync(client, Build(AdvisoryType.Invite, client), reliable: true).ConfigureAwait(false);
                }
                await Task.Delay(TimeSpan.FromMilliseconds(_options.InviteSpacingMs), _time, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>A deferred client still sending is served (nothing is lost) and reminded, at most every ReminderSeconds.</summary>
    private void OnDeferredClientSeen(ActiveClient client, long receivedAt)
    {
        // A request received within ReminderSeconds of the deferral was on its way (or queued here) before
        // the client could act on the FAILOVER: no reason to remind it.
        if (_time.GetElapsedTime(client.StateSince, receivedAt).TotalSeconds < _options.ReminderSeconds)
            return;
        // Once the class admits returning clients again, a request from a deferred client is one that
        // waited in the queue (or its invitation is on the way): reminding it to leave would undo the return.
        var zone = _monitor.ZoneOf(client.Client.Class);
        if (zone.Current == Zone.Accept && zone.AdmitsReturning)
            return;
        long now = _time.GetTimestamp();
        if (_time.GetElapsedTime(client.LastReminder, now).TotalSeconds < _options.ReminderSeconds)
            return;
        client.LastReminder = now;
        Interlocked.Increment(ref Counters._reminders);
        _ = SendAsync(client, Build(AdvisoryType.Failover, client, AdvisoryReason.Reminder), reliable: false);
    }

    private Task ReceiveLoopAsync() => _carrier!.ReceiveLoopAsync(async (data, source) =>
    {
        try
        {
            await HandleAsync(data, source).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogHandleFailed(_logger, source, e);
        }
    }, _stop.Token);

    private async Task HandleAsync(ReadOnlyMemory<byte> data, IPEndPoint source)
    {
        bool fromPeer = _peerList.Any(p => IPAddress.Parse(p.Address).Equals(source.Address));
        var client = fromPeer ? null : (_registry.Find(source.Address)?.Client ?? _directory.Find(source.Address));
        Func<byte, byte[]?> keyFor = id => fromPeer
            ? (_peerKeys is not null && _peerKeys.TryGet(id, out var peerKey) ? peerKey : null)
            : (client is not null && client.AdvisoryKeysFor(source.Address).TryGet(id, out var key) ? key : null);
        var verdict = _wildcard
            ? _receiver.Check(data.Span, source.Address, _ownAddresses!.Contains, keyFor, out var message, out var error)
            : _receiver.Check(data.Span, source.Address, _self, keyFor, out message, out error);
        if (verdict == AdvisoryReceiver.Verdict.Reject)
        {
            long rejected = Interlocked.Increment(ref Counters._rejected);
            // One alert per ten seconds at most: a flood of forgeries must not become a flood of alerts.
            long now = _time.GetTimestamp();
            if (_lastRejectAlert == 0 || _time.GetElapsedTime(_lastRejectAlert, now).TotalSeconds >= 10)
            {
                _lastRejectAlert = now;
                _alerts.Raise(AlertSeverity.Warning, "advisory", $"dropped an advisory from {source}: {error} ({rejected} dropped in all)");
            }
            return;
        }
        if (verdict == AdvisoryReceiver.Verdict.Retransmission)
            return;
        switch (message!.Type)
        {
            case AdvisoryType.Ack:
                Acknowledged(message.AckedSequence);
                break;
            case AdvisoryType.Probe when client is not null:
                await ProbedAsync(_registry.Heard(source.Address, client), source, message.Client).ConfigureAwait(false);
                break;
            case AdvisoryType.PeerHealth when fromPeer:
                var peer = _peerList.First(p => IPAddress.Parse(p.Address).Equals(source.Address));
                _peers[source.Address] = new PeerHealth(source.Address, message.ServicePort != 0 ? message.ServicePort : peer.AuthPort,
                    message.Score / 1000.0, (Zone)message.Zone, _time.GetTimestamp(), message.TacacsPort);
                LearnPeerClients(source.Address, message.Clients);
                break;
        }
    }

    private void Acknowledged(ulong sequence)
    {
        if (!_outstanding.TryRemove(sequence, out var outstanding))
            return;
        Interlocked.Increment(ref Counters._acks);
        // Karn's rule: only an advisory acknowledged on its first copy times the round trip.
        if (outstanding.Attempts == 1)
            _ackTimes.Add(_time.GetElapsedTime(outstanding.FirstSent));
        if (outstanding.Client is { } client)
        {
            double rtt = _time.GetElapsedTime(outstanding.FirstSent).TotalMilliseconds / outstanding.Attempts;
            client.RoundTripMs = double.IsNaN(client.RoundTripMs) ? rtt : 0.8 * client.RoundTripMs + 0.2 * rtt;
            client.Acknowledged++;
            if (outstanding.Type == AdvisoryType.Invite && client.State == ClientState.Invited)
            {
                client.State = ClientState.Active;
                client.StateSince = _time.GetTimestamp();
                // Its long-run rate decayed while it was away: what it brings back, until its requests show it.
                client.LongRate = client.RateWhenDeferred;
            }
        }
    }

    /// <summary>
    /// A client asks to (re)connect: admitted by the returning or new-client threshold, and at the
    /// admission pace (<see cref="AdmissionGate"/>), else refused with Retry-After.
    /// </summary>
    private async Task ProbedAsync(ActiveClient client, IPEndPoint source, IPAddress asked)
    {
        Interlocked.Increment(ref Counters._probes);
        var zone = _monitor.ZoneOf(client.Client.Class);
        bool returning = client.State == ClientState.Deferred;
        bool admitted = zone.Current != Zone.Defer && (returning ? zone.AdmitsReturning : zone.AdmitsNew);
        int retryAfter = _options.RefuseRetryAfterSeconds;
        // The load carried is summed over every client: only for a returning client the zone would admit.
        if (admitted)
        {
            double carried = returning ? CarriedRate(_time.GetTimestamp()) : 0;
            lock (_returnLock)
            {
                bool probe = false;
                if (returning && !MayReturn(client, carried, zone.Thresholds, out probe))
                    admitted = false;
                else if (!_admission.TryAdmit(out retryAfter))
                {
                    admitted = false;
                    Interlocked.Increment(ref Counters._paced);
                }
                else if (returning)
                    Returned(client, carried, probe);
            }
        }
        if (admitted)
        {
            client.State = ClientState.Invited;
            client.StateSince = _time.GetTimestamp();
            Interlocked.Increment(ref Counters._invites);
            await SendAsync(client, Build(AdvisoryType.Invite, client, asked: asked), reliable: true, target: source).ConfigureAwait(false);
        }
        else
        {
            client.State = returning ? ClientState.Deferred : client.State;
            Interlocked.Increment(ref Counters._refusals);
            await SendAsync(client, Build(AdvisoryType.Refuse, client, AdvisoryReason.ConnectionRefused, (ushort)retryAfter, asked),
                reliable: false, target: source).ConfigureAwait(false);
        }
    }

    /// <summary>The longest retransmission timeout: 2 s, or the configured first timeouts if longer.</summary>
    private TimeSpan MaxRetransmitTimeout => TimeSpan.FromMilliseconds(Math.Max(Math.Max(_options.RetransmitMs, _options.FirstRetransmitMs), 2000));

    /// <summary>
    /// The first retransmission's timeout, doubling with each copy: FirstRetransmitMs (1 s, RFC 6298 §2.1)
    /// until an acknowledgement has been timed, then SRTT + 4 × RTTVAR of the acknowledgements (floored at
    /// RetransmitMs, capped at 2 s, and backed off up to four times after a retransmission until an
    /// acknowledgement is timed again), so that clients slow to acknowledge under load (a burst of a
    /// thousand FAILOVERs on a busy machine) are not sent copies they would acknowledge anyway.
    /// </summary>
    private TimeSpan RetransmitTimeout() => _ackTimes.Samples == 0 ? TimeSpan.FromMilliseconds(_options.FirstRetransmitMs) : _ackTimes.RetransmitDeadline;

    /// <summary>Every 50 ms: retransmissions with backoff, silent peers spoken for; every PeerHealthIntervalMs: peer health; every second: request rates, grace-time deferrals.</summary>
    private async Task HousekeepingLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(50), _time);
        long lastSecond = 0, lastHealth = 0, lastQuarter = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                long now = _time.GetTimestamp();
                // Acknowledgements still waiting in this server's own socket are not lost: while it holds
                // any, retransmitting would time this server's backlog (a burst of a thousand ACKs read
                // behind the FAILOVERs being sent), not the network.
                // For at most the longest timeout (2 s), though: a socket that never empties (a stream of
                // probes, junk, or on the ICMP carrier every echo the host receives) must not stop
                // retransmission for good. One timeout was not enough: reading a thousand ACKs behind a
                // burst took longer on this 2-core machine (338 spurious copies in one run).
                double timeout = RetransmitTimeout().TotalSeconds * _time.TimestampFrequency;
                double longest = MaxRetransmitTimeout.TotalSeconds * _time.TimestampFrequency;
                if (_carrier is not { Waiting: > 0 })
                    _backlogSince = 0;
                else if (_backlogSince == 0)
                    _backlogSince = now;
                bool backlog = _backlogSince != 0 && _time.GetElapsedTime(_backlogSince, now) < MaxRetransmitTimeout;
                foreach (var (sequence, outstanding) in _outstanding)
                {
                    // Doubling with each copy, each wait at most the longest timeout: 1, 2, 2, 2, 2 s from the
                    // first timeout of 1 s, given up 9 s after the first copy.
                    if (now - outstanding.LastSent < Math.Min(timeout * Math.Pow(2, outstanding.Attempts - 1), longest))
                        continue;
                    if (outstanding.Attempts < _options.MaxAttempts && backlog)
                        continue;
                    if (outstanding.Attempts >= _options.MaxAttempts)
                    {
                        _outstanding.TryRemove(sequence, out _);
                        Interlocked.Increment(ref Counters._givenUp);
                        if (outstanding.Client is { } client)
                        {
                            client.Unacknowledged++;
                            // An invitation never acknowledged (the NAS is gone, or cannot hear us): it waits no more.
                            // Released, it is served whenever it sends, and forgotten once idle like any client.
                            if (outstanding.Type == AdvisoryType.Invite && client.State == ClientState.Invited)
                            {
                                client.State = ClientState.Active;
                                client.StateSince = now;
                            }
                        }
                        LogGaveUp(_logger, outstanding.Type, outstanding.Target, outstanding.Attempts);
                        continue;
                    }
                    outstanding.Attempts++;
                    outstanding.LastSent = now;
                    // Karn's rule, second half: the timeout backs off until an ACK is timed again, or a
                    // round trip that grew past it could never be measured.
                    _ackTimes.Backoff();
                    Interlocked.Increment(ref Counters._retransmissions);
                    await SendRawAsync(outstanding.Bytes, outstanding.Target, outstanding.From).ConfigureAwait(false);
                }
                if (_time.GetElapsedTime(lastHealth, now).TotalMilliseconds >= _options.PeerHealthIntervalMs)
                {
                    lastHealth = now;
                    await SharePeerHealthAsync().ConfigureAwait(false);
                }
                await SpeakForSilentPeersAsync().ConfigureAwait(false);
                if (_time.GetElapsedTime(lastQuarter, now).TotalSeconds >= 0.25)
                {
                    lastQuarter = now;
                    await QuarterTickAsync().ConfigureAwait(false);
                }
                if (_time.GetElapsedTime(lastSecond, now).TotalSeconds >= 1)
                {
                    lastSecond = now;
                    _registry.Refresh(TimeSpan.FromMinutes(10));
                    ForgetStalePeerClients();
                    await GraceDeferralsAsync().ConfigureAwait(false);
                    await BudgetTickAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SharePeerHealthAsync()
    {
        if (_peerKeys is not { } peerKeys || _peerList.Length == 0)
            return;
        var snapshot = _monitor.Current;
        var clients = NextClientSlice();
        foreach (var peer in _peerList)
        {
            var address = IPAddress.Parse(peer.Address);
            var message = new AdvisoryMessage
            {
                Type = AdvisoryType.PeerHealth,
                KeyId = peerKeys.CurrentId,
                Sequence = _sequence.Next(),
                Timestamp = _time.GetUtcNow().ToUnixTimeMilliseconds(),
                Server = _self,
                Client = address,
                Score = (ushort)Math.Round(snapshot.Score * 1000),
                Zone = (byte)snapshot.Zone,
                ServicePort = (ushort)_radius.EndpointOf(PortKind.Authentication).Port,
                TacacsPort = OwnTacacsPort(),
                Clients = clients,
            };
            var buffer = new byte[AdvisoryCodec.MaxLength];
            int length = AdvisoryCodec.Encode(message, peerKeys.Current, buffer);
            await SendRawAsync(buffer[..length], new IPEndPoint(address, peer.AdvisoryPort), _self).ConfigureAwait(false);
        }
    }

    /// <summary>In the centre zone of a "connection below failover" layout, clients are admitted, then deferred after the grace time.</summary>
    private async Task GraceDeferralsAsync()
    {
        long now = _time.GetTimestamp();
        foreach (var client in _registry.All)
        {
            if (client.State != ClientState.Active || _monitor.ZoneOf(client.Client.Class).Current != Zone.AdmitThenDefer)
                continue;
            if (_time.GetElapsedTime(client.StateSince, now).TotalSeconds >= _options.GraceSeconds)
                await DeferClientAsync(client, AdvisoryReason.Overload).ConfigureAwait(false);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _monitor.ZoneChanged -= OnZoneChanged;
        _registry.DeferredClientSeen -= OnDeferredClientSeen;
        await _stop.CancelAsync().ConfigureAwait(false);
        _carrier?.Dispose();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        _carrier?.Dispose();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Advisories on {Endpoint} over {Carrier}")]
    private static partial void LogListening(ILogger logger, EndPoint endpoint, string carrier);

    [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "Deferred {Count} clients of class {Class} ({Cause}): the last FAILOVER sent {AfterChangeMs:0.#} ms after the zone change, sending took {SendingMs:0.#} ms")]
    private static partial void LogDeferring(ILogger logger, int count, string @class, ZoneCause cause, double afterChangeMs, double sendingMs);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "Gave up on {Type} to {Target} after {Attempts} attempts")]
    private static partial void LogGaveUp(ILogger logger, AdvisoryType type, IPEndPoint target, int attempts);

    [LoggerMessage(EventId = 603, Level = LogLevel.Error, Message = "Advisory from {Source} failed")]
    private static partial void LogHandleFailed(ILogger logger, IPEndPoint source, Exception exception);
}
