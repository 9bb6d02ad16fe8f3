using System.Net;
using Forewarn.Core.Deferrals;

namespace Forewarn.Server.Advisories;

/// <summary>A peer server: where its clients would go, and where it takes peer-health messages.</summary>
public sealed class PeerOptions
{
    public string Address { get; set; } = "";
    public int AuthPort { get; set; } = 1812;
    public int AdvisoryPort { get; set; } = 1814;
}

/// <summary>Section <c>Forewarn:Advisory</c>: the advisory protocol's server side (docs/protocol.md).</summary>
public sealed class AdvisoryOptions
{
    public bool Enabled { get; set; } = true;
    /// <summary>The server's advisory UDP port: ACKs, Probes and peer health arrive here (0: a free port).</summary>
    public int Port { get; set; } = 1814;
    /// <summary>"udp" (default) or "icmp" (ICMP Echo payloads, the patent's carrier; needs root or CAP_NET_RAW, IPv4).</summary>
    public string Carrier { get; set; } = "udp";
    /// <summary>The port clients take advisories on unless their entry says otherwise.</summary>
    public int ClientPort { get; set; } = 1815;
    /// <summary>The address advisories are signed as coming from (default: the first listen address; needed when listening on a wildcard).</summary>
    public string? Address { get; set; }
    /// <summary>Peer servers, named as alternates while their shared health says they are healthy.</summary>
    public List<PeerOptions> Peers { get; set; } = [];
    /// <summary>With a PostgreSQL store: servers register themselves in the database and take each other as peers (beside <see cref="Peers"/>).</summary>
    public bool ClusterMembership { get; set; } = true;
    /// <summary>A cluster member whose heartbeat (every second) is older than this has left.</summary>
    public int ClusterMemberStaleMs { get; set; } = 5000;
    /// <summary>The secret the servers of a cluster share for peer-health messages.</summary>
    public string? PeerSecret { get; set; }
    public SelectionOptions Select { get; set; } = new();
    /// <summary>Retry-After in a Failover: when the client may probe for return on its own.</summary>
    public int RetryAfterSeconds { get; set; } = 30;
    /// <summary>Retry-After in a Refuse.</summary>
    public int RefuseRetryAfterSeconds { get; set; } = 10;
    /// <summary>Invitations go out this many at a time ...</summary>
    public int InviteBatchSize { get; set; } = 20;
    /// <summary>... this far apart; paused while the class does not admit returning clients.</summary>
    public int InviteSpacingMs { get; set; } = 500;
    /// <summary>A deferred client that still sends requests is reminded at most this often.</summary>
    public int ReminderSeconds { get; set; } = 5;
    /// <summary>"Connection below failover" layout: new clients are served this long in the centre zone, then deferred.</summary>
    public int GraceSeconds { get; set; } = 30;
    /// <summary>The least first-retransmission timeout once acknowledgements have been timed (then doubling with each copy).</summary>
    public int RetransmitMs { get; set; } = 250;
    /// <summary>
    /// The first-retransmission timeout before any acknowledgement has been timed: 1 s, RFC 6298's initial
    /// RTO. At 250 ms, a first burst of a thousand FAILOVERs once drew 216 copies to devices that
    /// acknowledged later than that (on a busy host), a fifth more signalling than the event needed.
    /// </summary>
    public int FirstRetransmitMs { get; set; } = 1000;
    public int MaxAttempts { get; set; } = 5;
    /// <summary>A peer's health older than this is not trusted.</summary>
    public int PeerHealthStaleMs { get; set; } = 3000;
    /// <summary>Peer health goes to each peer this often.</summary>
    public int PeerHealthIntervalMs { get; set; } = 250;
    /// <summary>A peer heard before and silent this long (three intervals by default) is spoken for: its clients are told to leave it (PeerDown).</summary>
    public int PeerSilentMs { get; set; } = 750;
    /// <summary>Whether this server speaks for silent peers (and tells its peers which clients it serves).</summary>
    public bool SpeakForSilentPeers { get; set; } = true;
    /// <summary>Clients named in each peer-health message, rotating through all of them.</summary>
    public int PeerClientsPerMessage { get; set; } = 100;
    /// <summary>
    /// The load budget (see <see cref="LoadBudget"/>): after a deferral caused by load, clients come back
    /// only while their rates fit under this share of the rate carried when the score broke…
    /// </summary>
    public double BudgetBackoff { get; set; } = 0.95;
    /// <summary>…which grows by this share per second while the server is healthy and clients wait…</summary>
    public double BudgetGrowthPerSecond { get; set; } = 0.02;
    /// <summary>…and, under strategy "enough", falls by the backoff again after this many seconds still deferring with the score below half the failover threshold.</summary>
    public double BudgetCutSeconds { get; set; } = 5;
    /// <summary>
    /// Where the workers were what broke (their headroom the scarcest), the budget is instead what they
    /// carry busy this share of the time, at the time a request holds one now (Little's law), and follows
    /// it each second while the deferral lasts: the overloaded server keeps this share of its capacity.
    /// Higher keeps more goodput and queues longer (with 32 workers, a p99 1.6× the unloaded one at 0.9,
    /// 3.3× at 0.97, for Poisson arrivals).
    /// </summary>
    public double BudgetUtilisation { get; set; } = 0.92;

    public IEnumerable<string> Validate()
    {
        if (Port is < 0 or > 65535 || ClientPort is < 1 or > 65535)
            yield return "Forewarn:Advisory:Port and ClientPort must be valid UDP ports.";
        if (Carrier is not ("udp" or "icmp"))
            yield return $"Forewarn:Advisory:Carrier is udp or icmp, not '{Carrier}'.";
        if (Address is not null && !IPAddress.TryParse(Address, out _))
            yield return $"Forewarn:Advisory:Address '{Address}' is not an IP address.";
        foreach (var peer in Peers)
        {
            if (!IPAddress.TryParse(peer.Address, out _))
                yield return $"Forewarn:Advisory:Peers: '{peer.Address}' is not an IP address.";
        }
        if (Peers.Count > 0 && string.IsNullOrEmpty(PeerSecret))
            yield return "Forewarn:Advisory:PeerSecret is needed when peers are configured.";
        if (Select.Strategy is not ("all" or "list" or "group" or "topology" or "enough"))
            yield return "Forewarn:Advisory:Select:Strategy is all, list, group, topology or enough.";
        if (PeerHealthIntervalMs < 10 || PeerSilentMs < 2 * PeerHealthIntervalMs)
            yield return "Forewarn:Advisory: PeerHealthIntervalMs must be at least 10 and PeerSilentMs at least twice it (a peer is not silent between two messages).";
        if (PeerClientsPerMessage is < 0 or > 100)
            yield return "Forewarn:Advisory:PeerClientsPerMessage is 0 to 100 (an advisory fits in 1,200 octets).";
        // Written as the ranges that hold, so that NaN (which no comparison holds for) is refused too.
        if (BudgetBackoff is not (> 0 and <= 1) || BudgetGrowthPerSecond is not (>= 0 and <= 1) || BudgetCutSeconds is not (>= 1 and <= 600))
            yield return "Forewarn:Advisory: BudgetBackoff is above 0 and at most 1, BudgetGrowthPerSecond 0 to 1, BudgetCutSeconds 1 to 600.";
        if (BudgetUtilisation is not (>= 0.5 and <= 1))
            yield return "Forewarn:Advisory:BudgetUtilisation is 0.5 to 1.";
        if (InviteBatchSize < 1 || InviteSpacingMs < 0 || MaxAttempts < 1 || RetransmitMs < 10 || FirstRetransmitMs < 10)
            yield return "Forewarn:Advisory: batch size, spacing, attempts and retransmit interval must be positive.";
    }
}
