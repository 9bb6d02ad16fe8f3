using System.CommandLine;
using System.Text.Json;
using Forewarn.Bench.Faults;
using Forewarn.Server;

namespace Forewarn.Cli;

/// <summary>
/// The proof-under-fire benchmarks: <c>forewarn bench kill</c> (kill -9 at random moments under accounting
/// load, then every record counted), <c>overload</c> (open loop at multiples of capacity) and <c>soak</c>.
/// </summary>
internal static class FaultsCommand
{
    public static Command CreateKill()
    {
        var cycles = new Option<int>("--cycles") { Description = "Kills in a row", DefaultValueFactory = _ => 100 };
        var rate = new Option<double>("--rate") { Description = "New accounting records per second, all NASes together (retransmissions on top)", DefaultValueFactory = _ => 5000 };
        var nases = new Option<int>("--nases") { Description = "NASes (127.3.0.1 ...), each retransmitting until acknowledged", DefaultValueFactory = _ => 16 };
        var window = new Option<int>("--window") { Description = "Records each NAS keeps in flight", DefaultValueFactory = _ => 32 };
        var maxUp = new Option<double>("--max-up") { Description = "The server runs up to this many seconds (uniformly random) before each kill", DefaultValueFactory = _ => 2.5 };
        var seed = new Option<int?>("--seed") { Description = "Seed of the kill times (to repeat a run)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the work directory (the data directory and server.log)" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON on standard output" };
        var command = new Command("kill", "kill -9 the server at random moments under accounting load, restart it, again and again; then count: every acknowledged record stored, none twice")
        {
            cycles, rate, nases, window, maxUp, seed, keep, json, CommonOptions.Postgres,
        };
        command.SetAction(async (result, ct) =>
        {
            string? postgres = result.GetValue(CommonOptions.Postgres);
            var options = new KillCycleOptions
            {
                ServerCommand = FailoverCommand.ServerCommand(),
                OpenStore = data => StoreFactory.Open(data, postgres),
                Cycles = result.GetValue(cycles),
                Rate = result.GetValue(rate),
                Nases = result.GetValue(nases),
                Window = result.GetValue(window),
                MaxUpSeconds = result.GetValue(maxUp),
                Seed = result.GetValue(seed),
                Settings = postgres is null ? [] : [$"Forewarn:Postgres={postgres}"],
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                return CommonOptions.Fail(e.Message);
            }
            Console.Error.WriteLine($"kill: {options.Cycles} cycles, {options.Rate:0} records/s from {options.Nases} NASes; work directory {options.WorkDirectory}");
            try
            {
                var run = await new KillCycleRunner(options).RunAsync(line => Console.Error.WriteLine(line), ct).ConfigureAwait(false);
                if (result.GetValue(json))
                {
                    Console.Error.WriteLine(KillCycleRunner.Describe(run));
                    Console.WriteLine(JsonSerializer.Serialize(run, BenchCommand.JsonOptions));
                }
                else
                {
                    Console.WriteLine(KillCycleRunner.Describe(run));
                }
                return run.Held ? 0 : 1;
            }
            finally
            {
                if (!result.GetValue(keep) && Directory.Exists(options.WorkDirectory))
                    Directory.Delete(options.WorkDirectory, recursive: true);
            }
        });
        return command;
    }

    public static Command CreateOverload()
    {
        var multiples = new Option<string>("--multiples") { Description = "Offered load, as comma-separated multiples of the measured capacity, one phase each", DefaultValueFactory = _ => "0.5,1,2,5" };
        var seconds = new Option<double>("--seconds") { Description = "Seconds per phase", DefaultValueFactory = _ => 15 };
        var lookup = new Option<double>("--lookup-ms") { Description = "What one user lookup costs (the directory behind the server)", DefaultValueFactory = _ => 4 };
        var workers = new Option<int>("--workers") { Description = "The server's workers", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON on standard output" };
        var set = new Option<string[]>("--set") { Description = "A server setting KEY=VALUE (repeatable), e.g. Forewarn:QueueTargetMs=60000 for a plain FIFO queue" };
        var command = new Command("overload", "Offer a server multiples of its measured capacity in an open loop: goodput, latency, losses against counted drops, memory, recovery")
        {
            multiples, seconds, lookup, workers, json, set,
        };
        command.SetAction(async (result, ct) =>
        {
            var list = new List<double>();
            foreach (var item in result.GetValue(multiples)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!double.TryParse(item, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double m) || m is <= 0 or > 100)
                    return CommonOptions.Fail($"'{item}' is not a multiple of capacity (a number above 0, at most 100).");
                list.Add(m);
            }
            if (list.Count == 0 || result.GetValue(seconds) is <= 0 or > 3600 || result.GetValue(lookup) is <= 0 or > 1000 || result.GetValue(workers) is < 1 or > 4096)
                return CommonOptions.Fail("give at least one multiple, 0-3600 s per phase, a lookup of 0-1000 ms and 1-4096 workers.");
            var options = new OverloadOptions
            {
                ServerCommand = FailoverCommand.ServerCommand(),
                Multiples = list,
                PhaseSeconds = result.GetValue(seconds),
                LookupMs = result.GetValue(lookup),
                Workers = result.GetValue(workers),
                Settings = result.GetValue(set) ?? [],
            };
            try
            {
                var run = await new OverloadRunner(options).RunAsync(line => Console.Error.WriteLine(line), ct).ConfigureAwait(false);
                Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(run, BenchCommand.JsonOptions) : OverloadRunner.Table(run));
                return 0;
            }
            finally
            {
                if (Directory.Exists(options.WorkDirectory))
                    Directory.Delete(options.WorkDirectory, recursive: true);
            }
        });
        return command;
    }

    public static Command CreateSoak()
    {
        var minutes = new Option<double>("--minutes") { Description = "How long", DefaultValueFactory = _ => 60 };
        var window = new Option<double>("--window") { Description = "Seconds per measured window", DefaultValueFactory = _ => 60 };
        var share = new Option<double>("--share") { Description = "Offered load as a share of the measured mixed capacity", DefaultValueFactory = _ => 0.5 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON on standard output" };
        var command = new Command("soak", "Half of capacity for an hour, mixed PAP, MS-CHAPv2 and accounting: memory, p99, threads and descriptors per window")
        {
            minutes, window, share, json,
        };
        command.SetAction(async (result, ct) =>
        {
            if (result.GetValue(minutes) is <= 0 or > 10_080 || result.GetValue(window) is < 1 or > 3600 || result.GetValue(share) is <= 0 or > 1)
                return CommonOptions.Fail("give 0-10080 minutes, windows of 1-3600 s and a share above 0, at most 1.");
            var options = new SoakOptions
            {
                ServerCommand = FailoverCommand.ServerCommand(),
                Minutes = result.GetValue(minutes),
                WindowSeconds = result.GetValue(window),
                Share = result.GetValue(share),
            };
            try
            {
                var run = await new SoakRunner(options).RunAsync(line => Console.Error.WriteLine(line), ct).ConfigureAwait(false);
                Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(run, BenchCommand.JsonOptions) : SoakRunner.Table(run));
                return 0;
            }
            finally
            {
                if (Directory.Exists(options.WorkDirectory))
                    Directory.Delete(options.WorkDirectory, recursive: true);
            }
        });
        return command;
    }
}
