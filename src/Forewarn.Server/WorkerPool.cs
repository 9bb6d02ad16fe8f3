using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Forewarn.Server;

/// <summary>A request waiting for a worker, from any protocol's listener.</summary>
public interface IQueuedWork
{
    /// <summary>When the request reached the host (a TimeProvider timestamp).</summary>
    long ReceivedAt { get; }

    /// <summary>Runs on a worker already acquired for it; the work releases it (<see cref="WorkerPool.Release"/>) when done.</summary>
    void Run(long started);

    /// <summary>Its client has stopped waiting (it queued past Forewarn:QueueTimeoutMs): answer or drop cheaply, without a worker.</summary>
    void Expire();
}

/// <summary>
/// Admission for every protocol: at most <see cref="ForewarnOptions.Workers"/> requests in processing at
/// once ("workers"), beyond that one bounded FIFO queue, beyond that a refusal the listener counts as
/// QueueFull. RADIUS datagrams and TACACS+ packets share the bound and the queue, so overload from either
/// moves the score; the busy time and queueing delay sums are what the workers and queue probes read.
/// A worker is a slot, not a thread: whoever acquires one runs the request on its own thread (a RADIUS
/// receiving thread, a TACACS+ connection's read loop) until the request completes or goes asynchronous.
/// </summary>
public sealed class WorkerPool(IOptions<ForewarnOptions> options, TimeProvider time)
{
    private readonly ForewarnOptions _options = options.Value;
    private readonly ConcurrentQueue<IQueuedWork> _queue = new();
    private int _queued;
    private int _inFlight;
    // Busy time: ticks of finished requests, plus (count × now − sum of start times) for those in flight.
    private long _busyFinished;
    private long _startSum;
    // Queueing delay of the requests answered: sum of the waits and their count.
    private long _waitSum;
    private long _waitCount;

    public int BusyWorkers => Volatile.Read(ref _inFlight);

    /// <summary>Total time requests have spent in processing (in-flight ones included), in TimeProvider ticks.</summary>
    public long BusyTicks
    {
        get
        {
            long finished = Interlocked.Read(ref _busyFinished), sum = Interlocked.Read(ref _startSum);
            int inFlight = Volatile.Read(ref _inFlight);
            return finished + Math.Max(0, inFlight * time.GetTimestamp() - sum);
        }
    }

    public long TickFrequency => time.TimestampFrequency;
    public int MaxWorkers => _options.Workers;
    public int QueueDepth => Volatile.Read(ref _queued);
    public int QueueCapacity => _options.QueueCapacity;

    /// <summary>Total queueing delay, in TimeProvider ticks, of requests answered (from arrival to a worker starting on it), and their count.</summary>
    public (long WaitTicks, long Count) QueueWaits => (Interlocked.Read(ref _waitSum), Interlocked.Read(ref _waitCount));

    /// <summary>How long the oldest queued request has waited (zero when none waits).</summary>
    public TimeSpan OldestQueuedAge =>
        Volatile.Read(ref _queued) > 0 && _queue.TryPeek(out var head) ? time.GetElapsedTime(head.ReceivedAt) : TimeSpan.Zero;

    /// <summary>A worker for a request arriving now, when one is free and nothing waits ahead of it (first come, first served).</summary>
    public bool TryAdmitNow() => Volatile.Read(ref _queued) == 0 && TryAcquire();

    private bool TryAcquire()
    {
        if (Interlocked.Increment(ref _inFlight) <= _options.Workers)
            return true;
        Interlocked.Decrement(ref _inFlight);
        return false;
    }

    /// <summary>Starts the busy clock of a worker just acquired; returns the start, for <see cref="Release"/>.</summary>
    public long Begin()
    {
        long started = time.GetTimestamp();
        Interlocked.Add(ref _startSum, started);
        return started;
    }

    /// <summary>Queues a request for the next free worker; false when the queue is full (the caller counts QueueFull).</summary>
    public bool TryEnqueue(IQueuedWork work)
    {
        if (Interlocked.Increment(ref _queued) > _options.QueueCapacity)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _queue.Enqueue(work);
        return true;
    }

    /// <summary>Records the queueing delay of a request being answered: from its arrival at the host to a worker starting on it.</summary>
    public void RecordWait(long receivedAt, long started)
    {
        Interlocked.Add(ref _waitSum, Math.Max(0, started - receivedAt));
        Interlocked.Increment(ref _waitCount);
    }

    /// <summary>Gives back a worker; <paramref name="started"/> is <see cref="Begin"/>'s value, or 0 when the clock never started.</summary>
    public void Release(long started)
    {
        if (started != 0)
        {
            Interlocked.Add(ref _busyFinished, time.GetTimestamp() - started);
            Interlocked.Add(ref _startSum, -started);
        }
        Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>Gives queued requests to free workers, on the calling thread; requests that waited too long expire instead.</summary>
    public void Pump()
    {
        while (Volatile.Read(ref _queued) > 0 && TryAcquire())
        {
            if (!_queue.TryDequeue(out var work))
            {
                Release(0);
                return;
            }
            Interlocked.Decrement(ref _queued);
            long waited = time.GetTimestamp() - work.ReceivedAt;
            if (waited * 1000 > (long)_options.QueueTimeoutMs * time.TimestampFrequency)
            {
                // Its client has stopped waiting for this answer: answering would only delay the requests behind it.
                Release(0);
                work.Expire();
                continue;
            }
            work.Run(Begin());
        }
    }
}
