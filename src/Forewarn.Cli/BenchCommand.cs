using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Forewarn.Bench.Load;
using Spectre.Console;

namespace Forewarn.Cli;

/// <summary><c>forewarn bench auth|acct|status</c>: the load generator.</summary>
internal static class BenchCommand
{
    private static readonly Option<string> Server = new("--server") { Description = "host:port of the server under load (default port 1812, 1813 for acct)" , DefaultValueFactory = _ => "127.0.0.1" };
    private static readonly Option<string> Secret = new("--secret") { Description = "Shared secret", DefaultValueFactory = _ => "testing123" };
    private static readonly Option<int> Outstanding = new("--outstanding", "-c") { Description = "Closed loop: requests kept in flight", DefaultValueFactory = _ => 64 };
    private static readonly Option<double> Rate = new("--rate") { Description = "Open loop: requests per second on a fixed schedule (0: closed loop)" };
    private static readonly Option<double> Duration = new("--duration", "-d") { Description = "Measured seconds", DefaultValueFactory = _ => 10 };
    private static readonly Option<double> Warmup = new("--warmup") { Description = "Seconds of load before measuring", DefaultValueFactory = _ => 2 };
    private static readonly Option<int> Sockets = new("--sockets") { Description = "Source sockets (each has 256 identifiers; default: enough for --outstanding, at least 4)" };
    private static readonly Option<string[]> Sources = new("--source") { Description = "Source address (repeatable; default 127.0.0.1)" };
    private static readonly Option<int> SourceCount = new("--source-count") { Description = "Use this many consecutive addresses from the first --source" };
    private static readonly Option<double> Timeout = new("--timeout") { Description = "Seconds before a request counts as lost", DefaultValueFactory = _ => 2 };
    private static readonly Option<bool> Json = new("--json") { Description = "Print the report as JSON on standard output" };
    private static readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "No progress bar" };
    private static readonly Option<int?> ServerPid = new("--server-pid") { Description = "The server's process id (same machine): report its CPU time per request and its memory" };

    public static Command Create()
    {
        var command = new Command("bench", "Measure: load generators and the failover benchmark");
        var method = new Option<string>("--method") { Description = "pap, chap or mschapv2", DefaultValueFactory = _ => "pap" };
        var users = new Option<int>("--users") { Description = "Number of users, named by --user (1..N)", DefaultValueFactory = _ => 1 };
        var user = new Option<string>("--user") { Description = "User name, or a format with {0} for the user number", DefaultValueFactory = _ => "user{0}" };
        var password = new Option<string>("--password") { Description = "Every user's password", DefaultValueFactory = _ => "password" };
        var noMa = new Option<bool>("--no-message-authenticator") { Description = "Leave Message-Authenticator out of Access-Requests" };

        var auth = new Command("auth", "Access-Requests (PAP, CHAP or MS-CHAPv2), every answer verified") { method, users, user, password, noMa };
        auth.SetAction((result, ct) => RunAsync(result, ParseMethod(result.GetValue(method)!), 1812, o => o with
        {
            Users = result.GetValue(users),
            UserFormat = result.GetValue(user)!,
            Password = result.GetValue(password)!,
            MessageAuthenticator = !result.GetValue(noMa),
        }, ct));
        var acct = new Command("acct", "Accounting-Requests: sessions of Start, Interim-Update and Stop") { users, user };
        acct.SetAction((result, ct) => RunAsync(result, LoadKind.Accounting, 1813, o => o with { Users = result.GetValue(users), UserFormat = result.GetValue(user)! }, ct));
        var status = new Command("status", "Status-Server requests (RFC 5997)");
        status.SetAction((result, ct) => RunAsync(result, LoadKind.Status, 1812, o => o, ct));
        command.Subcommands.Add(Startup());
        command.Subcommands.Add(Tacacs());
        command.Subcommands.Add(Eap());
        command.Subcommands.Add(FailoverCommand.CreateBench());
        command.Subcommands.Add(NoiseCommand.Create());
        command.Subcommands.Add(NoiseCommand.CreateDetect());
        command.Subcommands.Add(NoiseCommand.CreateReplay());
        command.Subcommands.Add(FaultsCommand.CreateKill());
        command.Subcommands.Add(FaultsCommand.CreateOverload());
        command.Subcommands.Add(FaultsCommand.CreateSoak());
        foreach (var sub in new[] { auth, acct, status })
        {
            foreach (var option in new Option[] { Server, Secret, Outstanding, Rate, Duration, Warmup, Sockets, Sources, SourceCount, Timeout, Json, Quiet, ServerPid })
                sub.Options.Add(option);
            command.Subcommands.Add(sub);
        }
        return command;
    }

    /// <summary><c>bench startup -- COMMAND...</c>: how long a server takes from exec to its first Status-Server answer.</summary>
    private static Command Startup()
    {
        var runs = new Option<int>("--runs") { Description = "Starts to measure (the median is reported)", DefaultValueFactory = _ => 5 };
        var commandLine = new Argument<string[]>("command") { Description = "The server's command line (after --)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("startup", "Start a server, time its first Status-Server answer, stop it; repeat") { Server, Secret, runs, Json, commandLine };
        command.SetAction(async (result, ct) =>
        {
            if (!TryParseEndpoint(result.GetValue(Server)!, 1812, out var server))
                return CommonOptions.Fail($"--server '{result.GetValue(Server)}' is not host:port.");
            var argv = result.GetValue(commandLine)!;
            var times = new List<double>();
            for (int i = 0; i < Math.Max(1, result.GetValue(runs)); i++)
            {
                var elapsed = await ServerProcess.TimeToFirstAnswerAsync(new System.Diagnostics.ProcessStartInfo(argv[0], argv.Skip(1)) { UseShellExecute = false },
                    server, Encoding.UTF8.GetBytes(result.GetValue(Secret)!), TimeSpan.FromSeconds(60)).ConfigureAwait(false);
                if (elapsed is null)
                    return CommonOptions.Fail($"'{string.Join(' ', argv)}' did not answer a Status-Server on {server} within 60 s.");
                times.Add(Math.Round(elapsed.Value.TotalMilliseconds, 1));
            }
            var sorted = times.Order().ToList();
            double median = sorted[sorted.Count / 2];
            if (result.GetValue(Json))
                Console.WriteLine(JsonSerializer.Serialize(new { medianMs = median, runsMs = times }, JsonOptions));
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first answer after {median} ms (median of {times.Count}: {string.Join(", ", times)} ms)"));
            return 0;
        });
        return command;
    }

    /// <summary><c>bench tacacs</c>: closed-loop TACACS+ load over single-connect connections, every reply verified.</summary>
    private static Command Tacacs()
    {
        var kind = new Option<string>("--kind") { Description = "pap, ascii, author (command authorization) or acct", DefaultValueFactory = _ => "pap" };
        var server = new Option<string>("--server") { Description = "host:port of the TACACS+ server (default port 49)", DefaultValueFactory = _ => "127.0.0.1" };
        var keyFile = new Option<string?>("--key-file") { Description = "A file whose first line is the TACACS+ key (or $FOREWARN_TACACS_KEY; default testing123)" };
        var user = new Option<string>("--user") { Description = "User name", DefaultValueFactory = _ => "user1" };
        var password = new Option<string>("--password") { Description = "The user's password", DefaultValueFactory = _ => "password" };
        var commandLine = new Option<string>("--command") { Description = "author: the command to authorize", DefaultValueFactory = _ => "show running-config" };
        var connections = new Option<int>("--connections") { Description = "Single-connect connections", DefaultValueFactory = _ => 4 };
        var expectFail = new Option<bool>("--expect-fail") { Description = "Every reply should be a refusal (FAIL): measures the deny path" };
        var source = new Option<string?>("--source") { Description = "Source address (a client the server knows; default: the system's choice)" };
        var command = new Command("tacacs", "TACACS+ sessions (PAP or ASCII login, command authorization, accounting) over single-connect connections, every reply verified")
        {
            kind, server, keyFile, user, password, commandLine, connections, Outstanding, Duration, Warmup, Timeout, expectFail, source, Json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var loadKind = result.GetValue(kind)!.ToLowerInvariant() switch
            {
                "pap" => TacacsLoadKind.Pap,
                "ascii" => TacacsLoadKind.Ascii,
                "author" or "authorization" => TacacsLoadKind.Authorization,
                "acct" or "accounting" => (TacacsLoadKind?)TacacsLoadKind.Accounting,
                _ => null,
            };
            if (loadKind is null)
                return CommonOptions.Fail("--kind must be pap, ascii, author or acct.");
            if (!TryParseEndpoint(result.GetValue(server)!, 49, out var endpoint))
                return CommonOptions.Fail($"--server '{result.GetValue(server)}' is not host:port.");
            if (!CommonOptions.TryReadSecret(null, result.GetValue(keyFile), "FOREWARN_TACACS_KEY", out var key, out var error))
                return CommonOptions.Fail(error);
            IPAddress? from = null;
            if (result.GetValue(source) is { } text && !IPAddress.TryParse(text, out from))
                return CommonOptions.Fail($"--source '{text}' is not an IP address.");
            var report = await new TacacsLoad(new TacacsLoadOptions
            {
                Server = endpoint,
                Key = key ?? "testing123",
                Kind = loadKind.Value,
                User = result.GetValue(user)!,
                Password = result.GetValue(password)!,
                Command = result.GetValue(commandLine)!,
                Connections = Math.Max(1, result.GetValue(connections)),
                Outstanding = Math.Max(1, result.GetValue(Outstanding)),
                Duration = TimeSpan.FromSeconds(result.GetValue(Duration)),
                Warmup = TimeSpan.FromSeconds(result.GetValue(Warmup)),
                Timeout = TimeSpan.FromSeconds(result.GetValue(Timeout)),
                ExpectPass = !result.GetValue(expectFail),
                Source = from,
            }).RunAsync(cancellationToken).ConfigureAwait(false);
            if (result.GetValue(Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"tacacs {report.Kind} → {endpoint}: {report.PerSecond:N0}/s over {report.Connections} connections × {report.Outstanding} in flight, {report.Seconds} s; " +
                    $"p50 {report.P50Ms} ms, p99 {report.P99Ms} ms, p99.9 {report.P999Ms} ms, max {report.MaxMs} ms; {report.Unexpected:N0} unexpected replies{(report.Unexpected > 0 ? $" ({string.Join(", ", report.UnexpectedByStatus!.Select(p => $"{p.Key} {p.Value}"))})" : "")}, {report.Errors:N0} errors"));
            }
            if (report.Completed > 0 && report.Unexpected == report.Completed)
                Console.Error.WriteLine($"forewarn: warning: every reply was {(report.Kind == "acct" ? "an error" : "a refusal")}: check the user ('{result.GetValue(user)}'), its password, the command set, or the key.");
            return report.Errors > 0 ? 1 : 0;
        });
        return command;
    }

    private static Command Eap()
    {
        var method = new Option<string>("--method") { Description = "peap (PEAPv0/EAP-MSCHAPv2) or tls (EAP-TLS)", DefaultValueFactory = _ => "peap" };
        var user = new Option<string>("--user") { Description = "User name (EAP-TLS: the identity)", DefaultValueFactory = _ => "user1" };
        var password = new Option<string>("--password") { Description = "The user's password (PEAP)", DefaultValueFactory = _ => "password" };
        var certificate = new Option<string?>("--certificate") { Description = "EAP-TLS: the client certificate (PEM), e.g. from forewarn certs client" };
        var key = new Option<string?>("--key") { Description = "EAP-TLS: the client certificate's key (PEM)" };
        var tls = new Option<string>("--tls") { Description = "TLS version the peer offers: 1.2 or 1.3", DefaultValueFactory = _ => "1.2" };
        var command = new Command("eap", "Whole EAP authentications (PEAP-MSCHAPv2 or EAP-TLS) with a built-in supplicant, each checked to Access-Accept and matching MPPE keys")
        {
            method, Server, Secret, user, password, certificate, key, tls, Outstanding, Duration, Warmup, Timeout, ServerPid, Json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var kind = result.GetValue(method)!.ToLowerInvariant() switch
            {
                "peap" or "peap-mschapv2" => (EapLoadMethod?)EapLoadMethod.PeapMsChapV2,
                "tls" or "eap-tls" => EapLoadMethod.Tls,
                _ => null,
            };
            if (kind is null)
                return CommonOptions.Fail("--method must be peap or tls.");
            if (result.GetValue(tls) is not ("1.2" or "1.3"))
                return CommonOptions.Fail("--tls must be 1.2 or 1.3.");
            if (kind == EapLoadMethod.Tls && (result.GetValue(certificate) is not { } file || !File.Exists(file) || result.GetValue(key) is not { } keyFile || !File.Exists(keyFile)))
                return CommonOptions.Fail("EAP-TLS needs --certificate and --key, existing PEM files (forewarn certs client NAME writes them).");
            if (!TryParseEndpoint(result.GetValue(Server)!, 1812, out var endpoint))
                return CommonOptions.Fail($"--server '{result.GetValue(Server)}' is not host:port.");
            var report = await new EapLoad(new EapLoadOptions
            {
                Server = endpoint,
                Secret = result.GetValue(Secret)!,
                Method = kind.Value,
                User = result.GetValue(user)!,
                Password = result.GetValue(password)!,
                CertificateFile = result.GetValue(certificate),
                KeyFile = result.GetValue(key),
                Tls13 = result.GetValue(tls) == "1.3",
                Outstanding = Math.Max(1, result.GetValue(Outstanding)),
                Duration = TimeSpan.FromSeconds(result.GetValue(Duration)),
                Warmup = TimeSpan.FromSeconds(result.GetValue(Warmup)),
                Timeout = TimeSpan.FromSeconds(result.GetValue(Timeout)),
                ServerPid = result.GetValue(ServerPid),
            }).RunAsync(cancellationToken).ConfigureAwait(false);
            if (result.GetValue(Json))
                Console.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
            else
            {
                string cpu = report.ServerCpuMsPerAuthentication is { } ms ? string.Create(CultureInfo.InvariantCulture, $"; server CPU {ms} ms per authentication") : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"eap {report.Method} (TLS {report.Tls}) → {endpoint}: {report.PerSecond:N1} authentications/s with {report.Outstanding} in flight, {report.Seconds} s; {report.RoundsPerAuthentication} rounds each; p50 {report.P50Ms} ms, p99 {report.P99Ms} ms; {report.Rejected} rejected, {report.Failed} failed{cpu}"));
            }
            if (report.Completed == 0 && report.Rejected > 0)
                Console.Error.WriteLine("forewarn: warning: every authentication was rejected: check the user, its password or certificate, and the secret.");
            return report.Failed > 0 ? 1 : 0;
        });
        return command;
    }

    private static LoadKind? ParseMethod(string method) => method.ToLowerInvariant() switch
    {
        "pap" => LoadKind.Pap,
        "chap" => LoadKind.Chap,
        "mschapv2" or "mschap2" or "ms-chapv2" => LoadKind.MsChapV2,
        _ => null,
    };

    private static async Task<int> RunAsync(ParseResult result, LoadKind? kind, int defaultPort, Func<LoadOptions, LoadOptions> specific, CancellationToken cancellationToken)
    {
        if (kind is null)
            return CommonOptions.Fail("--method must be pap, chap or mschapv2.");
        if (!TryParseEndpoint(result.GetValue(Server)!, defaultPort, out var server))
            return CommonOptions.Fail($"--server '{result.GetValue(Server)}' is not host:port.");
        var sources = result.GetValue(Sources) is { Length: > 0 } given ? given.Select(IPAddress.Parse).ToList() : [server.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback];
        if (result.GetValue(SourceCount) is > 1 and var count)
            sources = Enumerable.Range(0, count).Select(i => Offset(sources[0], i)).ToList();
        int outstanding = result.GetValue(Outstanding);
        LoadOptions options;
        try
        {
            options = specific(new LoadOptions
            {
                Server = server,
                Secret = Encoding.UTF8.GetBytes(result.GetValue(Secret)!),
                Kind = kind.Value,
                Outstanding = outstanding,
                Rate = result.GetValue(Rate),
                Duration = TimeSpan.FromSeconds(result.GetValue(Duration)),
                Warmup = TimeSpan.FromSeconds(result.GetValue(Warmup)),
                Sockets = result.GetValue(Sockets) is > 0 and var s ? s : Math.Max(4, (outstanding + 199) / 200),
                SourceAddresses = sources,
                Timeout = TimeSpan.FromSeconds(result.GetValue(Timeout)),
                ServerProcessId = result.GetValue(ServerPid),
            });
            options.Validate();
        }
        catch (ArgumentException e)
        {
            return CommonOptions.Fail(e.Message);
        }

        var generator = new LoadGenerator(options);
        LoadReport report;
        // The progress bar goes to standard error so that --json output stays clean.
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (result.GetValue(Quiet) || Console.IsErrorRedirected)
        {
            report = await generator.RunAsync(null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            report = await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask($"{options.Kind} → {server}", maxValue: (options.Warmup + options.Duration).TotalSeconds);
                    var outcome = await generator.RunAsync(p =>
                    {
                        task.Value = Math.Min(p.Elapsed, p.Total);
                        task.Description = string.Create(CultureInfo.InvariantCulture, $"{options.Kind} → {server} {(p.Measuring ? "measuring" : "warming up")}: {p.Answered:N0} answered, {p.Timeouts:N0} lost");
                    }, cancellationToken).ConfigureAwait(false);
                    task.Value = task.MaxValue;
                    return outcome;
                }).ConfigureAwait(false);
        }

        if (result.GetValue(Json))
            Console.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
        else
            Print(report);
        // An authentication benchmark that only measured rejects measured the wrong path: say so.
        if (options.Kind is LoadKind.Pap or LoadKind.Chap or LoadKind.MsChapV2 && report.Accepted == 0 && report.Rejected > 0)
            Console.Error.WriteLine(
                $"forewarn: warning: every answer was an Access-Reject: the users do not exist or their password is not '{options.Password}'. " +
                $"Create them first, e.g. for i in $(seq 1 {options.Users}); do ./forewarn users add {string.Format(CultureInfo.InvariantCulture, options.UserFormat, 1).Replace("1", "$i", StringComparison.Ordinal)} --password {options.Password}; done");
        return report.Lost > 0 ? 1 : 0;
    }

    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static void Print(LoadReport r)
    {
        var table = new Table().AddColumns("", "").HideHeaders().Border(TableBorder.Simple);
        string load = r.Mode == "open" ? $"open loop, {r.OfferedRate:N0}/s offered" : $"closed loop, {r.Outstanding} outstanding";
        table.AddRow("load", $"{r.Kind} → {r.Server}, {load}, {r.Sockets} sockets, {r.Seconds:0.#} s measured");
        table.AddRow("throughput", $"{r.Throughput:N0} answers/s ({r.Accepted:N0} accepted, {r.Rejected:N0} rejected)");
        table.AddRow("latency ms", string.Create(CultureInfo.InvariantCulture, $"p50 {r.LatencyP50Ms:0.###}  p90 {r.LatencyP90Ms:0.###}  p99 {r.LatencyP99Ms:0.###}  p99.9 {r.LatencyP999Ms:0.###}  max {r.LatencyMaxMs:0.###}"));
        table.AddRow("lost", $"{r.Timeouts:N0} timeouts, {r.Invalid:N0} invalid, {r.Late:N0} late, {r.Unsent:N0} unsent of {r.Sent:N0} sent");
        table.AddRow("generator", string.Create(CultureInfo.InvariantCulture, $"{r.GeneratorCpuMicrosecondsPerRequest:0.##} µs CPU per answer"));
        if (r.ServerCpuMicrosecondsPerRequest is { } serverCpu)
            table.AddRow("server", string.Create(CultureInfo.InvariantCulture, $"{serverCpu:0.##} µs CPU per answer, {r.ServerResidentMiB:0.#} MiB resident"));
        AnsiConsole.Write(table);
    }

    private static bool TryParseEndpoint(string text, int defaultPort, out IPEndPoint endpoint)
    {
        if (IPEndPoint.TryParse(text, out var parsed))
        {
            endpoint = parsed.Port == 0 ? new IPEndPoint(parsed.Address, defaultPort) : parsed;
            return true;
        }
        endpoint = null!;
        return false;
    }

    private static IPAddress Offset(IPAddress first, int offset)
    {
        var bytes = first.GetAddressBytes();
        for (int i = bytes.Length - 1, carry = offset; i >= 0 && carry > 0; i--)
        {
            int sum = bytes[i] + carry;
            bytes[i] = (byte)sum;
            carry = sum >> 8;
        }
        return new IPAddress(bytes);
    }
}
