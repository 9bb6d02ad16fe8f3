using System.Diagnostics;
using System.Net;
using Forewarn.Client.Tacacs;
using Forewarn.Protocol.Tacacs;
using HdrHistogram;

namespace Forewarn.Bench.Load;

/// <summary>What a TACACS+ load run sends.</summary>
public enum TacacsLoadKind
{
    /// <summary>PAP authentication (one packet each way).</summary>
    Pap,
    /// <summary>ASCII login: START with the user, GETPASS, CONTINUE with the password (two round trips).</summary>
    Ascii,
    /// <summary>Command authorization (<see cref="TacacsLoadOptions.Command"/>).</summary>
    Authorization,
    /// <summary>Accounting: start, then stop, of numbered tasks.</summary>
    Accounting,
}

public sealed record TacacsLoadOptions
{
    public required IPEndPoint Server { get; init; }
    public required string Key { get; init; }
    public TacacsLoadKind Kind { get; init; } = TacacsLoadKind.Pap;
    public string User { get; init; } = "user1";
    public string Password { get; init; } = "password";
    /// <summary>Authorization: the command line, split into cmd and cmd-args.</summary>
    public string Command { get; init; } = "show running-config";
    /// <summary>Single-connect connections; sessions are spread over them.</summary>
    public int Connections { get; init; } = 4;
    /// <summary>Closed loop: sessions kept in flight (over all connections). With a <see cref="Rate"/>, the most in flight at once.</summary>
    public int Outstanding { get; init; } = 64;
    /// <summary>Sessions per second on a fixed schedule (open loop, up to <see cref="Outstanding"/> in flight); 0 for a closed loop.</summary>
    public double Rate { get; init; }
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    public IPAddress? Source { get; init; }
    /// <summary>The status a verified reply must have: authentication PASS, authorization PASS_ADD/PASS_REPL, accounting SUCCESS; false expects a refusal.</summary>
    public bool ExpectPass { get; init; } = true;
}

/// <summary>What a TACACS+ run measured: every reply verified against the expected status.</summary>
public sealed record TacacsLoadReport(
    string Kind, int Connections, int Outstanding, double Seconds, long Completed, long Unexpected, long Errors, double PerSecond,
    double P50Ms, double P90Ms, double P99Ms, double P999Ms, double MaxMs, long ConnectionsClosedByServer,
    IReadOnlyDictionary<string, long>? UnexpectedByStatus = null);

/// <summary>
/// A closed-loop TACACS+ load generator over the library's <see cref="TacacsClient"/>: N single-connect
/// connections, M sessions in flight, each reply checked (a PASS that should have been a FAIL counts as
/// unexpected), latency per exchange (for ASCII, per login) in an HdrHistogram. Able to drive any
/// TACACS+ server.
/// </summary>
public sealed class TacacsLoad(TacacsLoadOptions options)
{
    public async Task<TacacsLoadReport> RunAsync(CancellationToken cancellationToken = default)
    {
        await using var client = new TacacsClient(new TacacsClientOptions
        {
            Server = options.Server, Key = options.Key, Connections = options.Connections, Timeout = options.Timeout, LocalAddress = options.Source,
        });
        var histogram = new LongHistogram(TimeSpan.FromMinutes(1).Ticks, 3);
        long completed = 0, unexpected = 0, errors = 0, task = 0;
        var measuring = false;
        var stop = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stop.Token);
        string[] command = options.Command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] authorization = ["service=shell", $"cmd={command.FirstOrDefault()}", .. command.Skip(1).Select(a => $"cmd-arg={a}"), "cmd-arg=<cr>"];

        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<string, long>(StringComparer.Ordinal);

        // Whether the reply passed, and its status by name.
        async Task<(bool, string)> OneAsync()
        {
            switch (options.Kind)
            {
                case TacacsLoadKind.Pap:
                    var pap = await client.PapAsync(options.User, options.Password, cancellationToken: linked.Token).ConfigureAwait(false);
                    return (pap.Status == AuthenStatus.Pass, pap.Status.ToString());
                case TacacsLoadKind.Ascii:
                    var ascii = await client.AsciiAsync(options.User, options.Password, cancellationToken: linked.Token).ConfigureAwait(false);
                    return (ascii.Status == AuthenStatus.Pass, ascii.Status.ToString());
                case TacacsLoadKind.Authorization:
                    var author = await client.AuthorizeAsync(options.User, authorization, cancellationToken: linked.Token).ConfigureAwait(false);
                    return (author.Status is AuthorStatus.PassAdd or AuthorStatus.PassReplace, author.Status.ToString());
                default:
                    long id = Interlocked.Increment(ref task);
                    string taskId = $"task_id={id}";
                    var start = await client.AccountAsync(AcctFlags.Start, options.User, [taskId, "service=shell", "cmd=show version <cr>"], cancellationToken: linked.Token).ConfigureAwait(false);
                    return (start.Status == AcctStatus.Success, start.Status.ToString());
            }
        }

        // Open loop: the n-th session is due n / Rate seconds after the start, whoever is free to send it;
        // latency is measured from when it was due, so a server that falls behind shows it.
        long issued = 0, origin = Stopwatch.GetTimestamp();

        async Task LoopAsync()
        {
            while (!linked.IsCancellationRequested)
            {
                long started = Stopwatch.GetTimestamp();
                if (options.Rate > 0)
                {
                    long due = origin + (long)(Interlocked.Increment(ref issued) / options.Rate * Stopwatch.Frequency);
                    if (due > started)
                    {
                        try
                        {
                            await Task.Delay(TimeSpan.FromSeconds((due - started) / (double)Stopwatch.Frequency), linked.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            return;
                        }
                    }
                    started = due;
                }
                try
                {
                    var (passed, status) = await OneAsync().ConfigureAwait(false);
                    if (!Volatile.Read(ref measuring))
                        continue;
                    // From when the session was due (a timer may wake a little early: never below zero), at most the histogram's minute.
                    long elapsed = Math.Max(0, Stopwatch.GetTimestamp() - started);
                    lock (histogram)
                        histogram.RecordValue(Math.Min(elapsed * TimeSpan.TicksPerSecond / Stopwatch.Frequency, TimeSpan.FromMinutes(1).Ticks));
                    Interlocked.Increment(ref completed);
                    if (passed != options.ExpectPass)
                    {
                        Interlocked.Increment(ref unexpected);
                        statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
                    }
                }
                catch (TacacsException)
                {
                    if (Volatile.Read(ref measuring))
                        Interlocked.Increment(ref errors);
                    await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (linked.IsCancellationRequested)
                {
                    return;
                }
            }
        }

        var loops = Enumerable.Range(0, Math.Max(1, options.Outstanding)).Select(_ => Task.Run(LoopAsync, CancellationToken.None)).ToList();
        await Task.Delay(options.Warmup, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref measuring, true);
        var clock = Stopwatch.StartNew();
        await Task.Delay(options.Duration, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref measuring, false);
        double seconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(loops).ConfigureAwait(false);
        stop.Dispose();

        double Ms(double percentile) => histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(percentile) / (double)TimeSpan.TicksPerMillisecond;
        return new TacacsLoadReport(options.Kind.ToString().ToLowerInvariant(), options.Connections, options.Outstanding, Math.Round(seconds, 2), completed, unexpected, errors,
            Math.Round(completed / seconds, 1), Math.Round(Ms(50), 3), Math.Round(Ms(90), 3), Math.Round(Ms(99), 3), Math.Round(Ms(99.9), 3),
            Math.Round(histogram.TotalCount == 0 ? 0 : histogram.GetMaxValue() / (double)TimeSpan.TicksPerMillisecond, 3), client.ConnectionsClosedByServer,
            new SortedDictionary<string, long>(statuses, StringComparer.Ordinal));
    }
}
