using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Forewarn.Core.Health;

namespace Forewarn.Server.Alerts;

/// <summary>
/// Sends each alert to a syslog collector as an RFC 5424 message: over UDP one datagram of at most 2048
/// octets (what RFC 5426 §3.2 says every receiver accepts), over TCP one octet-counted frame (RFC 6587
/// §3.4.1: <c>MSG-LEN SP SYSLOG-MSG</c>) on a connection of its own, so that a collector gone away is
/// an error now and not a message lost on a connection that is already dead.
/// </summary>
public sealed class SyslogAlertSink : IAlertSink
{
    public const int UdpMaxOctets = 2048;
    public const int TcpMaxOctets = 8192;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly SyslogOptions _options;
    private readonly SyslogFormatter _formatter;
    private readonly string _host;
    private readonly int _port;

    public SyslogAlertSink(SyslogOptions options)
    {
        _options = options;
        _formatter = new SyslogFormatter(options.FacilityCode, Environment.MachineName, "forewarn", Environment.ProcessId);
        if (!options.TryGetCollector(out _host, out _port))
            throw new ArgumentException($"'{options.Collector}' is not host:port", nameof(options));
    }

    public async Task SendAsync(Alert alert, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var addresses = await Dns.GetHostAddressesAsync(_host, timeout.Token).ConfigureAwait(false);
        var collector = new IPEndPoint(addresses[0], _port);
        using var socket = new Socket(collector.AddressFamily, _options.Tcp ? SocketType.Stream : SocketType.Dgram, _options.Tcp ? ProtocolType.Tcp : ProtocolType.Udp);
        if (!_options.Tcp)
        {
            await socket.SendToAsync(_formatter.Format(alert, UdpMaxOctets), SocketFlags.None, collector, timeout.Token).ConfigureAwait(false);
            return;
        }
        byte[] message = _formatter.Format(alert, TcpMaxOctets);
        byte[] frame = [.. Encoding.ASCII.GetBytes(message.Length.ToString(CultureInfo.InvariantCulture) + " "), .. message];
        await socket.ConnectAsync(collector, timeout.Token).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(frame, timeout.Token).ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Send);
    }
}
