using Forewarn.Core.Aaa;
using Forewarn.Core.Store;
using Forewarn.Storage.Postgres;
using Forewarn.Storage.Sqlite;

namespace Forewarn.Server;

/// <summary>Opens the store a configuration names: PostgreSQL when a connection string is given, else the data directory's SQLite file.</summary>
public static class StoreFactory
{
    /// <summary>
    /// <paramref name="freeRadiusSchema"/> (PostgreSQL only): FreeRADIUS's own tables are read and written beside
    /// Forewarn's; what they hold that Forewarn does not enforce is told to <paramref name="unsupported"/>.
    /// </summary>
    public static IForewarnStore Open(string dataDirectory, string? postgres, bool freeRadiusSchema = false, Action<string>? unsupported = null)
    {
        if (string.IsNullOrWhiteSpace(postgres))
        {
            if (freeRadiusSchema)
                throw new StartupException("Forewarn:FreeRadiusSchema needs a PostgreSQL store (Forewarn:Postgres or --postgres): FreeRADIUS's tables live in its SQL database.");
            return SqliteStore.Open(Path.Combine(DataDirectory.Ensure(dataDirectory), DataDirectory.DatabaseFile));
        }
        FreeRadiusSchema? freeRadius = null;
        if (freeRadiusSchema)
        {
            // Cleartext-Password is sealed in memory as soon as it is read, as Forewarn's own CHAP passwords are at rest.
            var sealer = PasswordSealer.FromKeyFile(Path.Combine(DataDirectory.Ensure(dataDirectory), DataDirectory.KeyFile));
            freeRadius = new FreeRadiusSchema(sealer.Seal, unsupported);
        }
        try
        {
            return PostgresStore.OpenAsync(postgres, freeRadius).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException)
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
