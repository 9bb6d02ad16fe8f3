using System.Data.Common;
using System.Text;
using Forewarn.Core.Store;

namespace Forewarn.Storage;

/// <summary>The accounting query both stores run: the same columns, filters and order (SQLite and Npgsql both take @-named parameters).</summary>
internal static class AccountingSql
{
    public static (string Sql, (string Name, object? Value)[] Parameters) Select(AccountingQuery query)
    {
        var sql = new StringBuilder("SELECT id, received_at, client, client_address, user_name, session_id, status_type, attributes, dedup_key, protocol FROM accounting WHERE 1 = 1");
        var parameters = new List<(string, object?)>();
        if (query.UserName is not null)
        {
            sql.Append(" AND user_name = @user");
            parameters.Add(("@user", query.UserName));
        }
        if (query.Client is not null)
        {
            sql.Append(" AND (client = @client OR client_address = @client)");
            parameters.Add(("@client", query.Client));
        }
        if (query.Since is { } since)
        {
            sql.Append(" AND received_at >= @since");
            parameters.Add(("@since", since.ToUnixTimeMilliseconds()));
        }
        if (query.Until is { } until)
        {
            sql.Append(" AND received_at < @until");
            parameters.Add(("@until", until.ToUnixTimeMilliseconds()));
        }
        sql.Append(" ORDER BY id LIMIT @limit");
        parameters.Add(("@limit", query.Limit));
        return (sql.ToString(), [.. parameters]);
    }

    /// <summary>One row of <see cref="Select"/>.</summary>
    public static AccountingRecord Read(DbDataReader r) => new(r.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)),
        r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5),
        (uint)r.GetInt64(6), r.GetString(7), r.GetString(8), r.GetString(9));
}
