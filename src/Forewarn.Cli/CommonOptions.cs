using System.CommandLine;
using Forewarn.Core.Aaa;
using Forewarn.Server;
using Forewarn.Core.Store;
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

    public static readonly Option<string?> Postgres = new("--postgres")
    {
        Description = "A PostgreSQL store instead of the data directory's SQLite file: a connection string such as "
            + "\"Host=127.0.0.1;Database=forewarn;Username=forewarn\" (the password from PGPASSWORD or ~/.pgpass, never here; "
            + "default: Forewarn:Postgres in forewarn.json or the environment)",
        Recursive = true,
    };

    /// <summary>
    /// The PostgreSQL connection string: --postgres, else Forewarn:Postgres in the data directory's forewarn.json
    /// or the environment (Forewarn__Postgres), as the server reads it; null for the SQLite file. A password given
    /// on the command line is refused: every user of the machine could read it in the process list.
    /// </summary>
    public static string? PostgresOf(ParseResult result)
    {
        if (result.GetValue(Postgres) is { } given)
        {
            if (Storage.Postgres.PostgresStore.Parse(given).Password is not null)
                throw new StartupException("--postgres must not carry the password (the process list shows it to every user of this machine): put it in PGPASSWORD, a password file (~/.pgpass, or Passfile= in the connection string), or Forewarn:Postgres in forewarn.json.");
            return given;
        }
        return Configured(result, "Forewarn:Postgres");
    }

    /// <summary>A setting as the server reads it: the data directory's forewarn.json, then the environment.</summary>
    private static string? Configured(ParseResult result, string key) =>
        new ConfigurationBuilder().AddJsonFile(Path.Combine(DataDirectoryOf(result), DataDirectory.ConfigFile), optional: true)
            .AddEnvironmentVariables().Build()[key];

    /// <summary>The store the server would use, with FreeRADIUS's tables when Forewarn:FreeRadiusSchema says so.</summary>
    public static IForewarnStore OpenStore(ParseResult result)
    {
        string? freeRadius = Configured(result, "Forewarn:FreeRadiusSchema");
        bool withFreeRadius = freeRadius is not null && (bool.TryParse(freeRadius, out bool on)
            ? on : throw new StartupException($"Forewarn:FreeRadiusSchema is '{freeRadius}', not true or false."));
        return StoreFactory.Open(DataDirectoryOf(result), PostgresOf(result), withFreeRadius,
            reason => Console.Error.WriteLine($"forewarn: FreeRADIUS schema: {reason}"));
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

    /// <summary>A port option: 0..65535, and a plain sentence otherwise (not a .NET type name).</summary>
    public static Option<int?> Port(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = argument =>
        {
            var token = argument.Tokens.Count > 0 ? argument.Tokens[0].Value : "";
            if (int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) && port <= 65535)
                return port;
            argument.AddError($"{name} '{token}' is not a port: give a number from 0 to 65535 (0 picks a free port).");
            return null;
        },
    };

    /// <summary>Prints an error to stderr and returns the exit code for bad usage.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine($"forewarn: {message}");
        return 2;
    }

    /// <summary>"-" reads the password from the first line of standard input, so it stays out of the process list.</summary>
    public static string? ReadPassword(string? value) => value == "-" ? Console.In.ReadLine() : value;

    /// <summary>
    /// A secret from, in order: <paramref name="value"/> ("-": the first line of standard input), the
    /// first line of <paramref name="file"/>, or the environment variable <paramref name="environment"/>.
    /// Only the first two keep it out of the process list and the shell's history; null when none is given.
    /// </summary>
    public static bool TryReadSecret(string? value, string? file, string environment, out string? secret, out string error)
    {
        error = "";
        secret = null;
        if (value is not null)
            secret = value == "-" ? Console.In.ReadLine() : value;
        else if (file is not null)
        {
            try
            {
                secret = File.ReadLines(file).FirstOrDefault() ?? "";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"cannot read the secret from '{file}': {e.Message}";
                return false;
            }
        }
        else
            secret = Environment.GetEnvironmentVariable(environment);
        secret = secret?.TrimEnd('\r');
        return true;
    }

    /// <summary>
    /// A TACACS+ enable secret from --enable-secret-file or $FOREWARN_ENABLE_SECRET (never typed on the
    /// command line), hashed with PBKDF2; null hash when neither is given.
    /// </summary>
    public static bool TryEnableHash(string? file, int iterations, out string? hash, out string error)
    {
        hash = null;
        if (!CommonOptions.TryReadSecret(null, file, "FOREWARN_ENABLE_SECRET", out var secret, out error))
            return false;
        if (secret is null)
            return true;
        if (secret.Length == 0)
        {
            error = "the enable secret may not be empty.";
            return false;
        }
        hash = Forewarn.Core.Aaa.PasswordHasher.Hash(secret, iterations);
        return true;
    }
}
