using System.Net;
using Forewarn.Core.Aaa;
using Forewarn.Core.Clients;
using Forewarn.Protocol.Radius;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server;

/// <summary>
/// What answers an Access-Request or Accounting-Request that has passed every check: the AAA handlers
/// in the server, the forwarding handler in the relay. Returns the response length, or 0 for none.
/// </summary>
public interface IRadiusHandler
{
    ValueTask<Handled> HandleAsync(ReadOnlyMemory<byte> request, RadiusClient client, IPEndPoint source, Memory<byte> response, CancellationToken cancellationToken);
}

/// <summary>The server's handler: authentication against the store, durable accounting.</summary>
public sealed class AaaHandler(AccessHandler access, AccountingHandler accounting) : IRadiusHandler
{
    public ValueTask<Handled> HandleAsync(ReadOnlyMemory<byte> request, RadiusClient client, IPEndPoint source, Memory<byte> response, CancellationToken cancellationToken) =>
        (RadiusCode)request.Span[0] == RadiusCode.AccessRequest
            ? access.HandleAsync(request, client, response, cancellationToken)
            : Handled(accounting.HandleAsync(request, client, source.Address.ToString(), response, cancellationToken));

    private static ValueTask<Handled> Handled(ValueTask<int> pending) =>
        pending.IsCompletedSuccessfully ? ValueTask.FromResult<Handled>(pending.Result) : Later(pending);

    private static async ValueTask<Handled> Later(ValueTask<int> pending) => await pending.ConfigureAwait(false);
}

/// <summary>Which listener a datagram arrived on: it decides which codes are served.</summary>
public enum PortKind { Authentication, Accounting }

/// <summary>
/// One request from datagram to response: client lookup, whole-packet validation, the BlastRADIUS and
/// authenticator checks, duplicate detection, then the handler. Every early exit is a counted drop.
/// </summary>
public sealed class RequestPipeline(
    ClientDirectory clients,
    DuplicateCache duplicates,
    IRadiusHandler handler,
    ServerCounters counters,
    Health.SelfClient self,
    Core.Deferrals.ClientRegistry registry,
    DropLog drops,
    ILogger<RequestPipeline> logger)
{
    /// <summary>Processes one datagram; returns the response length written to <paramref name="response"/>, or 0 for no response.</summary>
    public async ValueTask<Handled> ProcessAsync(ReadOnlyMemory<byte> datagram, IPEndPoint source, IPAddress local, PortKind port, Memory<byte> response, CancellationToken cancellationToken, long receivedAt = 0)
    {
        counters.OnReceived();
        // The server's own health checks come from a loopback socket of this process, with its own secret.
        var client = self.IsSelf(source) ? self.Client : clients.Find(source.Address);
        if (client is null)
        {
            counters.OnDrop(DropReason.UnknownClient);
            drops.Dropped(DropReason.UnknownClient, null, source);
            return 0;
        }

        var reason = Check(datagram.Span, client, port, out var key, source);
        if (reason != DropReason.None)
            return Drop(reason, client, source);
        // Who is sending, and how much: the deferral side reads this. A deferred client is still served.
        if (!ReferenceEquals(client, self.Client))
            registry.Seen(source.Address, client, local, receivedAt);

        switch (duplicates.Begin(key, response.Span, out int cachedLength))
        {
            case DuplicateCache.Outcome.InProgress:
                return Drop(DropReason.DuplicateInProgress, client, source);
            case DuplicateCache.Outcome.Answered:
                counters.OnDuplicateAnswered();
                return new Handled(cachedLength, WithoutService: true);
        }

        Handled handled;
        try
        {
            handled = await DispatchAsync(datagram, client, source, port, response, cancellationToken).ConfigureAwait(false);
        }
        catch (Core.Aaa.SlowWorkFullException)
        {
            // The NAS retransmits; by then this client's turn on the slow-work pool may have come.
            duplicates.Abandon(key);
            return Drop(DropReason.SlowWorkFull, client, source);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            duplicates.Abandon(key);
            counters.OnDrop(DropReason.InternalError);
            LogMessages.RequestFailed(logger, source, e);
            return 0;
        }
        catch
        {
            duplicates.Abandon(key);
            throw;
        }
        if (handled.Length == 0)
        {
            duplicates.Abandon(key);
            return Drop(DropReason.MissingAttribute, client, source);
        }
        duplicates.Complete(key, response.Span[..handled.Length]);
        if ((RadiusCode)datagram.Span[0] == RadiusCode.StatusServer)
        {
            counters.OnStatusResponse();
            return handled with { WithoutService = true };
        }
        counters.OnResponse((RadiusCode)response.Span[0]);
        return handled;
    }

    private int Drop(DropReason reason, RadiusClient client, IPEndPoint source)
    {
        counters.OnDrop(reason);
        drops.Dropped(reason, client.Name, source);
        return 0;
    }

    private DropReason Check(ReadOnlySpan<byte> datagram, RadiusClient client, PortKind port, out DuplicateCache.Key key, IPEndPoint source)
    {
        key = default;
        var reason = RadiusPacket.TryParse(datagram, out var packet);
        if (reason != DropReason.None)
            return reason;

        bool hasMessageAuthenticator = packet.HasAttribute(AttributeTypes.MessageAuthenticator);
        if (hasMessageAuthenticator && !RadiusCrypto.VerifyMessageAuthenticator(packet, client.Secret))
            return DropReason.BadMessageAuthenticator;

        switch (packet.Code)
        {
            case RadiusCode.AccessRequest when port == PortKind.Authentication:
                if (!hasMessageAuthenticator)
                {
                    // BlastRADIUS (CVE-2024-3596): Proxy-State without Message-Authenticator is always dropped.
                    if (packet.HasAttribute(AttributeTypes.ProxyState))
                        return DropReason.ProxyStateWithoutMessageAuthenticator;
                    if (client.RequiresMessageAuthenticator)
                        return DropReason.MissingMessageAuthenticator;
                }
                else if (client.Policy == Core.Store.MessageAuthenticatorPolicy.Auto && !client.SeenMessageAuthenticator)
                {
                    client.SeenMessageAuthenticator = true;
                    LogMessages.LearnedMessageAuthenticator(logger, client.Name);
                }
                break;
            case RadiusCode.AccountingRequest when port == PortKind.Accounting:
                if (!RadiusCrypto.VerifyRequestAuthenticator(packet.Bytes, client.Secret))
                    return DropReason.BadRequestAuthenticator;
                break;
            case RadiusCode.StatusServer:
                // RadiusPacket.TryParse has required its Message-Authenticator (RFC 5997 §3).
                break;
            default:
                return DropReason.UnexpectedCode;
        }
        key = DuplicateCache.KeyOf(source, packet);
        return DropReason.None;
    }

    private async ValueTask<Handled> DispatchAsync(ReadOnlyMemory<byte> datagram, RadiusClient client, IPEndPoint source, PortKind port, Memory<byte> response, CancellationToken cancellationToken)
    {
        if ((RadiusCode)datagram.Span[0] == RadiusCode.StatusServer)
            return StatusResponse(datagram.Span, client, port, response.Span);
        return await handler.HandleAsync(datagram, client, source, response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>RFC 5997 §3: Access-Accept on the authentication port, Accounting-Response on the accounting port, signed.</summary>
    private static int StatusResponse(ReadOnlySpan<byte> request, RadiusClient client, PortKind port, Span<byte> response)
    {
        var packet = RadiusPacket.FromValidated(request);
        var writer = new RadiusWriter(response, port == PortKind.Authentication ? RadiusCode.AccessAccept : RadiusCode.AccountingResponse, packet.Identifier);
        writer.AddMessageAuthenticator();
        return writer.Complete(client.Secret, packet.Authenticator);
    }
}
