using Forewarn.Core.Store;
using Forewarn.Storage.Postgres;
using Forewarn.Storage.Sqlite;

namespace Forewarn.Server;

/// <summary>Opens the store a configuration names: PostgreSQL when a connection string is given, else the data directory's SQLite file.</summary>
public static class StoreFactory
{
    public static IForewarnStore Open(string dataDirectory, string? postgres)
    {
        if (string.IsNullOrWhiteSpace(postgres))
            return SqliteStore.Open(Path.Combine(DataDirectory.Ensure(dataDirectory), DataDirectory.DatabaseFile));
        try
        {
            return PostgresStore.OpenAsync(postgres).GetAwaiter().GetResult();
        }
        catch (FormatException e)
        {
            throw new StartupException(e.Message);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            string where = PostgresStore.Describe(PostgresStore.Parse(postgres));
            throw new StartupException($"cannot use the PostgreSQL database {where}: {e.Message}{(e.InnerException is { } inner ? " (" + inner.Message + ")" : "")}");
        }
    }
}
