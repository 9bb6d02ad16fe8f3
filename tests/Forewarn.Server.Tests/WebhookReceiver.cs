using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Forewarn.Server.Tests;

/// <summary>A minimal HTTP endpoint on a free loopback port that records each request body and answers 200.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public ConcurrentQueue<string> Bodies { get; } = new();
    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/alerts";

    public WebhookReceiver()
    {
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var stream = client.GetStream();
                var buffer = new byte[65536];
                var received = new StringBuilder();
                int contentLength = -1, headerEnd = -1;
                while (headerEnd < 0 || received.Length < headerEnd + 4 + contentLength)
                {
                    int n = await stream.ReadAsync(buffer, _stop.Token);
                    if (n == 0)
                        break;
                    received.Append(Encoding.UTF8.GetString(buffer, 0, n));
                    var text = received.ToString();
                    headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                    if (headerEnd >= 0 && contentLength < 0)
                    {
                        var header = text[..headerEnd].Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                        contentLength = header is null ? 0 : int.Parse(header["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
                var all = received.ToString();
                Bodies.Enqueue(headerEnd >= 0 ? all[(headerEnd + 4)..] : all);
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), _stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
