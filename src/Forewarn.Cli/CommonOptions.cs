using System.CommandLine;
using Forewarn.Core.Aaa;
using Forewarn.Server;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.Configuration;

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

    /// <summary>
    /// PBKDF2 iterations for new password hashes: <paramref name="given"/> on the command line, else the
    /// data directory's forewarn.json (Forewarn:PasswordIterations), else the built-in default.
    /// </summary>
    public static bool TryPasswordIterations(ParseResult result, int? given, out int iterations, out string error)
    {
        error = "";
        iterations = given ?? PasswordHasher.DefaultIterations;
        if (given is null)
        {
            var file = Path.Combine(DataDirectoryOf(result), DataDirectory.ConfigFile);
            try
            {
                var configured = new ConfigurationBuilder().AddJsonFile(file, optional: true).Build()["Forewarn:PasswordIterations"];
                if (configured is not null && !int.TryParse(configured, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out iterations))
                {
                    error = $"{file}: Forewarn:PasswordIterations '{configured}' is not a whole number.";
                    return false;
                }
            }
            catch (InvalidDataException e)
            {
                error = $"{file} is not valid JSON: {e.InnerException?.Message ?? e.Message}";
                return false;
            }
        }
        if (iterations < 1000)
        {
            error = $"PBKDF2 iterations must be at least 1000 (given {iterations}); the default is {PasswordHasher.DefaultIterations}.";
            return false;
        }
        return true;
    }

    /// <summary>Prints an error to stderr and returns the exit code for bad usage.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine($"forewarn: {message}");
        return 2;
    }

    /// <summary>"-" reads the password from the first line of standard input, so it stays out of the process list.</summary>
    public static string? ReadPassword(string? value) => value == "-" ? Console.In.ReadLine() : value;
}
