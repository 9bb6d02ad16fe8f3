using System.CommandLine;
using Forewarn.Bench.Noise;

namespace Forewarn.Cli;

/// <summary><c>forewarn bench noise</c>: a healthy server under machine noise; every zone change and FAILOVER counted is a false one.</summary>
internal static class NoiseCommand
{
    public static Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "Minutes per load level", DefaultValueFactory = _ => 10 };
        var loads = new Option<string>("--loads") { Description = "Comma-separated load levels: light (5 logins/s) and shares of the measured capacity such as 70%", DefaultValueFactory = _ => "light,70%" };
        var build = new Option<string?>("--build") { Description = "A project or solution that `dotnet build` builds next door, again and again (default: this repository's, when found)" };
        var noBuild = new Option<bool>("--no-build-noise") { Description = "No build next door" };
        var serverCommand = new Option<string?>("--server-command") { Description = "Run another forewarn build as the server (e.g. \"dotnet /tmp/old/forewarn.dll\"), to compare monitors in one run" };
        var label = new Option<string>("--label") { Description = "The server build's name in the report", DefaultValueFactory = _ => "this build" };
        var invalid = new Option<int>("--invalid") { Description = "Invalid datagrams sent in one flood per level", DefaultValueFactory = _ => 200_000 };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON" };
        var command = new Command("noise", "A healthy server under machine noise (CPU bursts, a build next door, status every second, an invalid flood, GC): false zone changes and advisories")
        {
            minutes, loads, build, noBuild, serverCommand, label, invalid, json,
        };
        command.SetAction(async (result, ct) =>
        {
            var self = FailoverCommand.ServerCommand();
            var server = result.GetValue(serverCommand) is { Length: > 0 } given ? given.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList() : self;
            string? project = result.GetValue(noBuild) ? null : result.GetValue(build) ?? FindSolution();
            var options = new NoiseOptions
            {
                ServerCommand = server,
                Label = result.GetValue(label)!,
                Minutes = result.GetValue(minutes),
                Loads = [.. result.GetValue(loads)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
                BuildProject = project,
                InvalidDatagrams = result.GetValue(invalid),
            };
            Console.Error.WriteLine($"noise: {string.Join(", ", options.Loads)} for {options.Minutes:0.#} min each; build next door: {project ?? "none"}; work directory {options.WorkDirectory}");
            IReadOnlyList<NoiseResult> results;
            try
            {
                results = await new NoiseRunner(options).RunAsync(line => Console.Error.WriteLine(line), ct).ConfigureAwait(false);
            }
            catch (ArgumentException e)
            {
                return CommonOptions.Fail(e.Message);
            }
            Console.WriteLine(result.GetValue(json) ? NoiseRunner.Json(results) : NoiseRunner.Table(results));
            return 0;
        });
        return command;
    }

    /// <summary><c>forewarn bench detect</c>: true degradations, each on a fresh server under a steady load, and how soon the zone moves.</summary>
    public static Command CreateDetect()
    {
        var which = new Option<string>("--degradations") { Description = "Comma-separated: " + string.Join(", ", DetectRunner.All), DefaultValueFactory = _ => string.Join(",", DetectRunner.All) };
        var serverCommand = new Option<string?>("--server-command") { Description = "Run another forewarn build as the server" };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON" };
        var command = new Command("detect", "True degradations (workers, slow store, CPU hog, failing accounting, overload): how soon the zone moves") { which, serverCommand, json };
        command.SetAction(async (result, ct) =>
        {
            var server = result.GetValue(serverCommand) is { Length: > 0 } given ? given.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList() : FailoverCommand.ServerCommand();
            var list = result.GetValue(which)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (list.FirstOrDefault(d => !DetectRunner.All.Contains(d)) is { } unknown)
                return CommonOptions.Fail($"unknown degradation '{unknown}': {string.Join(", ", DetectRunner.All)}");
            var results = await new DetectRunner(new NoiseOptions { ServerCommand = server }).RunAsync(list, line => Console.Error.WriteLine(line), ct).ConfigureAwait(false);
            Console.WriteLine(result.GetValue(json)
                ? System.Text.Json.JsonSerializer.Serialize(results, BenchCommand.JsonOptions)
                : DetectRunner.Table(results));
            return 0;
        });
        return command;
    }

    /// <summary><c>forewarn bench replay TRACE...</c>: recorded monitor traces through the forecast, for its false-positive rate and lead.</summary>
    public static Command CreateReplay()
    {
        var traces = new Argument<string[]>("traces") { Description = "Trace files written by Forewarn:Health:TraceFile (bench noise keeps one per level)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("replay", "Replay recorded monitor traces through the forecast: falls called per hour (false on noise) and lead on ramps") { traces };
        command.SetAction(result =>
        {
            var missing = result.GetValue(traces)!.FirstOrDefault(t => !File.Exists(t));
            if (missing is not null)
                return CommonOptions.Fail($"no trace file '{missing}'.");
            var options = new Core.Health.HealthOptions();
            Console.WriteLine(TraceReplay.Table(result.GetValue(traces)!.SelectMany(t => TraceReplay.Run(t, options)).ToList()));
            return 0;
        });
        return command;
    }

    /// <summary>Forewarn.slnx in a parent of the running program, if this is a source checkout.</summary>
    private static string? FindSolution()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var solution = Path.Combine(directory.FullName, "Forewarn.slnx");
            if (File.Exists(solution))
                return solution;
        }
        return null;
    }
}
