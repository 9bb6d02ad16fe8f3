using Forewarn.Core.Store;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server;

/// <summary>
/// Accounting that survives its database. Records go to the shared store (PostgreSQL); when it fails or
/// takes longer than <c>Forewarn:AccountingSpillAfterMs</c>, the batch is committed (fsync'd) to a local
/// SQLite spill in the data directory instead and acknowledged. A loop replays the spill in order once the
/// database answers again, oldest first, and deletes each batch from the spill only after the database
/// committed it: a crash between the two replays the batch again, and the database's unique key stores it
/// once. While anything is spilled, new records join the spill behind it, so the database receives them
/// in the order they were acknowledged. A record the database refuses for what it holds (a constraint or
/// a trigger a DBA added, a value its types reject) would hold back everything behind it forever: such a
/// batch is replayed one record at a time, and a record refused alone is set aside, fsync'd, in
/// <see cref="SetAsideFile"/> (one JSON object per line, with the database's reason), counted, logged and
/// alerted, rather than dropped or retried without end.
/// </summary>
public sealed partial class SpillingAccountingStore : IAccountingStore, IAsyncDisposable
{
    public const string SpillFile = "accounting-spill.db";
    public const string SetAsideFile = "accounting-set-aside.jsonl";
    private const int ReplayBatch = 512;

    private readonly IAccountingStore _primary;
    private readonly SqliteStore _spill;
    private readonly TimeSpan _spillAfter;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _replay;
    private long _pending;
    private long _spilled;
    private long _replayed;
    private long _setAside;
    private readonly string _setAsidePath;
    private readonly Action<string>? _alert;
    private readonly System.Diagnostics.Metrics.Meter _meter = new("Forewarn.Accounting.Spill");

    public SpillingAccountingStore(IAccountingStore primary, string dataDirectory, TimeSpan spillAfter, ILogger<SpillingAccountingStore> logger, Action<string>? alert = null)
    {
        _primary = primary;
        _spill = SqliteStore.Open(Path.Combine(DataDirectory.Ensure(dataDirectory), SpillFile));
        _setAsidePath = Path.Combine(dataDirectory, SetAsideFile);
        _alert = alert;
        _spillAfter = spillAfter;
        _logger = logger;
        // What a previous run spilled and could not replay before it stopped (or was killed) waits first.
        _pending = _spill.AccountingCount();
        if (_pending > 0)
            LogSpillFound(_logger, _pending);
        _meter.CreateObservableGauge("forewarn.accounting.spill.pending", () => Pending, null, "Accounting records acknowledged from the local spill and not yet replayed into the database");
        _meter.CreateObservableCounter("forewarn.accounting.spill.spilled", () => Spilled, null, "Accounting records committed to the local spill because the database failed or was slow");
        _meter.CreateObservableCounter("forewarn.accounting.spill.replayed", () => Replayed, null, "Spilled accounting records replayed into the database");
        _meter.CreateObservableCounter("forewarn.accounting.spill.set_aside", () => SetAside, null, "Spilled accounting records the database refused for their content, set aside in accounting-set-aside.jsonl");
        _replay = Task.Run(() => ReplayLoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Records in the spill, waiting for the database.</summary>
    public long Pending => Interlocked.Read(ref _pending);
    public long Spilled => Interlocked.Read(ref _spilled);
    public long Replayed => Interlocked.Read(ref _replayed);
    public long SetAside => Interlocked.Read(ref _setAside);

    public async Task<int> AppendBatchAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Pending == 0)
            {
                try
                {
                    return await AppendToPrimaryAsync(records, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    LogSpilling(_logger, records.Count, _spillAfter.TotalMilliseconds, e.Message);
                }
            }
            // The spill's own window of recent keys recognises a retransmission made during the outage.
            int fresh = await _spill.AppendBatchAsync(records, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _pending, fresh);
            Interlocked.Add(ref _spilled, fresh);
            return fresh;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<int> AppendToPrimaryAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_spillAfter);
        return await _primary.AppendBatchAsync(records, limit.Token).ConfigureAwait(false);
    }

    private async Task ReplayLoopAsync(CancellationToken stopping)
    {
        bool announced = false;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Pending > 0 && announced ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromSeconds(1), stopping).ConfigureAwait(false);
                if (Pending == 0)
                {
                    announced = false;
                    continue;
                }
                // Outside the gate: a database that is still down costs the writers nothing.
                using (var probe = CancellationTokenSource.CreateLinkedTokenSource(stopping))
                {
                    probe.CancelAfter(_spillAfter);
                    await _primary.ProbeWriteAsync(probe.Token).ConfigureAwait(false);
                }
                if (!announced)
                {
                    LogReplaying(_logger, Pending);
                    announced = true;
                }
                await ReplayOneBatchAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                // Still down, or failed mid-batch: the spill keeps everything; try again in a second.
                announced = false;
            }
        }
    }

    private async Task ReplayOneBatchAsync(CancellationToken stopping)
    {
        await _gate.WaitAsync(stopping).ConfigureAwait(false);
        try
        {
            var batch = await _spill.QueryAsync(new AccountingQuery(Limit: ReplayBatch), stopping).ConfigureAwait(false);
            if (batch.Count == 0)
            {
                Interlocked.Exchange(ref _pending, 0);
                return;
            }
            try
            {
                await AppendToPrimaryAsync(batch, stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (IsRefusedForContent(e))
            {
                await ReplayOneByOneAsync(batch, stopping).ConfigureAwait(false);
            }
            await _spill.RemoveAccountingThroughAsync(batch[^1].Id, stopping).ConfigureAwait(false);
            Interlocked.Add(ref _replayed, batch.Count);
            long left = Interlocked.Add(ref _pending, -batch.Count);
            if (left <= 0)
            {
                Interlocked.Exchange(ref _pending, _spill.AccountingCount());
                if (Pending == 0)
                    LogReplayed(_logger, Replayed);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The database refused the statement for the data it carried (SQLSTATE class 22, data exception; 23,
    /// integrity constraint; P0, raised by a trigger), not because it is down, slow or misconfigured.
    /// </summary>
    private static bool IsRefusedForContent(Exception e) =>
        e is Npgsql.PostgresException { SqlState: var state } && (state.StartsWith("22", StringComparison.Ordinal) || state.StartsWith("23", StringComparison.Ordinal) || state.StartsWith("P0", StringComparison.Ordinal));

    /// <summary>A batch the database refused: each record on its own, so that only a record refused alone is set aside.</summary>
    private async Task ReplayOneByOneAsync(IReadOnlyList<AccountingRecord> batch, CancellationToken stopping)
    {
        foreach (var record in batch)
        {
            try
            {
                await AppendToPrimaryAsync([record], stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (IsRefusedForContent(e))
            {
                string reason = ((Npgsql.PostgresException)e).MessageText;
                var line = System.Text.Json.JsonSerializer.Serialize(new SetAsideRecord(DateTimeOffset.UtcNow, reason, record), SetAsideJson.Default.SetAsideRecord);
                var mode = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, Options = FileOptions.WriteThrough };
                if (!OperatingSystem.IsWindows())
                    mode.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // accounting holds user names and command lines
                await using (var file = new FileStream(_setAsidePath, mode))
                {
                    await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(line + "\n"), stopping).ConfigureAwait(false);
                    file.Flush(flushToDisk: true);
                }
                Interlocked.Increment(ref _setAside);
                LogSetAside(_logger, record.ClientName, record.SessionId, reason, _setAsidePath);
                _alert?.Invoke($"the accounting database refused a record from {record.ClientName} (session {record.SessionId}): {reason}; it is set aside in {_setAsidePath}");
            }
        }
    }

    /// <summary>The database's own health: an outage is the accounting sink's failure (a dependent service), even while the spill keeps acknowledging.</summary>
    public Task ProbeWriteAsync(CancellationToken cancellationToken = default) => _primary.ProbeWriteAsync(cancellationToken);

    public Task<IReadOnlyList<AccountingRecord>> QueryAsync(AccountingQuery query, CancellationToken cancellationToken = default) => _primary.QueryAsync(query, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _replay.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        _spill.Dispose();
        _stopping.Dispose();
        _meter.Dispose();
        _gate.Dispose();
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "The accounting database did not commit {Count} records within {LimitMs} ms ({Reason}); they are committed to the local spill and acknowledged, and will be replayed in order")]
    private static partial void LogSpilling(ILogger logger, int count, double limitMs, string reason);

    [LoggerMessage(EventId = 211, Level = LogLevel.Information, Message = "The accounting database answers again; replaying {Count} spilled records in order")]
    private static partial void LogReplaying(ILogger logger, long count);

    [LoggerMessage(EventId = 212, Level = LogLevel.Information, Message = "The accounting spill is empty: {Count} records replayed into the database so far")]
    private static partial void LogReplayed(ILogger logger, long count);

    [LoggerMessage(EventId = 214, Level = LogLevel.Error, Message = "The accounting database refused a spilled record from {Client} (session {Session}): {Reason}; it is set aside in {File}, and the records behind it are replayed")]
    private static partial void LogSetAside(ILogger logger, string client, string? session, string reason, string file);

    [LoggerMessage(EventId = 213, Level = LogLevel.Warning, Message = "The local accounting spill holds {Count} records from an earlier run; they are replayed before new ones reach the database")]
    private static partial void LogSpillFound(ILogger logger, long count);
}

/// <summary>One line of the set-aside file: when, why, and the record as it was acknowledged.</summary>
public sealed record SetAsideRecord(DateTimeOffset SetAsideAt, string Reason, AccountingRecord Record);

[System.Text.Json.Serialization.JsonSerializable(typeof(SetAsideRecord))]
internal sealed partial class SetAsideJson : System.Text.Json.Serialization.JsonSerializerContext;
