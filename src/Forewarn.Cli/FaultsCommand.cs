using System.CommandLine;
using System.Text.Json;
using Forewarn.Bench.Faults;
using Forewarn.Server;

namespace Forewarn.Cli;

/// <summary><c>forewarn bench kill</c>: kill -9 at random moments under accounting load, then every record counted.</summary>
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
}
