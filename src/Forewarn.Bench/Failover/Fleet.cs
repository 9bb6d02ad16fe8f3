using System.Collections.Concurrent;
using System.Diagnostics;
using Forewarn.Client;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Failover;

/// <summary>One request of the fleet: when it was sent and finished (run clock, seconds), and which server answered (-1: failed).</summary>
public readonly record struct RequestRecord(int Device, double SentAt, double DoneAt, int Server);

/// <summary>
/// The simulated network devices: one <see cref="ForewarnClient"/> each, on its own loopback address,
/// each preferring the first server (priority 1) and knowing the others (priority 2). Each sends a
/// request every 1/rate seconds (phase spread at random), whatever happened to the last one, as a NAS
/// does with independent logins; every outcome is recorded against the run clock.
/// </summary>
public sealed class Fleet : IAsyncDisposable
{
    private readonly FailoverOptions _options;
    private readonly List<ForewarnClient> _clients = [];
    private readonly Stopwatch _clock;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private long _inFlight;

    public ConcurrentQueue<RequestRecord> Records { get; } = new();
    /// <summary>When each device's client left the first server: acted on its FAILOVER, or came to suspect it (run clock).</summary>
    public ConcurrentQueue<(int Device, double At)> MovedAway { get; } = new();
    public IReadOnlyList<ForewarnClient> Clients => _clients;

    public Fleet(FailoverOptions options, Stopwatch clock, bool advisories)
    {
        _options = options;
        _clock = clock;
        for (int i = 0; i < options.Devices; i++)
        {
            var servers = Enumerable.Range(0, options.Servers)
                .Select(s => new PoolServer(options.ServerAddress(s), 1812, 1813, options.Secret, priority: s == 0 ? 1 : 2));
            _clients.Add(new ForewarnClient(new ClientOptions
            {
                LocalAddress = FailoverOptions.DeviceAddress(i),
                AdvisoryPort = advisories ? 1815 : 0,
                Carrier = options.Carrier,
                Timeout = options.Timeout,
                MaxTimeout = options.MaxTimeout,
                Retries = options.Retries,
                DeadTime = options.DeadTime,
                StatusServerInterval = options.Profile == "rfc5080" ? TimeSpan.FromSeconds(5) : TimeSpan.Zero,
                ReturnJitter = TimeSpan.FromSeconds(2),
                // Classic devices are classic: no hedging, no early copies, no suspicion, no keepalives.
                Hedging = advisories,
                RetransmitAtDeadline = advisories,
                SuspectAfter = advisories ? 3 : int.MaxValue,
                KeepaliveInterval = advisories ? TimeSpan.FromSeconds(30) : TimeSpan.Zero,
            }, servers));
            int device = i;
            _clients[i].MovedAway += (server, _) => Left(device, server);
            // A suspicion (the device's own missed deadlines, or a survivor's PEERDOWN) moves it as a FAILOVER does: its next request goes to an alternate.
            _clients[i].Suspected += server => Left(device, server);
        }
    }

    private void Left(int device, PoolServer server)
    {
        if (server.Address.Equals(_options.ServerAddress(0)))
            MovedAway.Enqueue((device, _clock.Elapsed.TotalSeconds));
    }

    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Requests the fleet has sent (each counted once, however it was hedged or sent again).</summary>
    public long Sent => Interlocked.Read(ref _sent);
    private long _sent;

    public void Start()
    {
        for (int i = 0; i < _clients.Count; i++)
        {
            int device = i;
            _loops.Add(Task.Run(() => RunDeviceAsync(device)));
        }
    }

    private double _rateScale = 1;

    /// <summary>
    /// Every device's rate as a multiple of <see cref="FailoverOptions.RatePerDevice"/>, read before each
    /// request: the overload run ramps the offered load with it. Above 0.
    /// </summary>
    public double RateScale
    {
        get => Volatile.Read(ref _rateScale);
        set => Volatile.Write(ref _rateScale, value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "The rate scale is above 0."));
    }

    /// <summary>Requests per second the whole fleet offers now.</summary>
    public double OfferedPerSecond => _options.Devices * _options.RatePerDevice * RateScale;

    private const double Slice = 0.25;

    private async Task RunDeviceAsync(int device)
    {
        var client = _clients[device];
        var token = _stop.Token;
        var requests = new List<Task>();
        try
        {
            // Open loop: each request is due one unit of work after the one before, the work done at the
            // rate in force (a late tick sends at once: no drift, no skipped requests). Where the rate
            // changes (overload, steady), the units are exponential (Poisson arrivals: fixed gaps would
            // leave every device in step after a fall from a high rate to a low one), and a wait is taken
            // in slices of at most a quarter second, each at the rate in force then: a gap drawn at the
            // old rate held the ramp's real load seconds behind its schedule (at 0.3 × capacity a device
            // sends every 5 s, and went on doing so for 5 s into the ramp).
            // The first unit is drawn as the others are: a uniform phase suits fixed gaps, but before
            // exponential ones it is a burst (the first request comes after half a gap on average, and 1,000
            // devices sent 1.8 × their rate for two seconds: A went from Accept to Defer as the fleet started).
            bool poisson = _options.MeasuresCapacity;
            double due = poisson ? Exponential() : Random.Shared.NextDouble(), at = _clock.Elapsed.TotalSeconds;
            while (true)
            {
                double rate = _options.RatePerDevice * RateScale;
                double wait = due / rate;
                if (poisson && wait > Slice)
                {
                    await Task.Delay(TimeSpan.FromSeconds(Slice), token).ConfigureAwait(false);
                    double now = _clock.Elapsed.TotalSeconds;
                    due -= (now - at) * rate;
                    at = now;
                    continue;
                }
                double late = _clock.Elapsed.TotalSeconds - at;
                if (wait > late)
                    await Task.Delay(TimeSpan.FromSeconds(wait - late), token).ConfigureAwait(false);
                token.ThrowIfCancellationRequested();
                requests.RemoveAll(t => t.IsCompleted);
                requests.Add(SendOneAsync(device, client));
                at += wait;
                due = poisson ? Exponential() : 1;
            }
        }
        catch (OperationCanceledException)
        {
        }
        await Task.WhenAll(requests).ConfigureAwait(false);
    }

    private static double Exponential() => -Math.Log(1 - Random.Shared.NextDouble());

    private int _session;

    private async Task SendOneAsync(int device, ForewarnClient client)
    {
        double sentAt = _clock.Elapsed.TotalSeconds;
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _sent);
        int server = -1;
        try
        {
            var request = _options.Degradation == Degradation.FailAccounting
                ? new RadiusRequest(RadiusCode.AccountingRequest)
                    .Add(AttributeTypes.UserName, "u")
                    .Add(AttributeTypes.AcctStatusType, (uint)AcctStatusType.InterimUpdate)
                    .Add(AttributeTypes.AcctSessionId, $"d{device}-{Interlocked.Increment(ref _session)}")
                : RadiusRequest.Pap("u", "pw");
            var exchange = await client.ExchangeAsync(request, CancellationToken.None).ConfigureAwait(false);
            if (exchange.Response[0] is (byte)RadiusCode.AccessAccept or (byte)RadiusCode.AccountingResponse)
                server = IndexOf(client, exchange.Server);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            Records.Enqueue(new RequestRecord(device, sentAt, _clock.Elapsed.TotalSeconds, server));
        }
    }

    private static int IndexOf(ForewarnClient client, PoolServer server)
    {
        var servers = client.Pool.Servers;
        for (int i = 0; i < servers.Count; i++)
        {
            if (ReferenceEquals(servers[i], server))
                return i;
        }
        return -1;
    }

    /// <summary>Stops sending and waits for the requests in flight (at most their full timeouts).</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
            await StopAsync().ConfigureAwait(false);
        foreach (var client in _clients)
            await client.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
