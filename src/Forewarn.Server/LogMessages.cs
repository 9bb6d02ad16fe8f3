using System.Net;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server;

internal static partial class LogMessages
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Listening for RADIUS {Kind} on {Endpoint}")]
    public static partial void Listening(ILogger logger, string kind, EndPoint endpoint);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Loaded {Count} RADIUS clients")]
    public static partial void ClientsLoaded(ILogger logger, int count);

    [LoggerMessage(EventId = 3, Message = "Dropped datagram ({Reason}) from {Client} at {Source}; {Earlier} more of this reason in the {Seconds} s before (not logged one by one)")]
    public static partial void DropSummary(ILogger logger, LogLevel level, DropReason reason, string client, IPEndPoint source, long earlier, int seconds);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "FreeRADIUS schema: {Reason}")]
    public static partial void FreeRadiusUnsupported(ILogger logger, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Request from {Source} failed")]
    public static partial void RequestFailed(ILogger logger, IPEndPoint source, Exception exception);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Request queue full: dropping ({Count} so far)")]
    public static partial void QueueFull(ILogger logger, long count);

    [LoggerMessage(EventId = 8, Level = LogLevel.Error, Message = "Receive on {Endpoint} failed: {Error}")]
    public static partial void ReceiveFailed(ILogger logger, EndPoint endpoint, string error);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Client {Client} ({Address}) is a block whose NASes share one secret, and so their advisory keys: any of them could sign advisories to the others. Give each its own: forewarn clients add --per-nas-advisory-keys, then forewarn clients advisory-key")]
    public static partial void SharedAdvisoryKeys(ILogger logger, string client, string address);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "{Endpoint} is the wildcard address, but this system does not say where each datagram was sent: answers leave from the address the kernel chooses, which NASes that sent to another address reject. Listen on each address instead.")]
    public static partial void WildcardWithoutPacketInfo(ILogger logger, EndPoint endpoint);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Answer from {Endpoint} to {Target} not sent: {Error} ({Count} send errors so far; logged at most every 10 s)")]
    public static partial void SendFailed(ILogger logger, EndPoint endpoint, EndPoint target, string error, long count);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "Client {Client} sent a Message-Authenticator: it is now required on its Access-Requests")]
    public static partial void LearnedMessageAuthenticator(ILogger logger, string client);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Alert mail for {Source} ({Alerts} alerts held back by the rate bound) not sent")]
    public static partial void AlertMailFailed(ILogger logger, string source, int alerts, Exception exception);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Stopped: {InFlight} requests finished, accounting flushed")]
    public static partial void Stopped(ILogger logger, int inFlight);
}
