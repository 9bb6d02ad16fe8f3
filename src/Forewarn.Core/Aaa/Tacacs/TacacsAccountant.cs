using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Clients;
using Forewarn.Core.Store;
using Forewarn.Protocol.Tacacs;

namespace Forewarn.Core.Aaa.Tacacs;

/// <summary>
/// TACACS+ accounting (RFC 8907 §7): start, stop and watchdog records with every argument, stored through
/// the same group-committing <see cref="AccountingWriter"/> as RADIUS accounting, and answered SUCCESS only
/// once the record is on disk. A failed commit is answered ERROR (the device tries its next server). A
/// record sent again (a device that reconnected and resent it) has the same content, so the same dedup key,
/// and is stored once.
/// </summary>
public sealed class TacacsAccountant(AccountingWriter writer, TimeProvider time)
{
    public async ValueTask<AcctReply> AccountAsync(AcctRequest request, RadiusClient client, string sourceAddress, CancellationToken cancellationToken)
    {
        var record = BuildRecord(request, client, sourceAddress, time.GetUtcNow());
        if (record is null)
            return new AcctReply("Invalid accounting flags"u8.ToArray(), [], AcctStatus.Error);
        try
        {
            var stored = writer.WriteAsync(record);
            await (cancellationToken.CanBeCanceled ? stored.WaitAsync(cancellationToken) : stored).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new AcctReply("The record could not be stored"u8.ToArray(), [], AcctStatus.Error);
        }
        return new AcctReply([], [], AcctStatus.Success);
    }

    /// <summary>
    /// The record: status 1 start, 2 stop, 3 watchdog (RADIUS's Interim-Update), the session from
    /// <c>task_id</c>, and as attributes the header fields and every argument, one a line. Null for a flag
    /// combination RFC 8907 §7.2 does not allow (none, or start with stop).
    /// </summary>
    public static AccountingRecord? BuildRecord(AcctRequest request, RadiusClient client, string sourceAddress, DateTimeOffset now)
    {
        uint status;
        var flags = request.Flags & (AcctFlags.Start | AcctFlags.Stop | AcctFlags.Watchdog);
        if (flags == AcctFlags.Start)
            status = 1;
        else if (flags == AcctFlags.Stop)
            status = 2;
        else if (flags is AcctFlags.Watchdog or (AcctFlags.Watchdog | AcctFlags.Start))
            status = 3;
        else
            return null;
        string? user = request.User.Length > 0 ? Encoding.UTF8.GetString(request.User) : null;
        var text = new StringBuilder();
        text.Append("flags = ").Append(flags).Append('\n');
        text.Append("user = ").Append(Logging.LogText.Escape(user ?? "")).Append('\n');
        text.Append("port = ").Append(Logging.LogText.Escape(Encoding.UTF8.GetString(request.Port))).Append('\n');
        text.Append("rem_addr = ").Append(Logging.LogText.Escape(Encoding.UTF8.GetString(request.RemoteAddress))).Append('\n');
        text.Append("priv_lvl = ").Append(request.PrivilegeLevel).Append('\n');
        text.Append("authen_method = ").Append(request.Method).Append('\n');
        text.Append("authen_type = ").Append(request.AuthenType).Append('\n');
        text.Append("authen_service = ").Append(request.Service).Append('\n');
        string? session = null;
        foreach (var octets in request.Arguments)
        {
            string argument = Encoding.UTF8.GetString(octets);
            var (name, value) = TacacsAuthorizer.Split(argument);
            if (name == "task_id")
                session = value;
            text.Append(Logging.LogText.Escape(name)).Append(" = ").Append(Logging.LogText.Escape(value)).Append('\n');
        }
        return new AccountingRecord(0, now, client.Name, sourceAddress, user, session, status, text.ToString(), DedupKey(request, client.Name), "tacacs");
    }

    /// <summary>SHA-256 over the client name, the flags, the user, port and remote address, and every argument, each length-prefixed.</summary>
    public static string DedupKey(AcctRequest request, string clientName)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var length = new byte[4];
        void Add(ReadOnlySpan<byte> field)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(length, field.Length);
            hash.AppendData(length);
            hash.AppendData(field);
        }
        Add("tacacs"u8);
        Add(Encoding.UTF8.GetBytes(clientName));
        Add([(byte)request.Flags]);
        Add(request.User);
        Add(request.Port);
        Add(request.RemoteAddress);
        foreach (var argument in request.Arguments)
            Add(argument);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
