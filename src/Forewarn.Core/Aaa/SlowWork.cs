using System.Diagnostics;

namespace Forewarn.Core.Aaa;

/// <summary>
/// The bounded pool for work too slow for a receiving thread: PBKDF2 verifications and store lookups
/// on a cache miss (a SQLite call blocks, whatever its name says). Its threads take work from one queue
/// per client in turn, so a client flooding requests that need slow work — spoofed wrong-password PAP
/// under the <c>auto</c> Message-Authenticator policy, say — gets one turn in N like every other client
/// and fills only its own queue; beyond <see cref="SlowWorkOptions.PerClientQueue"/> queued items its
/// requests are refused at once (the caller drops them, counted), and so beyond the pool's total.
/// Receiving threads, and cheap cached requests, never wait for it.
/// </summary>
public sealed class SlowWork : IDisposable
{
    private readonly SlowWorkOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<Item>> _queues = new(StringComparer.Ordinal);
    // Clients with queued work, in the order they get their next turn.
    private readonly Queue<string> _turns = new();
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _ready = new(0);
    private volatile bool _stopping;
    private int _queued;
    private int _busy;
    private long _refused;
    private long _completed;
    // Waits of the work started in the current and the previous second, per client: the probe's evidence.
    private Dictionary<string, (long Sum, int Count)> _waits = new(StringComparer.Ordinal), _previousWaits = new(StringComparer.Ordinal);
    private long _waitsSince;

    private sealed class Item(Action run, long queuedAt)
    {
        public Action Run { get; } = run;
        public long QueuedAt { get; } = queuedAt;
    }

    public SlowWork(SlowWorkOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _waitsSince = time.GetTimestamp();
        int threads = options.Threads > 0 ? options.Threads : Math.Max(1, Environment.ProcessorCount / 2);
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = $"slow-work-{i}" };
            _threads[i].Start();
        }
    }

    public int Threads => _threads.Length;
    public int Queued => Volatile.Read(ref _queued);
    public int Busy => Volatile.Read(ref _busy);
    public int Capacity => _options.QueueCapacity;
    /// <summary>Work refused because its client's queue or the pool's was full.</summary>
    public long Refused => Interlocked.Read(ref _refused);
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>
    /// Runs <paramref name="work"/> on the pool in <paramref name="client"/>'s turn. Throws
    /// <see cref="SlowWorkFullException"/> at once when the client's queue or the pool's is full.
    /// </summary>
    public Task<T> RunAsync<T>(string client, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(client, () =>
        {
            try
            {
                done.TrySetResult(work());
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        return done.Task;
    }

    /// <summary>Like <see cref="RunAsync{T}(string, Func{T})"/> for work that returns a ValueTask (a store lookup that completes synchronously, as SQLite's do).</summary>
    public Task<T> RunAsync<T>(string client, Func<ValueTask<T>> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(client, () =>
        {
            ValueTask<T> pending;
            try
            {
                pending = work();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
                return;
            }
            if (pending.IsCompletedSuccessfully)
            {
                done.TrySetResult(pending.Result);
                return;
            }
            // Truly asynchronous work does not hold a pool thread while it waits.
            pending.AsTask().ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully)
                    done.TrySetResult(t.Result);
                else if (t.Exception is { } exception)
                    done.TrySetException(exception.InnerExceptions);
                else
                    done.TrySetCanceled();
            }, TaskScheduler.Default);
        });
        return done.Task;
    }

    private void Enqueue(string client, Action run)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (!_queues.TryGetValue(client, out var queue))
            {
                queue = new Queue<Item>();
                _queues[client] = queue;
            }
            if (queue.Count >= _options.PerClientQueue || _queued >= _options.QueueCapacity)
            {
                Interlocked.Increment(ref _refused);
                if (queue.Count == 0)
                    _queues.Remove(client);
                throw new SlowWorkFullException(client, queue.Count >= _options.PerClientQueue);
            }
            if (queue.Count == 0)
                _turns.Enqueue(client);
            queue.Enqueue(new Item(run, _time.GetTimestamp()));
            _queued++;
        }
        _ready.Release();
    }

    private void Work()
    {
        while (true)
        {
            _ready.Wait();
            if (_stopping)
                return;
            Item item;
            string client;
            lock (_lock)
            {
                client = _turns.Dequeue();
                var queue = _queues[client];
                item = queue.Dequeue();
                _queued--;
                if (queue.Count > 0)
                    _turns.Enqueue(client); // its next item waits for every other client's turn
                else
                    _queues.Remove(client);
                RecordWait(client, _time.GetTimestamp() - item.QueuedAt);
            }
            Interlocked.Increment(ref _busy);
            try
            {
                item.Run();
            }
            finally
            {
                Interlocked.Decrement(ref _busy);
                Interlocked.Increment(ref _completed);
            }
        }
    }

    /// <summary>Called under the lock.</summary>
    private void RecordWait(string client, long ticks)
    {
        RollWaits(_time.GetTimestamp());
        _waits[client] = _waits.TryGetValue(client, out var w) ? (w.Sum + ticks, w.Count + 1) : (ticks, 1);
    }

    private void RollWaits(long now)
    {
        if (_time.GetElapsedTime(_waitsSince, now).TotalSeconds < 1)
            return;
        bool stale = _time.GetElapsedTime(_waitsSince, now).TotalSeconds >= 2;
        _previousWaits = stale ? new(StringComparer.Ordinal) : _waits;
        _waits = new(StringComparer.Ordinal);
        _waitsSince = now;
    }

    /// <summary>
    /// The typical client's wait for the pool: the larger of the median over clients of each one's mean
    /// wait in the last second or two, and the age of the oldest item at the head of a client's queue
    /// (the time a client's next item has waited for its turn: it grows when the pool stops moving, but
    /// not with the depth of one client's own backlog). A client flooding the pool waits behind itself
    /// and does not make every other client's service look slow. Null when there is no evidence.
    /// </summary>
    public TimeSpan? TypicalWait()
    {
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            RollWaits(now);
            var means = new List<double>();
            foreach (var source in new[] { _previousWaits, _waits })
            {
                foreach (var (_, (sum, count)) in source)
                    means.Add((double)sum / count);
            }
            long oldestHead = 0;
            foreach (var (_, queue) in _queues)
            {
                if (queue.TryPeek(out var head))
                    oldestHead = Math.Max(oldestHead, now - head.QueuedAt);
            }
            if (means.Count == 0 && oldestHead == 0)
                return null;
            means.Sort();
            double median = means.Count == 0 ? 0 : means[means.Count / 2];
            return TimeSpan.FromSeconds(Math.Max(median, oldestHead) / _time.TimestampFrequency);
        }
    }

    public void Dispose()
    {
        lock (_lock)
            _stopping = true;
        _ready.Release(_threads.Length);
        foreach (var thread in _threads)
            thread.Join(TimeSpan.FromSeconds(5));
        _ready.Dispose();
    }
}

/// <summary>Settings of <see cref="SlowWork"/> (Forewarn:SlowWork).</summary>
public sealed class SlowWorkOptions
{
    /// <summary>Pool threads; 0: half the processors, at least one (the receiving threads need the rest).</summary>
    public int Threads { get; set; }
    /// <summary>Items queued for the whole pool at most (as many as the request queue holds).</summary>
    public int QueueCapacity { get; set; } = 8192;
    /// <summary>
    /// Items queued for one client at most — as many requests as one source port can have outstanding
    /// (256 Identifiers); its requests beyond are dropped (counted as SlowWorkFull) and retransmitted by the NAS.
    /// </summary>
    public int PerClientQueue { get; set; } = 256;
    /// <summary>The typical client's wait for the pool at which the slow-work probe reads no headroom.</summary>
    public int WaitObjectiveMs { get; set; } = 1000;
}

/// <summary>The pool refused work: its client's queue (or the pool's) is full.</summary>
public sealed class SlowWorkFullException(string client, bool clientQueue)
    : Exception(clientQueue ? $"client {client} has filled its slow-work queue" : "the slow-work pool is full")
{
    public string Client { get; } = client;
    public bool ClientQueue { get; } = clientQueue;
}
