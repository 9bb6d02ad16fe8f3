using System.Net;
using System.Text;
using Forewarn.Protocol.Advisory;

namespace Forewarn.Client;

/// <summary>One RADIUS server the client may use.</summary>
/// <remarks><paramref name="advisoryKey"/>: this NAS's own advisory key (64 hex digits, from <c>forewarn clients advisory-key</c>), when its server entry gives each NAS its own; else keys derive from the shared secret.</remarks>
public sealed class PoolServer(IPAddress address, int authPort, int acctPort, string secret, int priority = 1, int weight = 1, int advisoryPort = 1814, string? advisoryKey = null)
{
    public IPAddress Address { get; } = address;
    public int AuthPort { get; } = authPort;
    public int AcctPort { get; } = acctPort;
    public byte[] Secret { get; } = Encoding.UTF8.GetBytes(secret);
    public int Priority { get; } = priority;
    public int Weight { get; } = weight;
    public int AdvisoryPort { get; } = advisoryPort;
    public AdvisoryKeys Keys { get; } = advisoryKey is not null
        ? AdvisoryKeys.FromKey(Convert.FromHexString(advisoryKey))
        : AdvisoryKeys.FromSharedSecret(Encoding.UTF8.GetBytes(secret));

    /// <summary>Told to fail over by this server; cleared by an Invite (or a refused-then-accepted Probe).</summary>
    public bool Deferred { get; internal set; }
    /// <summary>Classic failover: no answer within T×R; avoided until this time.</summary>
    public DateTimeOffset DeadUntil { get; internal set; }
    /// <summary>The alternates this server named, best first.</summary>
    public IReadOnlyList<Alternate> Alternates { get; internal set; } = [];
    /// <summary>When to probe for return (after a Refuse or a Failover with Retry-After, and while suspected).</summary>
    public DateTimeOffset? ProbeAt { get; internal set; }

    /// <summary>
    /// Missed <see cref="ClientOptions.SuspectAfter"/> response deadlines in a row with no answer between:
    /// new requests go to the others at once. Cleared only by the return protocol (an Invite, an answered
    /// Status-Server for a server without advisories), never by a timer.
    /// </summary>
    public bool Suspected { get; internal set; }
    /// <summary>This server's measured round trips and the response deadline they give.</summary>
    public RoundTripEstimator RoundTrip { get; internal set; } = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5));
    /// <summary>Deadlines missed since this server last answered.</summary>
    public int MissedDeadlines => Volatile.Read(ref _missed);
    internal int _missed;
    /// <summary>How many times in a row a suspected server's probe went unanswered (spaces the next one).</summary>
    internal int UnansweredProbes { get; set; }
    /// <summary>When this server last answered anything (a <see cref="TimeProvider"/> timestamp).</summary>
    internal long LastAnswerAt { get; set; }
    internal bool KeepaliveInFlight { get; set; }
    /// <summary>This server has sent the client a valid advisory: its return is by INVITE, not by a Status-Server answer.</summary>
    public bool SpeaksAdvisories { get; internal set; }

    /// <summary>Usable for a new request: not deferred, not suspected, not dead.</summary>
    internal bool UsableAt(DateTimeOffset now) => !Deferred && !Suspected && DeadUntil <= now;

    public override string ToString() => $"{Address}:{AuthPort}";
}

/// <summary>The client's servers: lowest priority number first, weighted among equals, skipping deferred, suspected and dead ones.</summary>
public sealed class ServerPool(IEnumerable<PoolServer> servers, TimeProvider time)
{
    private readonly PoolServer[] _servers = [.. servers];
    private readonly Lock _lock = new();

    public IReadOnlyList<PoolServer> Servers => _servers;

    public PoolServer? Find(IPAddress address)
    {
        foreach (var server in _servers)
        {
            if (server.Address.Equals(address))
                return server;
        }
        return null;
    }

    /// <summary>
    /// The server to use now, other than those in <paramref name="exclude"/>; null if none is usable.
    /// Alternates named by a server that deferred this client come first, weighted by the headroom it gave them.
    /// </summary>
    public PoolServer? Pick(IReadOnlyCollection<PoolServer>? exclude = null)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            // Weighted at random among the usable alternates, so that one server's clients spread over them.
            var named = new List<(PoolServer Server, int Weight)>();
            foreach (var deferred in _servers)
            {
                if (!deferred.Deferred)
                    continue;
                foreach (var alternate in deferred.Alternates)
                {
                    var candidate = Find(alternate.Address);
                    if (candidate is null || !candidate.UsableAt(now) || exclude?.Contains(candidate) == true)
                        continue;
                    named.Add((candidate, alternate.Weight + 1));
                }
            }
            if (named.Count > 0)
            {
                int ticket = Random.Shared.Next(named.Sum(n => n.Weight));
                foreach (var (candidate, weight) in named)
                {
                    ticket -= weight;
                    if (ticket < 0)
                        return candidate;
                }
            }

            PoolServer? best = null;
            int totalWeight = 0;
            foreach (var server in Usable(now, exclude))
            {
                if (best is null || server.Priority < best.Priority)
                {
                    best = server;
                    totalWeight = server.Weight;
                }
                else if (server.Priority == best.Priority)
                {
                    totalWeight += server.Weight;
                }
            }
            if (best is null)
            {
                // Everything deferred or dead: fall back to anything not excluded (nothing is refused outright).
                foreach (var server in _servers)
                {
                    if (exclude?.Contains(server) != true)
                        return server;
                }
                return null;
            }
            int pick = Random.Shared.Next(totalWeight);
            foreach (var server in Usable(now, exclude))
            {
                if (server.Priority != best.Priority)
                    continue;
                pick -= server.Weight;
                if (pick < 0)
                    return server;
            }
            return best;
        }
    }

    private IEnumerable<PoolServer> Usable(DateTimeOffset now, IReadOnlyCollection<PoolServer>? exclude)
    {
        foreach (var server in _servers)
        {
            if (server.UsableAt(now) && exclude?.Contains(server) != true)
                yield return server;
        }
    }
}
