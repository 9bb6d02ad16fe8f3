using System.CommandLine;
using Forewarn.Core.Aaa;
using Forewarn.Server;
using Forewarn.Storage.Sqlite;

namespace Forewarn.Cli;

internal static class CommonOptions
{
    public static readonly Option<string?> Data = new("--data")
    {
        Description = "Data directory (default: $FOREWARN_DATA, else ~/.local/share/forewarn)",
        Recursive = true,
    };

    public static string DataDirectoryOf(ParseResult result) => DataDirectory.Resolve(result.GetValue(Data));

    public static SqliteStore OpenStore(ParseResult result)
    {
        var directory = DataDirectory.Ensure(DataDirectoryOf(result));
        return SqliteStore.Open(Path.Combine(directory, DataDirectory.DatabaseFile));
    }

    public static PasswordSealer OpenSealer(ParseResult result) =>
        PasswordSealer.FromKeyFile(Path.Combine(DataDirectory.Ensure(DataDirectoryOf(result)), DataDirectory.KeyFile));

    /// <summary>Prints an error to stderr and returns the exit code for bad usage.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine($"forewarn: {message}");
        return 2;
    }

    /// <summary>"-" reads the password from the first line of standard input, so it stays out of the process list.</summary>
    public static string? ReadPassword(string? value) => value == "-" ? Console.In.ReadLine() : value;
}
