using System.Diagnostics;
using System.Globalization;
using MimeKit;

namespace Forewarn.Server.Tests;

/// <summary>A real SMTP server (Python's smtpd, peers/smtp_sink.py) on a free loopback port that keeps every message it receives.</summary>
public sealed class SmtpPeer : IAsyncDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly Process _process;
    private readonly string _directory;

    public int Port { get; }

    private SmtpPeer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    /// <summary>Starts the peer; skipped (failed under CI=true) without a python3 that has smtpd (removed in Python 3.12).</summary>
    public static async Task<SmtpPeer> StartAsync()
    {
        Requires.Program(Python);
        var probe = await Peer.RunAsync(Python, ["-W", "ignore", "-c", "import smtpd, asyncore"]);
        Requires.That(probe.ExitCode == 0, $"{Python} has no smtpd module (Python 3.11 or older has it): {probe.Error.Trim()}");
        var directory = Path.Combine(Path.GetTempPath(), "forewarn-smtp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var info = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-W", "ignore", Path.Combine(AppContext.BaseDirectory, "peers", "smtp_sink.py"), directory })
            info.ArgumentList.Add(argument);
        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var line = await process.StandardOutput.ReadLineAsync(cts.Token);
        if (line is null || !line.StartsWith("port ", StringComparison.Ordinal))
        {
            process.Kill();
            throw new InvalidOperationException($"the SMTP peer did not start: {line}");
        }
        return new SmtpPeer(process, directory, int.Parse(line[5..], CultureInfo.InvariantCulture));
    }

    /// <summary>The messages received so far, in order.</summary>
    public IReadOnlyList<MimeMessage> Messages() =>
        [.. Directory.GetFiles(_directory, "*.eml")
            .OrderBy(f => int.Parse(Path.GetFileNameWithoutExtension(f), CultureInfo.InvariantCulture))
            .Select(f => MimeMessage.Load(f))];

    /// <summary>Polls until <paramref name="condition"/> holds for the messages or the (generous) time is up; returns the last look.</summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitForAsync(Func<IReadOnlyList<MimeMessage>, bool> condition, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        var messages = Messages();
        while (!condition(messages) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            messages = Messages();
        }
        return messages;
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
