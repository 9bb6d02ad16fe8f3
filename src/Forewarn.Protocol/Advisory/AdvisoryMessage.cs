using System.Net;

namespace Forewarn.Protocol.Advisory;

/// <summary>Advisory message types (docs/protocol.md §3).</summary>
public enum AdvisoryType : byte
{
    /// <summary>Server → client: move away now, to the alternates named.</summary>
    Failover = 1,
    /// <summary>Server → client: you may come back.</summary>
    Invite = 2,
    /// <summary>Server → client: your return (a Probe) is refused; try again after Retry-After.</summary>
    Refuse = 3,
    /// <summary>Either way: receipt of the message with sequence <see cref="AdvisoryMessage.AckedSequence"/>.</summary>
    Ack = 4,
    /// <summary>Client → server: may I (re)connect? Answered by Invite or Refuse.</summary>
    Probe = 5,
    /// <summary>Server → server: my score and zone, so that peers name only healthy alternates.</summary>
    PeerHealth = 6,
    /// <summary>
    /// Server → client: the server named in <see cref="AdvisoryMessage.Subject"/>, in your pool, has fallen
    /// silent to its peers; leave it now (docs/protocol.md §6b). Sent by a surviving server, signed with its own key.
    /// </summary>
    PeerDown = 7,
}

/// <summary>Why a Failover was sent (docs/protocol.md §3.1).</summary>
public enum AdvisoryReason : byte
{
    None = 0,
    Overload = 1,
    Forecast = 2,
    ServiceDown = 3,
    DependentServiceDown = 4,
    Maintenance = 5,
    Reminder = 6,
    ConnectionRefused = 7,
    /// <summary>PeerDown: the subject stopped sending peer health.</summary>
    PeerSilent = 8,
}

/// <summary>
/// A server a client may move to, with its relative weight (its headroom, 0–255): <see cref="Port"/> is its
/// RADIUS authentication port, <see cref="TacacsPort"/> its TACACS+ port (0: it serves none, or did not say).
/// </summary>
public sealed record Alternate(IPAddress Address, ushort Port, byte Weight, ushort TacacsPort = 0);

/// <summary>
/// One advisory. Every field below is covered by the HMAC, including both addresses (docs/protocol.md §4).
/// </summary>
public sealed record AdvisoryMessage
{
    public const byte CurrentVersion = 1;

    public byte Version { get; init; } = CurrentVersion;
    public required AdvisoryType Type { get; init; }
    public byte KeyId { get; init; }
    public AdvisoryReason Reason { get; init; }
    /// <summary>Per-sender, strictly increasing.</summary>
    public required ulong Sequence { get; init; }
    /// <summary>Sender's clock, Unix milliseconds.</summary>
    public required long Timestamp { get; init; }
    /// <summary>Seconds before the receiver should try again (Refuse, Failover); 0 for none.</summary>
    public ushort RetryAfter { get; init; }
    public required IPAddress Server { get; init; }
    public required IPAddress Client { get; init; }
    public IReadOnlyList<Alternate> Alternates { get; init; } = [];
    /// <summary>Ack: the sequence acknowledged.</summary>
    public ulong AckedSequence { get; init; }
    /// <summary>PeerHealth: the sender's score in thousandths; Failover: the score when it was sent.</summary>
    public ushort Score { get; init; }
    /// <summary>PeerHealth: the sender's zone (0 Accept, 1 Hold, 2 AdmitThenDefer, 3 Defer).</summary>
    public byte Zone { get; init; }
    /// <summary>PeerHealth / Invite: the RADIUS authentication port the sender serves.</summary>
    public ushort ServicePort { get; init; }
    /// <summary>PeerHealth / Invite: the TACACS+ port the sender serves (0: none).</summary>
    public ushort TacacsPort { get; init; }
    /// <summary>PeerDown: the server the client is told to leave (not the sender).</summary>
    public IPAddress? Subject { get; init; }
    /// <summary>PeerHealth: a slice of the clients the sender serves, so that its peers can speak for it if it falls silent.</summary>
    public IReadOnlyList<IPAddress> Clients { get; init; } = [];
}
