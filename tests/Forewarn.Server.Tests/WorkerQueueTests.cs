using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Forewarn.Server.Tests;

/// <summary>
/// The worker queue's order, on a manual clock: first come, first served while it drains; once it
/// stands (its oldest request older than the 20 ms target for a 100 ms interval), newest first, with
/// what has waited past 250 ms dropped; back to first come, first served when it has drained.
/// (What this buys under overload is measured by `forewarn bench overload`, docs/reliability.md.)
/// </summary>
public sealed class WorkerQueueTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly List<string> _ran = [];
    private readonly List<double> _waitedMs = [];
    private readonly List<string> _expired = [];
    private readonly WorkerPool _pool;

    public WorkerQueueTests() => _pool = new WorkerPool(Options.Create(new ForewarnOptions { Workers = 1 }), _time);

    private sealed class Work(WorkerQueueTests owner, string name, long receivedAt) : IQueuedWork
    {
        public long ReceivedAt { get; } = receivedAt;
        public long Started { get; private set; }
        public void Run(long started)
        {
            Started = started;
            owner._ran.Add(name);
            owner._waitedMs.Add(owner._time.GetElapsedTime(ReceivedAt, started).TotalMilliseconds);
        }

        public void Expire() => owner._expired.Add(name);
    }

    private void Enqueue(string name) => Assert.True(_pool.TryEnqueue(new Work(this, name, _time.GetTimestamp())));

    /// <summary>The one worker finishes what it ran and takes the next.</summary>
    private void FinishOne()
    {
        _pool.Release(_time.GetTimestamp());
        _pool.Pump();
    }

    [Fact]
    public void Drains_FirstComeFirstServed()
    {
        Assert.True(_pool.TryAdmitNow()); // the worker is busy
        Enqueue("a");
        Enqueue("b");
        Enqueue("c");
        _time.Advance(TimeSpan.FromMilliseconds(5));
        FinishOne();
        FinishOne();
        FinishOne();
        Assert.Equal(["a", "b", "c"], _ran);
        Assert.False(_pool.Congested);
    }

    [Fact]
    public void StandingQueue_ServesNewestFirst_DropsTheStale_ThenRecovers()
    {
        Assert.True(_pool.TryAdmitNow());
        // Requests arrive every 10 ms, the worker takes one every 30 ms: the queue stands.
        for (int i = 0; i < 40; i++)
        {
            Enqueue($"r{i}");
            _time.Advance(TimeSpan.FromMilliseconds(10));
            if (i % 3 == 2)
                FinishOne();
        }
        Assert.True(_pool.Congested);
        Assert.Equal(1, _pool.CongestedEpisodes);
        // First come, first served until it had stood for 100 ms: r0, r1, ... then the newest each time.
        Assert.Equal("r0", _ran[0]);
        Assert.Equal("r38", _ran[^1]);
        // Nothing that had waited past 250 ms while the queue stood was run: it was dropped.
        Assert.NotEmpty(_expired);
        Assert.All(_waitedMs, ms => Assert.True(ms <= 250, $"a request ran after waiting {ms} ms"));

        // The load falls: the backlog drains (still nothing run past 250 ms); once the queue is young
        // again, first come, first served.
        for (int i = 0; i < 60; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(10));
            FinishOne();
        }
        Assert.All(_waitedMs, ms => Assert.True(ms <= 250, $"a request ran after waiting {ms} ms"));
        Assert.Equal(0, _pool.QueueDepth);
        _ran.Clear();
        Enqueue("x");
        Enqueue("y");
        FinishOne();
        FinishOne();
        Assert.Equal(["x", "y"], _ran);
        Assert.False(_pool.Congested);
    }
}
