using Forewarn.Server;

namespace Forewarn.Cli;

/// <summary>
/// Exceptions that mean the operator's input or the machine's state is wrong, not the program, turned
/// into one sentence: the file, the setting or the directory, and what is wrong with it. Anything else
/// is a bug and keeps its stack trace.
/// </summary>
internal static class OperatorErrors
{
    public static string? Describe(Exception exception) => exception switch
    {
        StartupException e => e.Message,
        // Configuration JSON that does not parse (the provider names the file).
        InvalidDataException e => $"{e.Message.TrimEnd('.')}{(e.InnerException is { } inner ? ": " + inner.Message : "")}",
        // A setting of the wrong type: "Failed to convert configuration value 'abc' at 'Forewarn:AuthPort' to type 'System.Int32'."
        InvalidOperationException e when e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal) =>
            "invalid configuration: " + e.Message.Replace("System.Int32", "a whole number", StringComparison.Ordinal).Replace("System.Boolean", "true or false", StringComparison.Ordinal).Replace("System.Double", "a number", StringComparison.Ordinal),
        Microsoft.Extensions.Options.OptionsValidationException e => "invalid configuration: " + string.Join(" ", e.Failures),
        UnauthorizedAccessException e => $"permission denied: {e.Message}",
        Microsoft.Data.Sqlite.SqliteException e => $"the database cannot be used: {e.Message} (is the data directory writable, and no other program holding the file?)",
        // PostgreSQL refused or went away mid-command (its message names the cause, never the password).
        Npgsql.PostgresException e => $"the PostgreSQL database refused: {e.MessageText} ({e.SqlState})",
        Npgsql.NpgsqlException e => $"the PostgreSQL database cannot be used: {e.Message}{(e.InnerException is { } inner ? " (" + inner.Message + ")" : "")}",
        // A malformed --postgres connection string (the message says what is wrong with it).
        FormatException e when e.Message.Contains("PostgreSQL", StringComparison.Ordinal) => e.Message,
        _ => null,
    };
}
