namespace Forewarn.Protocol.Radius;

/// <summary>Why a datagram was dropped. Every drop is counted under one of these.</summary>
public enum DropReason
{
    None = 0,
    /// <summary>Fewer than 20 octets: no room for the header (RFC 2865 §3).</summary>
    TooShort,
    /// <summary>The Length field is below 20.</summary>
    LengthFieldTooSmall,
    /// <summary>The Length field is above 4096 (RFC 2865 §3: "The maximum length is 4096").</summary>
    TooLong,
    /// <summary>The datagram holds fewer octets than its Length field claims.</summary>
    Truncated,
    /// <summary>The Code is not one this implementation knows.</summary>
    UnknownCode,
    /// <summary>An attribute header would run past the packet, or declares a length below 2.</summary>
    AttributeMalformed,
    /// <summary>An attribute's length runs past the end of the packet.</summary>
    AttributeOverrun,
    /// <summary>Message-Authenticator is not 18 octets long (RFC 3579 §3.2).</summary>
    MessageAuthenticatorLength,
    /// <summary>Message-Authenticator does not verify.</summary>
    BadMessageAuthenticator,
    /// <summary>A Message-Authenticator is required for this client or code and is absent.</summary>
    MissingMessageAuthenticator,
    /// <summary>Proxy-State without Message-Authenticator in an Access-Request (BlastRADIUS, CVE-2024-3596).</summary>
    ProxyStateWithoutMessageAuthenticator,
    /// <summary>The Request Authenticator of an Accounting/CoA/Disconnect-Request does not verify.</summary>
    BadRequestAuthenticator,
    /// <summary>The Response Authenticator does not match the request it answers.</summary>
    BadResponseAuthenticator,
    /// <summary>The source address is no configured client.</summary>
    UnknownClient,
    /// <summary>The code is valid RADIUS but not served on this port.</summary>
    UnexpectedCode,
    /// <summary>A retransmission of a request still being processed.</summary>
    DuplicateInProgress,
    /// <summary>The bounded request queue was full.</summary>
    QueueFull,
    /// <summary>The request lacks attributes it needs (e.g. no User-Name, no Acct-Status-Type).</summary>
    MissingAttribute,
    /// <summary>A processing error; logged with the exception.</summary>
    InternalError,
    /// <summary>A queued request waited for a worker longer than the server's queue timeout: its NAS has stopped waiting.</summary>
    QueueTimeout,
    /// <summary>The request needed the slow-work pool (a PBKDF2 verification, a store lookup) and its client's queue there, or the pool's, was full.</summary>
    SlowWorkFull,
    /// <summary>Dropped unread by a Loss drill (an operator's rehearsal of a lossy path).</summary>
    Drill,
}
