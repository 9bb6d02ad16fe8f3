using System.Collections.Concurrent;
using System.Net;
using Forewarn.Core.Clients;

namespace Forewarn.Core.Deferrals;

/// <summary>Where a client stands with this server.</summary>
public enum ClientState
{
    /// <summary>Served normally.</summary>
    Active,
    /// <summary>Told to fail over; still served if it sends (nothing is lost), and reminded.</summary>
    Deferred,
    /// <summary>Invited back, invitation not yet acknowledged.</summary>
    Invited,
}

/// <summary>One NAS address seen sending requests: its configured client, request rate, state and measured round trip.</summary>
public sealed class ActiveClient(IPAddress address, RadiusClient client, long now)
{
    private long _requests;

    public IPAddress Address { get; } = address;
    public RadiusClient Client { get; set; } = client;
    public long FirstSeen { get; } = now;
    /// <summary>
    /// This server's address as the client knows it: where its last request was sent. Advisories to the
    /// client are signed with it and sent from it (a server on the wildcard address has several).
    /// Null until the client has sent a request.
    /// </summary>
    public IPAddress? LocalAddress { get; set; }
    public long LastSeen { get; set; } = now;
    public ClientState State { get; set; } = ClientState.Active;
    /// <summary>When the client was deferred (timestamp), for grace and reminders.</summary>
    public long StateSince { get; set; } = now;
    public long LastReminder { get; set; }
    /// <summary>Smoothed advisory round-trip time (send to ACK), milliseconds; NaN until measured.</summary>
    public double RoundTripMs { get; set; } = double.NaN;
    /// <summary>Advisories sent that were never acknowledged.</summary>
    public int Unacknowledged { get; set; }
    public int Acknowledged { get; set; }

    public long Requests => Interlocked.Read(ref _requests);
    public void CountRequest() => Interlocked.Increment(ref _requests);

    /// <summary>Requests per second over the last measurement interval (set by the registry).</summary>
    public double Rate { get; set; }
    /// <summary>The request rate smoothed over the last few intervals (half weight to the newest), for the load budget.</summary>
    public double SmoothedRate { get; set; }
    /// <summary>
    /// The request rate over the last ten seconds or so (an average with a 10 s time constant; NaN until
    /// the first interval). Which clients to shed is chosen by it: ranked by one second's count, the
    /// "busiest" of a fleet of like devices were those that happened to send most in that second, counted
    /// at two or three times what they send, and shedding fell that far short.
    /// </summary>
    public double LongRate { get; set; } = double.NaN;
    /// <summary><see cref="LongRate"/> once measured, else the last interval's rate.</summary>
    public double SteadyRate => double.IsNaN(LongRate) ? Rate : LongRate;
    /// <summary>The smoothed rate when the client was last deferred: what it will bring back.</summary>
    public double RateWhenDeferred { get; set; }
    internal long RateBaseline { get; set; }
}

/// <summary>
/// The clients this server has heard from recently, by source address. The request path records
/// activity (one dictionary lookup and an increment); the deferral logic reads rates and states.
/// </summary>
public sealed class ClientRegistry(TimeProvider time)
{
    private readonly ConcurrentDictionary<IPAddress, ActiveClient> _clients = new();
    private long _lastRateAt = time.GetTimestamp();

    public int Count => _clients.Count;
    public IEnumerable<ActiveClient> All => _clients.Values;

    /// <summary>
    /// Raised when a deferred client sends a RADIUS request anyway (it is served; the advisory side may
    /// remind it), with the time the request was received (a request that waited in the queue was sent
    /// before the client could know).
    /// </summary>
    public event Action<ActiveClient, long>? DeferredClientSeen;

    /// <summary>
    /// A RADIUS request from the client, sent to this server's <paramref name="local"/> address (null: not
    /// known), received at <paramref name="receivedAt"/> (0 for now).
    /// </summary>
    public ActiveClient Seen(IPAddress address, RadiusClient client, IPAddress? local = null, long receivedAt = 0)
    {
        var active = Touch(address, client, receivedAt == 0 ? time.GetTimestamp() : receivedAt, request: true);
        if (local is not null && !ReferenceEquals(active.LocalAddress, local))
            active.LocalAddress = local;
        return active;
    }

    /// <summary>An advisory from the client (a PROBE): it is alive, but this is not a request to remind it about.</summary>
    public ActiveClient Heard(IPAddress address, RadiusClient client) => Touch(address, client, time.GetTimestamp(), request: false);

    private ActiveClient Touch(IPAddress address, RadiusClient client, long at, bool request)
    {
        long now = time.GetTimestamp();
        var active = _clients.GetOrAdd(address, static (a, state) => new ActiveClient(a, state.client, state.now), (client, now));
        active.LastSeen = now;
        active.Client = client;
        if (!request)
            return active;
        active.CountRequest();
        client.CountRequest();
        if (active.State == ClientState.Deferred)
            DeferredClientSeen?.Invoke(active, at);
        return active;
    }

    public ActiveClient? Find(IPAddress address) => _clients.GetValueOrDefault(address);

    /// <summary>Recomputes request rates and forgets clients silent for longer than <paramref name="idle"/> that are not deferred.</summary>
    public void Refresh(TimeSpan idle)
    {
        long now = time.GetTimestamp();
        double seconds = time.GetElapsedTime(_lastRateAt, now).TotalSeconds;
        _lastRateAt = now;
        foreach (var (address, client) in _clients)
        {
            long requests = client.Requests;
            if (seconds > 0)
            {
                client.Rate = (requests - client.RateBaseline) / seconds;
                client.SmoothedRate = client.RateBaseline == 0 ? client.Rate : 0.5 * client.SmoothedRate + 0.5 * client.Rate;
                client.LongRate = double.IsNaN(client.LongRate) ? client.Rate : client.LongRate + (client.Rate - client.LongRate) * Math.Min(1, seconds / 10);
            }
            client.RateBaseline = requests;
            if (client.State == ClientState.Active && time.GetElapsedTime(client.LastSeen, now) > idle)
                _clients.TryRemove(address, out _);
        }
    }
}
