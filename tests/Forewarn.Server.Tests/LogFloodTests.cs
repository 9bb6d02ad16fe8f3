using System.Net;
using System.Net.Sockets;

namespace Forewarn.Server.Tests;

/// <summary>The log of a real server process under a flood of rejects and hostile user names.</summary>
[Collection(nameof(Serial))]
public sealed class LogFloodTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-logs-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableFact]
    public async Task RejectFlood_AndControlCharactersInUserNames_CannotFillOrForgeTheLog()
    {
        await using var server = await ServerProcess.StartAsync(_data);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = new IPEndPoint(IPAddress.Loopback, server.AuthPort);
        // 2,000 rejects (unknown users), and before them one with ESC, CR and LF in its name that would forge a line.
        const string Hostile = "mallory\x1b[2J\r\n2026-12-01T00:00:00.000Z info: Forewarn ALERT forged";
        // The hostile one alone first, answered before the flood: it is the reject the log writes out.
        using (var first = new UdpPeer())
            Assert.NotNull(await first.ExchangeAsync(target, UdpPeer.AccessRequest(1, Hostile, "wrong", "testing123")));
        var answered = 0;
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var receiving = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            try
            {
                while (answered < 2000)
                {
                    await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), wait.Token);
                    answered++;
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        for (int i = 0; i < 2000; i++)
        {
            var name = $"nobody{i}";
            await socket.SendToAsync(UdpPeer.AccessRequest((byte)i, name, "wrong", "testing123"), SocketFlags.None, target);
            if (i % 20 == 0)
                await Task.Delay(5);
        }
        await receiving;
        Assert.True(answered > 1900, $"{answered} of 2000 answered");
        await server.TerminateAsync();
        var log = await server.RestOfOutput;

        var rejectLines = log.Split('\n').Count(l => l.Contains("Access-Reject", StringComparison.Ordinal));
        Assert.InRange(rejectLines, 1, 5); // one line per reason per 10 s, however many rejects
        Assert.Contains("more for this reason", log, StringComparison.Ordinal);
        Assert.DoesNotContain('\x1b', log);
        Assert.DoesNotContain('\r', log);
        Assert.DoesNotContain("\n2026-12-01T00:00:00.000Z info: Forewarn ALERT forged", log, StringComparison.Ordinal);
        Assert.Contains(@"mallory\x1b[2J\x0d\x0a2026-12-01T00:00:00.000Z", log, StringComparison.Ordinal);
    }
}
