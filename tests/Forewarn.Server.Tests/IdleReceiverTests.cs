using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.DependencyInjection;

namespace Forewarn.Server.Tests;

/// <summary>Receiving threads wait quietly: an idle server throws nothing, on either receive path.</summary>
[Collection(nameof(Serial))]
public sealed class IdleReceiverTests
{
    /// <summary>The system clock under another name: the server then receives with ReceiveFrom, as on systems without recvmsg timestamps.</summary>
    private sealed class OtherClock : TimeProvider;

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task IdleReceivers_ThrowNoExceptions_AndStillAnswer(bool kernelReceive)
    {
        await using var server = await TestServer.StartAsync(configure: kernelReceive ? null : services => services.AddSingleton<TimeProvider>(new OtherClock()));
        int thrown = 0;
        void Count(object? sender, FirstChanceExceptionEventArgs e)
        {
            // The receive timeout's exception (other servers' threads in this process may see others, e.g. ICMP resets).
            if (e.Exception is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock }
                && Thread.CurrentThread.Name?.StartsWith("radius-", StringComparison.Ordinal) == true)
                Interlocked.Increment(ref thrown);
        }
        AppDomain.CurrentDomain.FirstChanceException += Count;
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= Count;
        }
        Assert.Equal(0, thrown);
        using var peer = new UdpPeer();
        Assert.NotNull(await peer.ExchangeAsync(server.Auth, UdpPeer.StatusServer(1, "testing123")));
    }
}
