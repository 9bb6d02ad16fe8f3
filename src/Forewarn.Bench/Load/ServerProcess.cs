using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Load;

/// <summary>What the generator reads of the server under load, when it runs on the same machine: its CPU time and resident memory from /proc.</summary>
public static class ServerProcess
{
    /// <summary>User plus system CPU time of a process, or null when it cannot be read.</summary>
    public static TimeSpan? CpuTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may contain spaces) start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Resident memory in bytes (VmRSS), or null.</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }

    /// <summary>Threads of a process (the Threads line of /proc/PID/status), or null.</summary>
    public static int? Threads(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("Threads:", StringComparison.Ordinal))
                    return int.Parse(line[8..].Trim(), CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }

    /// <summary>Open file descriptors of a process (entries of /proc/PID/fd: files, sockets, pipes), or null.</summary>
    public static int? OpenDescriptors(int pid)
    {
        try
        {
            return Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>USER_HZ: 100 on every Linux that .NET runs on.</summary>
    private const int ClockTicksPerSecond = 100;

    /// <summary>
    /// Starts a server and measures how long until it answers a Status-Server (sent every 2 ms, each a
    /// fresh request, each answer verified), then kills it. Returns null if it never answers within the timeout.
    /// </summary>
    public static async Task<TimeSpan?> TimeToFirstAnswerAsync(ProcessStartInfo start, IPEndPoint server, byte[] secret, TimeSpan timeout)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        socket.Connect(server);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var request = new byte[RadiusPacket.MaxLength];
            var answer = new byte[RadiusPacket.MaxLength];
            var authenticator = new byte[16];
            byte identifier = 0;
            while (clock.Elapsed < timeout && !process.HasExited)
            {
                Random.Shared.NextBytes(authenticator);
                var writer = new RadiusWriter(request, RadiusCode.StatusServer, ++identifier, authenticator);
                writer.AddMessageAuthenticator();
                int length = writer.Complete(secret);
                try
                {
                    socket.Send(request.AsSpan(0, length));
                    using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(2));
                    while (true)
                    {
                        int received = await socket.ReceiveAsync(answer, SocketFlags.None, wait.Token).ConfigureAwait(false);
                        if (received >= 20 && answer[1] == identifier
                            && RadiusCrypto.VerifyResponseAuthenticator(answer.AsSpan(0, received), authenticator, secret))
                            return clock.Elapsed;
                    }
                }
                catch (OperationCanceledException)
                {
                }
                catch (SocketException)
                {
                    // Port not open yet (ICMP unreachable): try again.
                    await Task.Delay(2).ConfigureAwait(false);
                }
            }
            return null;
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
        }
    }
}
