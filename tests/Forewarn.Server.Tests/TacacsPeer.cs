using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Server.Tests;

/// <summary>
/// A TACACS+ device for tests: a real TCP (or TLS) connection carrying packets built by the protocol codec
/// (itself checked against FreeRADIUS's and ansible's vectors). Tests that need an independent client use
/// Perl's Authen::TacacsPlus; this one reaches what Perl cannot (authorization, accounting, single-connect,
/// malformed input).
/// </summary>
public sealed class TacacsPeer : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly Stream _stream;
    private readonly byte[] _key;

    private TacacsPeer(TcpClient tcp, Stream stream, string key)
    {
        _tcp = tcp;
        _stream = stream;
        _key = Encoding.UTF8.GetBytes(key);
    }

    public static async Task<TacacsPeer> ConnectAsync(IPEndPoint server, string key = "testing123", IPAddress? from = null)
    {
        var tcp = from is null ? new TcpClient(server.AddressFamily) : new TcpClient(new IPEndPoint(from, 0));
        tcp.NoDelay = true;
        await tcp.ConnectAsync(server);
        return new TacacsPeer(tcp, tcp.GetStream(), key);
    }

    /// <summary>Over TLS: <paramref name="tls"/> is an SslStream already authenticated on <paramref name="tcp"/>.</summary>
    public static TacacsPeer Over(TcpClient tcp, SslStream tls) => new(tcp, tls, "");

    public static uint NewSession() => BinaryPrimitives.ReadUInt32BigEndian(RandomNumberGenerator.GetBytes(4));

    public async Task SendAsync(TacacsBody body, uint session, byte sequence = 1, TacacsFlags flags = TacacsFlags.None, byte version = TacacsHeader.VersionDefault)
    {
        var buffer = new byte[TacacsHeader.Size + TacacsPacket.MaxBodyLength];
        int length = TacacsPacket.Encode(body, version, sequence, flags, session, _key, buffer);
        await _stream.WriteAsync(buffer.AsMemory(0, length));
        await _stream.FlushAsync();
    }

    public async Task SendRawAsync(byte[] octets)
    {
        await _stream.WriteAsync(octets);
        await _stream.FlushAsync();
    }

    /// <summary>The next reply, decoded with this peer's key; null when the server closed the connection (or nothing came in time).</summary>
    public async Task<(TacacsHeader Header, TacacsBody Body)?> ReceiveAsync(int timeoutMs = 5000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var head = new byte[TacacsHeader.Size];
        try
        {
            if (!await ReadExactlyAsync(head, cts.Token))
                return null;
            if (TacacsPacket.TryReadHeader(head, out var header) != TacacsError.None)
                throw new InvalidDataException("the server sent a bad header");
            var packet = new byte[TacacsHeader.Size + header.Length];
            head.CopyTo(packet, 0);
            if (!await ReadExactlyAsync(packet.AsMemory(TacacsHeader.Size), cts.Token))
                return null;
            var error = TacacsPacket.TryDecode(packet, _key, out header, out var body);
            if (error != TacacsError.None)
                throw new InvalidDataException($"the server's reply does not decode: {error}");
            return (header, body!);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public async Task<TacacsBody?> ExchangeAsync(TacacsBody body, uint session, byte sequence = 1, TacacsFlags flags = TacacsFlags.None, byte version = TacacsHeader.VersionDefault)
    {
        await SendAsync(body, session, sequence, flags, version);
        return (await ReceiveAsync())?.Body;
    }

    /// <summary>True when the server closes the connection within <paramref name="timeoutMs"/> (a read returns end of stream or a reset).</summary>
    public async Task<bool> ClosedWithinAsync(int timeoutMs)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var one = new byte[1];
        try
        {
            return await _stream.ReadAsync(one, cts.Token) == 0;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<bool> ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _stream.ReadAsync(buffer[read..], cancellationToken);
            if (n == 0)
                return false;
            read += n;
        }
        return true;
    }

    public static AuthenStart Pap(string user, string password, AuthenService service = AuthenService.Login) =>
        new(AuthenAction.Login, 1, AuthenType.Pap, service, Encoding.UTF8.GetBytes(user), "tty0"u8.ToArray(), "192.0.2.9"u8.ToArray(), Encoding.UTF8.GetBytes(password));

    public static AuthenStart Ascii(string user = "", AuthenService service = AuthenService.Login) =>
        new(AuthenAction.Login, 1, AuthenType.Ascii, service, Encoding.UTF8.GetBytes(user), "tty0"u8.ToArray(), "192.0.2.9"u8.ToArray(), []);

    public static AuthenStart Challenge(AuthenType type, string user, byte[] data) =>
        new(AuthenAction.Login, 1, type, AuthenService.Ppp, Encoding.UTF8.GetBytes(user), "async1"u8.ToArray(), "192.0.2.9"u8.ToArray(), data);

    public static AuthenContinue Continue(string message, bool abort = false) => new(Encoding.UTF8.GetBytes(message), [], abort ? AuthenContinue.Abort : (byte)0);

    public static AuthorRequest Command(string user, params string[] arguments) =>
        new(AuthenMethod.TacacsPlus, 1, AuthenType.Ascii, AuthenService.Login, Encoding.UTF8.GetBytes(user), "tty0"u8.ToArray(), "192.0.2.9"u8.ToArray(),
            [.. arguments.Select(Encoding.UTF8.GetBytes)]);

    public static AcctRequest Accounting(AcctFlags flags, string user, params string[] arguments) =>
        new(flags, AuthenMethod.TacacsPlus, 15, AuthenType.Ascii, AuthenService.Login, Encoding.UTF8.GetBytes(user), "tty0"u8.ToArray(), "192.0.2.9"u8.ToArray(),
            [.. arguments.Select(Encoding.UTF8.GetBytes)]);

    public static string Text(byte[] octets) => Encoding.UTF8.GetString(octets);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
