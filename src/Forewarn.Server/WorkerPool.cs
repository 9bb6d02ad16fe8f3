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
/// once ("workers"), beyond that one bounded queue, beyond that a refusal the listener counts as
/// QueueFull. The queue is first come, first served while it drains; once it stands (its oldest request
/// has waited longer than <see cref="ForewarnOptions.QueueTargetMs"/> for a whole
/// <see cref="ForewarnOptions.QueueIntervalMs"/>: more arrives than the workers carry) it serves the
/// newest first and drops what has waited past <see cref="ForewarnOptions.QueueTimeoutUnderLoadMs"/>
/// (adaptive LIFO with a CoDel-like trigger). Under overload a FIFO queue makes every request wait the
/// whole queue, until none is answered before its NAS gives up; this way the workers spend themselves on
/// requests whose NAS still waits, and the excess is shed as counted QueueTimeout drops. RADIUS datagrams and TACACS+ packets share the bound and the queue, so overload from either
/// moves the score; the busy time and queueing delay sums are what the workers and queue probes read.
/// A worker is a slot, not a thread: whoever acquires one runs the request on its own thread (a RADIUS
/// receiving thread, a TACACS+ connection's read loop) until the request completes or goes asynchronous.
/// </summary>
public sealed class WorkerPool(IOptions<ForewarnOptions> options, TimeProvider time)
{
    private readonly ForewarnOptions _options = options.Value;
    private readonly Lock _queueLock = new();
    private readonly Ring _queue = new();
    private int _queued;
    // Standing-queue detection: since when the oldest request has waited past the target (0: it has not), and the verdict.
    private long _standingSince;
    private bool _congested;
    private long _congestedEpisodes;
    private int _inFlight;
    // Busy time: ticks of finished requests, plus (count × now − sum of start times) for those in flight.
    private long _busyFinished;
    private long _completed;
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

    /// <summary>Requests that have given their worker back after its busy clock started.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    public long TickFrequency => time.TimestampFrequency;

    /// <summary>Now, on the clock <see cref="BusyTicks"/> is counted by.</summary>
    public long Timestamp => time.GetTimestamp();
    public int MaxWorkers => _options.Workers;
    public int QueueDepth => Volatile.Read(ref _queued);
    public int QueueCapacity => _options.QueueCapacity;

    /// <summary>Total queueing delay, in TimeProvider ticks, of requests answered (from arrival to a worker starting on it), and their count.</summary>
    public (long WaitTicks, long Count) QueueWaits => (Interlocked.Read(ref _waitSum), Interlocked.Read(ref _waitCount));

    /// <summary>How long the oldest queued request has waited (zero when none waits).</summary>
    public TimeSpan OldestQueuedAge
    {
        get
        {
            lock (_queueLock)
                return _queue.Count > 0 ? time.GetElapsedTime(_queue.PeekFront().ReceivedAt) : TimeSpan.Zero;
        }
    }

    /// <summary>True while the queue stands and serves the newest first.</summary>
    public bool Congested => Volatile.Read(ref _congested);

    /// <summary>How many times the queue has started standing.</summary>
    public long CongestedEpisodes => Interlocked.Read(ref _congestedEpisodes);

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
        lock (_queueLock)
        {
            if (_queue.Count >= _options.QueueCapacity)
                return false;
            _queue.PushBack(work);
            Volatile.Write(ref _queued, _queue.Count);
        }
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
            Interlocked.Increment(ref _completed);
        }
        Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>Gives queued requests to free workers, on the calling thread; requests that waited too long expire instead.</summary>
    public void Pump()
    {
        while (Volatile.Read(ref _queued) > 0 && TryAcquire())
        {
            IQueuedWork? work;
            List<IQueuedWork>? expired = null;
            lock (_queueLock)
            {
                work = Take(time.GetTimestamp(), ref expired);
                Volatile.Write(ref _queued, _queue.Count);
            }
            // Nothing left to run: the worker goes back first, so that a request queued meanwhile by a
            // thread that found no free worker is taken by this loop's next round (or by that thread).
            if (work is null)
                Release(0);
            // Their clients have stopped waiting for these answers: answering would only delay the requests behind them.
            if (expired is not null)
                foreach (var old in expired)
                    old.Expire();
            if (work is not null)
                work.Run(Begin());
        }
    }

    /// <summary>The next request to run (null: none left), under the queue's lock; those past their time go to <paramref name="expired"/>.</summary>
    private IQueuedWork? Take(long now, ref List<IQueuedWork>? expired)
    {
        long frequency = time.TimestampFrequency;
        long limit = (_congested ? _options.QueueTimeoutUnderLoadMs : _options.QueueTimeoutMs) * frequency / 1000;
        while (_queue.Count > 0 && now - _queue.PeekFront().ReceivedAt > limit)
            (expired ??= []).Add(_queue.PopFront());
        if (_queue.Count == 0)
        {
            _standingSince = 0;
            Volatile.Write(ref _congested, false);
            return null;
        }
        long oldest = now - _queue.PeekFront().ReceivedAt;
        if (oldest <= _options.QueueTargetMs * frequency / 1000)
        {
            _standingSince = 0;
            Volatile.Write(ref _congested, false);
        }
        else if (_standingSince == 0)
        {
            _standingSince = now;
        }
        else if (!_congested && now - _standingSince >= _options.QueueIntervalMs * frequency / 1000)
        {
            Volatile.Write(ref _congested, true);
            Interlocked.Increment(ref _congestedEpisodes);
        }
        return _congested ? _queue.PopBack() : _queue.PopFront();
    }

    /// <summary>A growable ring of queued requests, taken from either end (used under the queue's lock only).</summary>
    private sealed class Ring
    {
        private IQueuedWork[] _items = new IQueuedWork[64];
        private int _head;

        public int Count { get; private set; }

        public void PushBack(IQueuedWork work)
        {
            if (Count == _items.Length)
            {
                var larger = new IQueuedWork[_items.Length * 2];
                for (int i = 0; i < Count; i++)
                    larger[i] = _items[(_head + i) % _items.Length];
                _items = larger;
                _head = 0;
            }
            _items[(_head + Count) % _items.Length] = work;
            Count++;
        }

        public IQueuedWork PeekFront() => _items[_head];

        public IQueuedWork PopFront()
        {
            var work = _items[_head];
            _items[_head] = null!;
            _head = (_head + 1) % _items.Length;
            Count--;
            return work;
        }

        public IQueuedWork PopBack()
        {
            int tail = (_head + Count - 1) % _items.Length;
            var work = _items[tail];
            _items[tail] = null!;
            Count--;
            return work;
        }
    }
}
