using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Forewarn.Bench.Failover;
using Spectre.Console;

namespace Forewarn.Cli;

/// <summary><c>forewarn bench failover</c> (the measurement) and <c>forewarn demo</c> (the same story, shown live).</summary>
internal static class FailoverCommand
{
    private static readonly Option<int> Devices = new("--devices") { Description = "Simulated network devices, each on its own 127.3.x.y address", DefaultValueFactory = _ => 1000 };
    private static readonly Option<double> Rate = new("--rate") { Description = "Requests per second per device", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> Servers = new("--servers") { Description = "Servers (127.0.80.1 ...); the first is degraded", DefaultValueFactory = _ => 3 };
    private static readonly Option<string> Kind = new("--degradation") { Description = "workers, cpu-hog, slow-store, fail-accounting, crash, hang, loss (30 % of its datagrams), overload (offered load ramped to twice its measured capacity), oscillate (its score swung ±0.05 around each threshold) or steady (load swung 50–90 % of its capacity: nothing should happen)", DefaultValueFactory = _ => "workers" };
    private static readonly Option<string> Profile = new("--profile") { Description = "Classic clients: cisco (T=5 s, R=3, no dead time) or rfc5080 (back-off 2..16 s, R=3)", DefaultValueFactory = _ => "cisco" };
    private static readonly Option<double> Ramp = new("--ramp") { Description = "Seconds over which the degradation grows (0: a step)", DefaultValueFactory = _ => 10 };
    private static readonly Option<double> Baseline = new("--baseline") { Description = "Seconds of steady load before the degradation", DefaultValueFactory = _ => 6 };
    private static readonly Option<double> Degrade = new("--degrade") { Description = "Seconds the degradation lasts", DefaultValueFactory = _ => 25 };
    private static readonly Option<double> Return = new("--return") { Description = "At most this many seconds for the devices to come back", DefaultValueFactory = _ => 30 };
    private static readonly Option<string> Carrier = new("--carrier") { Description = "Advisory carrier: udp or icmp (raw sockets: root)", DefaultValueFactory = _ => "udp" };
    private static readonly Option<string?> Out = new("--out") { Description = "Directory for the report (report.md, results.json, one SVG plot per mode)" };
    private static readonly Option<bool> Json = new("--json") { Description = "Print the results as JSON on standard output" };

    public static Command CreateBench()
    {
        var modes = new Option<string>("--modes") { Description = "Comma-separated: classic, advisory, forecast", DefaultValueFactory = _ => "classic,advisory,forecast" };
        var command = new Command("failover", "Degrade a server under a fleet of devices: classic timeout failover against Forewarn advisories")
        {
            Devices, Rate, Servers, Kind, modes, Profile, Ramp, Baseline, Degrade, Return, Carrier, Out, Json,
        };
        command.SetAction(async (result, ct) =>
        {
            if (!TryOptions(result, Devices, out var options, out var error))
                return CommonOptions.Fail(error);
            var list = new List<FailoverMode>();
            foreach (var name in result.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!Enum.TryParse<FailoverMode>(name, ignoreCase: true, out var mode))
                    return CommonOptions.Fail($"unknown mode '{name}' (classic, advisory, forecast).");
                list.Add(mode);
            }
            var results = new List<FailoverResult>();
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            foreach (var mode in list)
            {
                var runner = new FailoverRunner(options with { Mode = mode, WorkDirectory = Path.Combine(options.WorkDirectory, mode.ToString().ToLowerInvariant()) });
                var run = runner.RunAsync(ct);
                if (Console.IsErrorRedirected)
                {
                    Console.Error.WriteLine($"{mode}: running ({options.Devices} devices, {options.Degradation})...");
                    results.Add(await run.ConfigureAwait(false));
                }
                else
                {
                    await console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn())
                        .StartAsync(async context =>
                        {
                            var task = context.AddTask(mode.ToString(), maxValue: 1);
                            while (!run.IsCompleted)
                            {
                                var live = runner.Live;
                                task.Value = Math.Min(0.99, live.Elapsed / live.Total);
                                task.Description = $"{mode}: {live.Phase}";
                                await Task.WhenAny(run, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
                            }
                            task.Value = 1;
                        }).ConfigureAwait(false);
                    results.Add(await run.ConfigureAwait(false));
                }
                Console.Error.WriteLine(FailoverRunner.Describe(results[^1]));
            }
            var directory = WriteReport(result, results, options);
            if (result.GetValue(Json))
                Console.WriteLine(JsonSerializer.Serialize(results.Select(r => r with { Timeline = [] }), BenchCommand.JsonOptions));
            else
                Console.WriteLine(FailoverReport.Table(results));
            Console.Error.WriteLine($"Report: {Path.Combine(directory, "report.md")}");
            return 0;
        });
        return command;
    }

    public static Command CreateDemo()
    {
        var devices = new Option<int>("--devices") { Description = "Simulated network devices, each on its own 127.3.x.y address", DefaultValueFactory = _ => 200 };
        var command = new Command("demo", "Watch it work: servers and a fleet on loopback; one server degrades, the fleet moves before it fails, then returns in batches")
        {
            devices, Rate, Servers, Kind, Carrier, Out,
        };
        command.SetAction(async (result, ct) =>
        {
            if (!TryOptions(result, devices, out var options, out var error))
                return CommonOptions.Fail(error);
            options = options with
            {
                Mode = FailoverMode.Forecast,
                BaselineSeconds = 6,
                DegradeSeconds = 15,
                ReturnSeconds = 25,
                RampSeconds = 8,
            };
            AnsiConsole.MarkupLine($"[bold]Forewarn demo[/]: {options.Servers} servers on 127.0.80.x, {options.Devices} devices on 127.3.x.y, each sending {options.RatePerDevice:0.#} login/s to server A first.");
            AnsiConsole.MarkupLine($"After {options.BaselineSeconds:0} s server A's workers are exhausted ({options.Degradation}), growing over {options.RampSeconds:0} s; after {options.DegradeSeconds:0} s more it is healed.");
            var runner = new FailoverRunner(options);
            var run = runner.RunAsync(ct);
            if (Console.IsOutputRedirected)
            {
                while (!run.IsCompleted)
                {
                    await Task.WhenAny(run, Task.Delay(1000, CancellationToken.None)).ConfigureAwait(false);
                    if (runner.Live.Latest is { } p)
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.At,6:0.0}s {runner.Live.Phase}: ") + string.Join("  ", Enumerable.Range(0, runner.Live.ServerNames.Count)
                            .Select(s => string.Create(CultureInfo.InvariantCulture, $"{(char)('A' + s)} score {p.Score[s]:0.00} {p.Zone[s]} {p.Attached[s]} devices"))));
                }
            }
            else
            {
                await AnsiConsole.Live(new Text("starting servers...")).StartAsync(async context =>
                {
                    while (!run.IsCompleted)
                    {
                        await Task.WhenAny(run, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
                        context.UpdateTarget(View(runner.Live));
                    }
                }).ConfigureAwait(false);
            }
            var outcome = await run.ConfigureAwait(false);
            AnsiConsole.WriteLine();
            AnsiConsole.MarkupLine(Markup.Escape(Summary(outcome)));
            var directory = WriteReport(result, [outcome], options);
            AnsiConsole.MarkupLine($"Report with a plot: [link]{Markup.Escape(Path.Combine(directory, "report.md"))}[/]");
            return 0;
        });
        return command;
    }

    private static string Summary(FailoverResult r) =>
        FormattableString.Invariant($"Server A's zone went to Defer {r.DeferredAfter:0.0} s after the degradation began ({r.DeferCause}); ")
        + FormattableString.Invariant($"{r.Moved}/{r.Devices} devices moved, 99 % within {r.Moved99After:0.00} s; ")
        + FormattableString.Invariant($"{r.Failed} requests failed and {r.Late} took longer than T = {r.TimeoutSeconds:0} s out of {r.RequestsInEvent:N0}; ")
        + FormattableString.Invariant($"{r.SignallingPerDevice:0.##} FAILOVER messages per device (retransmissions included). After the heal, {r.Returned}/{r.Devices} came back")
        + (r.AllBackAfter is { } back ? FormattableString.Invariant($" within {back:0.0} s") : "")
        + FormattableString.Invariant($", server A's worst score {r.WorstScoreDuringReturn:0.00} (connect threshold {r.ConnectThreshold:0.00}).");

    private static Table View(FailoverLive live)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(live.Phase)}[/]  {live.Elapsed:0.0} s")
            .AddColumns("server", "score", "forecast", "zone", "devices attached");
        if (live.Latest is { } p)
        {
            for (int s = 0; s < live.ServerNames.Count; s++)
            {
                string zone = p.Zone[s] switch { "Accept" => "[green]Accept[/]", "Defer" => "[red]Defer[/]", "down" => "[grey]down[/]", var z => $"[yellow]{z}[/]" };
                int bar = (int)Math.Round(20.0 * p.Attached[s] / Math.Max(1, live.Devices));
                table.AddRow(Markup.Escape(live.ServerNames[s]), Score(p.Score[s]), Score(p.Predicted[s]), zone, $"{new string('█', bar),-20} {p.Attached[s]}");
            }
            table.Caption(string.Create(CultureInfo.InvariantCulture, $"fleet: {p.AnswersPerSecond:N0} answers/s, {p.Failed} failed, {p.Late} later than T"));
        }
        return table;
    }

    private static string Score(double? score) => score is { } s
        ? $"[{(s >= 0.5 ? "green" : s >= 0.3 ? "yellow" : "red")}]{s.ToString("0.00", CultureInfo.InvariantCulture)}[/]"
        : "[grey]–[/]";

    private static bool TryOptions(ParseResult result, Option<int> devices, out FailoverOptions options, out string error)
    {
        options = null!;
        error = "";
        var kind = result.GetValue(Kind)!.Replace("-", "", StringComparison.Ordinal);
        if (!Enum.TryParse<Degradation>(kind, ignoreCase: true, out var degradation))
        {
            error = $"unknown degradation '{result.GetValue(Kind)}' (workers, cpu-hog, slow-store, fail-accounting, crash, hang, loss, overload, oscillate, steady).";
            return false;
        }
        options = new FailoverOptions
        {
            ServerCommand = ServerCommand(),
            Devices = result.GetValue(devices),
            RatePerDevice = result.GetValue(Rate),
            Servers = result.GetValue(Servers),
            Degradation = degradation,
            Profile = result.GetResult(Profile) is null ? "cisco" : result.GetValue(Profile)!,
            RampSeconds = result.GetResult(Ramp) is null ? 10 : result.GetValue(Ramp),
            BaselineSeconds = result.GetResult(Baseline) is null ? 6 : result.GetValue(Baseline),
            DegradeSeconds = result.GetResult(Degrade) is null ? 25 : result.GetValue(Degrade),
            ReturnSeconds = result.GetResult(Return) is null ? 30 : result.GetValue(Return),
            Carrier = result.GetValue(Carrier)!,
        };
        try
        {
            options.Validate();
            return true;
        }
        catch (ArgumentException e)
        {
            error = e.Message;
            return false;
        }
    }

    /// <summary>This very program, to start the servers with: the apphost, or dotnet and this assembly.</summary>
    internal static List<string> ServerCommand()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, typeof(FailoverCommand).Assembly.Location] : [host];
    }

    private static string WriteReport(ParseResult result, IReadOnlyList<FailoverResult> results, FailoverOptions options)
    {
        var directory = Path.GetFullPath(result.GetValue(Out) ?? Path.Combine(options.WorkDirectory, "report"));
        Directory.CreateDirectory(directory);
        var plots = new List<string>();
        var names = Enumerable.Range(0, options.Servers).Select(i => $"server {(char)('A' + i)} ({options.ServerAddress(i)})").ToList();
        foreach (var r in results)
        {
            var file = $"failover-{r.Degradation}-{r.Mode}.svg";
            File.WriteAllText(Path.Combine(directory, file), FailoverReport.Svg(r, names));
            plots.Add(file);
        }
        string command = "forewarn " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
        File.WriteAllText(Path.Combine(directory, "report.md"), FailoverReport.Markdown(results, command, plots));
        File.WriteAllText(Path.Combine(directory, "results.json"), JsonSerializer.Serialize(results, BenchCommand.JsonOptions));
        return directory;
    }
}
