using System.CommandLine;
using System.Globalization;
using Forewarn.Core.Store;

namespace Forewarn.Cli;

internal static class AccountingCommand
{
    public static Command Create()
    {
        var command = new Command("accounting", "Read accounting records");
        var user = new Option<string?>("--user") { Description = "Only this user" };
        var client = new Option<string?>("--client") { Description = "Only this client (name or address)" };
        var since = new Option<string?>("--since") { Description = "From this time (ISO 8601, UTC unless stated)" };
        var until = new Option<string?>("--until") { Description = "Before this time" };
        var limit = new Option<int>("--limit") { Description = "At most this many records", DefaultValueFactory = _ => 100 };
        var verbose = new Option<bool>("--attributes") { Description = "Print every attribute of each record" };
        var list = new Command("list", "List accounting records, oldest first") { user, client, since, until, limit, verbose };
        list.SetAction(async (result, cancellationToken) =>
        {
            if (!TryTime(result.GetValue(since), out var from) || !TryTime(result.GetValue(until), out var to))
                return CommonOptions.Fail("--since and --until take ISO 8601 times, e.g. 2026-11-27T10:00:00Z.");
            if (result.GetValue(limit) < 1)
                return CommonOptions.Fail($"--limit must be at least 1 (given {result.GetValue(limit)}).");
            using var store = CommonOptions.OpenStore(result);
            var records = await store.QueryAsync(new AccountingQuery(result.GetValue(user), result.GetValue(client), from, to, result.GetValue(limit)), cancellationToken).ConfigureAwait(false);
            foreach (var r in records)
            {
                Console.WriteLine($"{r.Id}\t{r.ReceivedAt:yyyy-MM-ddTHH:mm:ss.fffZ}\t{r.ClientName}\t{StatusName(r.StatusType, r.Protocol)}\t{r.UserName ?? "-"}\t{r.SessionId ?? "-"}\t{r.Protocol}");
                if (result.GetValue(verbose))
                {
                    foreach (var line in r.Attributes.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                        Console.WriteLine($"\t{line}");
                }
            }
            Console.Error.WriteLine($"{records.Count} records");
            return 0;
        });
        command.Subcommands.Add(list);
        return command;
    }

    private static string StatusName(uint status, string protocol) => status switch
    {
        1 => "Start",
        2 => "Stop",
        3 => protocol == "tacacs" ? "Watchdog" : "Interim-Update",
        7 => "Accounting-On",
        8 => "Accounting-Off",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    private static bool TryTime(string? text, out DateTimeOffset? time)
    {
        time = null;
        if (text is null)
            return true;
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            return false;
        time = parsed;
        return true;
    }
}
