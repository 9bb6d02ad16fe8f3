using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Core.Aaa;

/// <summary>
/// Answers an Accounting-Request (RFC 2866) only after its record is durably stored. The Request
/// Authenticator has been verified already. Retransmissions that escape the duplicate cache (a new
/// Identifier, a changed Acct-Delay-Time) carry the same content, so they map to the same dedup key
/// and are stored once.
/// </summary>
public sealed class AccountingHandler(AccountingWriter writer, RadiusDictionary dictionary, TimeProvider time)
{
    /// <summary>The response length, or 0 when the request lacks Acct-Status-Type (RFC 2866 §5.1: it MUST be present).</summary>
    public async ValueTask<int> HandleAsync(ReadOnlyMemory<byte> request, RadiusClient client, string sourceAddress, Memory<byte> response, CancellationToken cancellationToken)
    {
        var record = BuildRecord(request.Span, client, sourceAddress, time.GetUtcNow(), dictionary);
        if (record is null)
            return 0;
        var stored = writer.WriteAsync(record);
        await (cancellationToken.CanBeCanceled ? stored.WaitAsync(cancellationToken) : stored).ConfigureAwait(false);
        return WriteResponse(request.Span, client, response.Span);
    }

    public static AccountingRecord? BuildRecord(ReadOnlySpan<byte> request, RadiusClient client, string sourceAddress, DateTimeOffset now, RadiusDictionary dictionary)
    {
        var packet = RadiusPacket.FromValidated(request);
        if (!packet.TryGetAttribute(AttributeTypes.AcctStatusType, out var status) || status.Length != 4)
            return null;
        string? user = packet.TryGetAttribute(AttributeTypes.UserName, out var u) ? Encoding.UTF8.GetString(u) : null;
        string? session = packet.TryGetAttribute(AttributeTypes.AcctSessionId, out var s) ? Encoding.UTF8.GetString(s) : null;

        var text = new StringBuilder();
        foreach (var attribute in AttributeDecoder.Decode(packet.AttributeBytes, dictionary))
        {
            if (attribute.Number == AttributeTypes.MessageAuthenticator && attribute.VendorId == 0)
                continue;
            // One line per attribute, whatever a value holds: a newline in a value (a User-Name a user chose) is
            // escaped, so that it cannot pass for another attribute when the record is read back.
            text.Append(attribute.ToString().Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        }
        return new AccountingRecord(0, now, client.Name, sourceAddress, user, session,
            BinaryPrimitives.ReadUInt32BigEndian(status), text.ToString(), DedupKey(packet, client.Name));
    }

    /// <summary>SHA-256 over the client name and every attribute but Acct-Delay-Time, Proxy-State and Message-Authenticator.</summary>
    public static string DedupKey(RadiusPacket packet, string clientName)
    {
        // Hashed in one call over one buffer: the client name, then every attribute that identifies the event.
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(clientName.Length) + packet.AttributeBytes.Length);
        try
        {
            int length = Encoding.UTF8.GetBytes(clientName, buffer);
            foreach (var attribute in packet.Attributes)
            {
                if (attribute.Type is AttributeTypes.AcctDelayTime or AttributeTypes.ProxyState or AttributeTypes.MessageAuthenticator)
                    continue;
                var encoded = packet.AttributeBytes.Slice(attribute.Offset, attribute.Value.Length + 2);
                encoded.CopyTo(buffer.AsSpan(length));
                length += encoded.Length;
            }
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(buffer.AsSpan(0, length), digest);
            return Convert.ToHexStringLower(digest);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static int WriteResponse(ReadOnlySpan<byte> request, RadiusClient client, Span<byte> response)
    {
        var packet = RadiusPacket.FromValidated(request);
        var writer = new RadiusWriter(response, RadiusCode.AccountingResponse, packet.Identifier);
        if (packet.HasAttribute(AttributeTypes.MessageAuthenticator))
            writer.AddMessageAuthenticator();
        AccessHandler.CopyProxyState(ref writer, packet);
        return writer.Complete(client.Secret, packet.Authenticator);
    }
}
