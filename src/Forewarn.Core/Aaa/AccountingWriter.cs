using System.Threading.Channels;
using Forewarn.Core.Store;
using Microsoft.Extensions.Logging;

namespace Forewarn.Core.Aaa;

/// <summary>
/// Group commit for accounting: requests queue their record and wait; one loop takes whatever has
/// queued (up to <see cref="MaxBatch"/>), stores it in one durable transaction, then releases every
/// waiter at once. A failed commit fails every waiter in the batch, so no Accounting-Response is sent
/// for a record that is not on disk and the NAS retransmits.
/// </summary>
public sealed partial class AccountingWriter : IAsyncDisposable
{
    public const int MaxBatch = 512;

    private readonly IAccountingStore _store;
    private readonly ILogger _logger;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private long _committed;
    private long _duplicates;
    private long _batches;
    private long _failures;

    private sealed record Pending(AccountingRecord Record, TaskCompletionSource<bool> Done);

    public AccountingWriter(IAccountingStore store, ILogger<AccountingWriter> logger)
    {
        _store = store;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public long Committed => Interlocked.Read(ref _committed);
    public long Duplicates => Interlocked.Read(ref _duplicates);
    public long Batches => Interlocked.Read(ref _batches);
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>True from a failed commit until the next one succeeds.</summary>
    public bool LastCommitFailed { get; private set; }

    /// <summary>Completes once the record is durably stored: true if new, false if it was already there.</summary>
    public Task<bool> WriteAsync(AccountingRecord record)
    {
        // Continuations run synchronously, on the one work item that completes the whole batch (see RunAsync).
        var pending = new Pending(record, new TaskCompletionSource<bool>(TaskCreationOptions.None));
        if (!_queue.Writer.TryWrite(pending))
            return Task.FromException<bool>(new InvalidOperationException("The accounting writer is shut down."));
        return pending.Done.Task;
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        var records = new List<AccountingRecord>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            records.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
                records.Add(pending.Record);
            }
            try
            {
                int inserted = await _store.AppendBatchAsync(records).ConfigureAwait(false);
                Interlocked.Add(ref _committed, inserted);
                Interlocked.Add(ref _duplicates, records.Count - inserted);
                Interlocked.Increment(ref _batches);
                LastCommitFailed = false;
                // Which records were duplicates does not matter to the NAS: each gets its response. The
                // whole batch is answered by one work item, in a loop, while this loop commits the next:
                // one hand-off per batch rather than one thread-pool wake-up per record.
                ThreadPool.UnsafeQueueUserWorkItem(static done =>
                {
                    foreach (var pending in done)
                        pending.Done.TrySetResult(true);
                }, batch.ToArray(), preferLocal: false);
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref _failures);
                LastCommitFailed = true;
                LogCommitFailed(_logger, batch.Count, e);
                ThreadPool.UnsafeQueueUserWorkItem(static failed =>
                {
                    foreach (var pending in failed.Batch)
                        pending.Done.TrySetException(failed.Error);
                }, (Batch: batch.ToArray(), Error: e), preferLocal: false);
            }
        }
    }

    /// <summary>Stops taking records and waits until every queued one is committed (graceful shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "Accounting commit of {Count} records failed; no response is sent, the NAS will retransmit")]
    private static partial void LogCommitFailed(ILogger logger, int count, Exception exception);
}
