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
    private long _queued;
    // Batch commit times and the queue, for /metrics (the admin API serves every Forewarn.* meter).
    private readonly System.Diagnostics.Metrics.Meter _meter = new("Forewarn.Accounting");
    private readonly System.Diagnostics.Metrics.Histogram<double> _commitSeconds;

    private sealed record Pending(AccountingRecord Record, TaskCompletionSource<bool> Done);

    public AccountingWriter(IAccountingStore store, ILogger<AccountingWriter> logger)
    {
        _store = store;
        _logger = logger;
        _commitSeconds = _meter.CreateHistogram("forewarn.accounting.commit.duration", "s", "One batch's durable commit (fsync'd) in the accounting store",
            advice: new System.Diagnostics.Metrics.InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
        _meter.CreateObservableGauge("forewarn.accounting.queue_depth", () => Interlocked.Read(ref _queued), null, "Accounting records waiting for their commit");
        _meter.CreateObservableCounter("forewarn.accounting.duplicates", () => Duplicates, null, "Accounting records already stored (a retransmission), answered without a second copy");
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
        // Counted before it is queued, so that the reader's count never runs ahead of it.
        Interlocked.Increment(ref _queued);
        if (!_queue.Writer.TryWrite(pending))
        {
            Interlocked.Decrement(ref _queued);
            return Task.FromException<bool>(new InvalidOperationException("The accounting writer is shut down."));
        }
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
            Interlocked.Add(ref _queued, -batch.Count);
            try
            {
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                int inserted = await _store.AppendBatchAsync(records).ConfigureAwait(false);
                _commitSeconds.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
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
        _meter.Dispose();
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "Accounting commit of {Count} records failed; no response is sent, the NAS will retransmit")]
    private static partial void LogCommitFailed(ILogger logger, int count, Exception exception);
}
