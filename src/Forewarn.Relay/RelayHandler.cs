using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using Forewarn.Client;
using Forewarn.Core.Clients;
using Forewarn.Protocol.Radius;
using Forewarn.Server;
using Forewarn.Core.Store;
using Microsoft.Extensions.Logging;

namespace Forewarn.Relay;

/// <summary>
/// Forwards a device's request upstream and translates the answer back: re-signed with the upstream
/// secret (User-Password re-hidden, CHAP's implicit challenge made explicit, Message-Authenticator
/// recomputed), answer verified, hidden reply attributes (MPPE keys, Tunnel-Password) re-hidden for the
/// device, Proxy-State passed through untouched (RFC 2865 §5.33). Accounting that no server
/// acknowledges is spooled durably — then acknowledged to the device — and replayed in order.
/// </summary>
public sealed partial class RelayHandler(ForewarnClient upstream, IRequestSpool store, ILogger<RelayHandler> logger) : IRadiusHandler
{
    private long _spooled;

    /// <summary>Accounting requests this relay took into its spool (no upstream answered) and acknowledged.</summary>
    public long Spooled => Interlocked.Read(ref _spooled);

    public async ValueTask<Core.Aaa.Handled> HandleAsync(ReadOnlyMemory<byte> request, RadiusClient client, IPEndPoint source, Memory<byte> response, CancellationToken cancellationToken)
    {
        var (forward, authenticator, code, identifier, attributes) = Translate(request.Span, client);
        try
        {
            var exchange = await upstream.ExchangeAsync(forward, cancellationToken).ConfigureAwait(false);
            bool signed = code == RadiusCode.AccessRequest || RadiusPacket.FromValidated(request.Span).HasAttribute(AttributeTypes.MessageAuthenticator);
            return Answer(exchange, client, authenticator, identifier, signed, response.Span);
        }
        catch (TimeoutException) when (code == RadiusCode.AccountingRequest)
        {
            // No server answered: the relay takes responsibility, durably, before it acknowledges.
            store.Spool(client.Name, attributes);
            Interlocked.Increment(ref _spooled);
            LogSpooled(logger, client.Name);
            return AccountingResponse(request.Span, client, response.Span);
        }
        catch (TimeoutException)
        {
            LogNoUpstream(logger, source);
            return 0; // the device retries, as it would with any silent server
        }
    }

    private static (RadiusRequest Forward, byte[] Authenticator, RadiusCode Code, byte Identifier, byte[] Attributes) Translate(ReadOnlySpan<byte> bytes, RadiusClient client)
    {
        var packet = RadiusPacket.FromValidated(bytes);
        var forward = new RadiusRequest(packet.Code);
        Span<byte> plain = stackalloc byte[128];
        foreach (var attribute in packet.Attributes)
        {
            switch (attribute.Type)
            {
                case AttributeTypes.MessageAuthenticator:
                    break; // recomputed with the upstream secret
                case AttributeTypes.UserPassword:
                    int length = RadiusCrypto.UnhideUserPassword(attribute.Value, client.Secret, packet.Authenticator, plain);
                    if (length >= 0)
                        forward.UserPassword = System.Text.Encoding.UTF8.GetString(plain[..length]);
                    break;
                default:
                    forward.Add(attribute.Type, attribute.Value.ToArray());
                    break;
            }
        }
        // RFC 2865 §2.2: without CHAP-Challenge the challenge is the Request Authenticator, which changes upstream.
        if (packet.HasAttribute(AttributeTypes.ChapPassword) && !packet.HasAttribute(AttributeTypes.ChapChallenge))
            forward.Add(AttributeTypes.ChapChallenge, packet.Authenticator.ToArray());
        return (forward, packet.Authenticator.ToArray(), packet.Code, packet.Identifier, packet.AttributeBytes.ToArray());
    }

    /// <summary>The upstream answer, re-signed for the device.</summary>
    private static int Answer(ForewarnClient.Exchange exchange, RadiusClient client, byte[] downstreamAuthenticator, byte identifier, bool signed, Span<byte> response)
    {
        var answer = RadiusPacket.FromValidated(exchange.Response);
        var writer = new RadiusWriter(response, answer.Code, identifier);
        // Message-Authenticator first on every answer to an Access-Request (BlastRADIUS); on others only when the device signed its request.
        if (signed)
            writer.AddMessageAuthenticator();
        Span<byte> plain = stackalloc byte[256];
        Span<byte> hidden = stackalloc byte[256];
        foreach (var attribute in answer.Attributes)
        {
            var value = attribute.Value;
            switch (attribute.Type)
            {
                case AttributeTypes.MessageAuthenticator:
                    continue;
                case AttributeTypes.TunnelPassword when value.Length >= 19:
                {
                    // Tag, then salt-encrypted (RFC 2868 §3.5).
                    int length = RadiusCrypto.SaltDecrypt(value[1..], exchange.Server.Secret, exchange.RequestAuthenticator, plain);
                    if (length < 0)
                        continue;
                    hidden[0] = value[0];
                    int written = RadiusCrypto.SaltEncrypt(plain[..length], client.Secret, downstreamAuthenticator, Salt(), hidden[1..]);
                    writer.Add(attribute.Type, hidden[..(1 + written)]);
                    continue;
                }
                case AttributeTypes.VendorSpecific when value.Length > 6 && BinaryPrimitives.ReadUInt32BigEndian(value) == AttributeTypes.MicrosoftVendor
                                                        && value[4] is AttributeTypes.MsMppeSendKey or AttributeTypes.MsMppeRecvKey or AttributeTypes.MsChapMppeKeys
                                                        && value[5] == value.Length - 4:
                {
                    var inner = value[6..];
                    int written;
                    if (value[4] == AttributeTypes.MsChapMppeKeys)
                    {
                        int length = RadiusCrypto.UnhideUserPassword(inner, exchange.Server.Secret, exchange.RequestAuthenticator, plain);
                        if (length < 0)
                            continue;
                        // The keys may end in zero octets that unhiding trims: restore the full 32.
                        written = RadiusCrypto.HideUserPassword(plain[..Math.Max(length, inner.Length)], client.Secret, downstreamAuthenticator, hidden);
                    }
                    else
                    {
                        int length = RadiusCrypto.SaltDecrypt(inner, exchange.Server.Secret, exchange.RequestAuthenticator, plain);
                        if (length < 0)
                            continue;
                        written = RadiusCrypto.SaltEncrypt(plain[..length], client.Secret, downstreamAuthenticator, Salt(), hidden);
                    }
                    writer.AddVendor(AttributeTypes.MicrosoftVendor, value[4], hidden[..written]);
                    continue;
                }
                default:
                    writer.Add(attribute.Type, value);
                    continue;
            }
        }
        return writer.Complete(client.Secret, downstreamAuthenticator);
    }

    private static ushort Salt() => (ushort)RandomNumberGenerator.GetInt32(0, 0x8000);

    private static int AccountingResponse(ReadOnlySpan<byte> request, RadiusClient client, Span<byte> response) =>
        Core.Aaa.AccountingHandler.WriteResponse(request, client, response);

    [LoggerMessage(EventId = 700, Level = LogLevel.Warning, Message = "No upstream server acknowledged accounting from {Client}: spooled to disk")]
    private static partial void LogSpooled(ILogger logger, string client);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "No upstream server answered a request from {Source}")]
    private static partial void LogNoUpstream(ILogger logger, IPEndPoint source);
}
