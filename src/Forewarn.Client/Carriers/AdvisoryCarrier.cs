using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Forewarn.Client.Carriers;

/// <summary>
/// What moves advisory octets between a server and a client (docs/protocol.md §1). A carrier checks
/// nothing: every check is made on the message. UDP is the default; ICMP Echo is the patent's carrier.
/// </summary>
public interface IAdvisoryCarrier : IDisposable
{
    /// <summary>The local endpoint (ICMP: port 0).</summary>
    IPEndPoint LocalEndPoint { get; }
    /// <summary>
    /// Sends to <paramref name="target"/>; from <paramref name="from"/> where the carrier is on the wildcard
    /// address (a receiver checks that an advisory comes from the server address it names).
    /// </summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> message, IPEndPoint target, IPAddress? from = null, CancellationToken cancellationToken = default);
    /// <summary>
    /// Octets received and not yet read (0 when unknown): acknowledgements waiting here are not lost, and a
    /// sender that retransmitted for them would be timing its own backlog, not the network.
    /// </summary>
    int Waiting { get; }
    /// <summary>The next message and its source (ICMP: port 0).</summary>
    ValueTask<(int Length, IPEndPoint Source)> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

public static class AdvisoryCarriers
{
    /// <summary>A socket's unread octets, 0 once it is closed.</summary>
    internal static int Available(Socket socket)
    {
        try
        {
            return socket.Available;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Receives until cancelled or disposed, handing each message to <paramref name="handle"/> (the buffer is
    /// reused: copy what must outlive the call). Transient socket errors are skipped; the loop only receives.
    /// </summary>
    public static async Task ReceiveLoopAsync(this IAdvisoryCarrier carrier, Func<ReadOnlyMemory<byte>, IPEndPoint, Task> handle, CancellationToken cancellationToken)
    {
        var buffer = new byte[Protocol.Advisory.AdvisoryCodec.MaxLength + 1];
        while (!cancellationToken.IsCancellationRequested)
        {
            (int Length, IPEndPoint Source) received;
            try
            {
                received = await carrier.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException)
            {
                continue;
            }
            await handle(buffer.AsMemory(0, received.Length), received.Source).ConfigureAwait(false);
        }
    }

    /// <summary>"udp" (default) or "icmp".</summary>
    public static IAdvisoryCarrier Open(string kind, IPEndPoint bind) => kind.ToLowerInvariant() switch
    {
        "udp" => new UdpCarrier(bind),
        "icmp" => new IcmpEchoCarrier(bind.Address),
        _ => throw new ArgumentException($"Unknown advisory carrier '{kind}': udp or icmp.", nameof(kind)),
    };
}

/// <summary>Advisories as UDP datagrams.</summary>
public sealed class UdpCarrier : IAdvisoryCarrier
{
    private readonly Socket _socket;
    private readonly bool _wildcard;

    public UdpCarrier(IPEndPoint bind)
    {
        _socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _socket.Bind(bind);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        _wildcard = Net.Datagrams.IsWildcard(_socket) && Net.Datagrams.Supported;
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public int Waiting => AdvisoryCarriers.Available(_socket);

    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, IPEndPoint target, IPAddress? from = null, CancellationToken cancellationToken = default)
    {
        if (from is null || !_wildcard)
        {
            await _socket.SendToAsync(message, SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
            return;
        }
        int errno = Net.Datagrams.SendFrom(_socket, message.Span, target.Serialize(), new Net.Destination(from, 0));
        if (errno != 0)
            throw new SocketException((int)SocketError.SocketError, $"advisory to {target} from {from}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
    }

    public async ValueTask<(int Length, IPEndPoint Source)> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        EndPoint any = new IPEndPoint(_socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken).ConfigureAwait(false);
        return (received.ReceivedBytes, (IPEndPoint)received.RemoteEndPoint);
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>
/// Advisories as the payload of ICMP Echo Requests (type 8), the patent's carrier. Needs a raw socket:
/// root or CAP_NET_RAW. IPv4 only. The kernel answers each Echo Request with an Echo Reply carrying the
/// same payload; replies are ignored here (only type 8 with an advisory's magic is taken).
/// <code>
/// ICMP Echo (RFC 792): Type(1)=8 Code(1)=0 Checksum(2) Identifier(2) Sequence(2) Payload(advisory)
/// </code>
/// </summary>
public sealed class IcmpEchoCarrier : IAdvisoryCarrier
{
    private readonly Socket _socket;
    private readonly IPAddress _bind;
    private readonly ushort _identifier = (ushort)Random.Shared.Next(1, 65535);
    private int _sequence;

    public IcmpEchoCarrier(IPAddress bind)
    {
        if (bind.AddressFamily != AddressFamily.InterNetwork)
            throw new NotSupportedException("The ICMP Echo carrier supports IPv4.");
        _bind = bind;
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp);
        try
        {
            _socket.Bind(new IPEndPoint(bind, 0));
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
    }

    public IPEndPoint LocalEndPoint => new(_bind, 0);

    public int Waiting => AdvisoryCarriers.Available(_socket);

    /// <summary><paramref name="from"/> is not used: the socket is bound to one address.</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, IPEndPoint target, IPAddress? from = null, CancellationToken cancellationToken = default)
    {
        var packet = new byte[8 + message.Length];
        packet[0] = 8; // Echo Request
        packet[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), _identifier);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), (ushort)Interlocked.Increment(ref _sequence));
        message.Span.CopyTo(packet.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), Checksum(packet));
        await _socket.SendToAsync(packet, SocketFlags.None, new IPEndPoint(target.Address, 0), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<(int Length, IPEndPoint Source)> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var raw = new byte[65535];
        while (true)
        {
            var received = await _socket.ReceiveFromAsync(raw, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken).ConfigureAwait(false);
            var packet = raw.AsSpan(0, received.ReceivedBytes);
            // A raw IPv4 socket hands over the IP header too: skip IHL × 4 octets.
            if (packet.Length < 20)
                continue;
            int headerLength = (packet[0] & 0x0F) * 4;
            if (packet.Length < headerLength + 8 + 2)
                continue;
            var destination = new IPAddress(packet.Slice(16, 4));
            var icmp = packet[headerLength..];
            if (icmp[0] != 8 || icmp[1] != 0 || icmp[8] != 'F' || icmp[9] != 'W' || !destination.Equals(_bind))
                continue;
            var payload = icmp[8..];
            if (payload.Length > buffer.Length)
                continue;
            payload.CopyTo(buffer.Span);
            return (payload.Length, new IPEndPoint(new IPAddress(packet.Slice(12, 4)), 0));
        }
    }

    /// <summary>The Internet checksum (RFC 1071) over the ICMP message with its checksum field zero.</summary>
    internal static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if ((data.Length & 1) != 0)
            sum += (uint)(data[^1] << 8);
        while (sum >> 16 != 0)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    public void Dispose() => _socket.Dispose();
}
