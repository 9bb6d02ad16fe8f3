using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Noise;

/// <summary>The machine noise the noise benchmark and the monitor's calm test make: another process's CPU burst, and a flood of invalid datagrams.</summary>
public static class NoiseSources
{
    /// <summary>Another process at 100 % of one core for <paramref name="length"/>.</summary>
    public static async Task BurstAsync(TimeSpan length)
    {
        using var hog = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]) { UseShellExecute = false })!;
        await Task.Delay(length, CancellationToken.None).ConfigureAwait(false);
        hog.Kill();
        await hog.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="count"/> invalid datagrams from <paramref name="source"/> (a configured client's
    /// address, so they pass the client lookup), as fast as one thread sends them: half Access-Requests
    /// with a wrong Message-Authenticator to <paramref name="auth"/>, half Accounting-Requests with a wrong
    /// authenticator to <paramref name="acct"/>. Returns how many were sent.
    /// </summary>
    public static long Flood(IPAddress source, IPEndPoint auth, IPEndPoint acct, int count)
    {
        var access = Invalid(RadiusCode.AccessRequest);
        var accounting = Invalid(RadiusCode.AccountingRequest);
        using var authSocket = new Socket(auth.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        using var acctSocket = new Socket(acct.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        authSocket.Bind(new IPEndPoint(source, 0));
        acctSocket.Bind(new IPEndPoint(source, 0));
        authSocket.Connect(auth);
        acctSocket.Connect(acct);
        long sent = 0;
        for (int i = 0; i < count; i++)
        {
            try
            {
                (i % 2 == 0 ? authSocket : acctSocket).Send(i % 2 == 0 ? access : accounting);
                sent++;
            }
            catch (SocketException)
            {
                // ENOBUFS on a full loopback queue: the datagram is lost, as on a real network.
            }
        }
        return sent;
    }

    private static byte[] Invalid(RadiusCode code)
    {
        var buffer = new byte[RadiusPacket.MaxLength];
        var writer = new RadiusWriter(buffer, code, 7, System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        if (code == RadiusCode.AccessRequest)
            writer.AddMessageAuthenticator();
        writer.AddText(AttributeTypes.UserName, "u");
        int length = writer.Complete(System.Text.Encoding.UTF8.GetBytes("not-the-secret"));
        return buffer.AsSpan(0, length).ToArray();
    }
}
