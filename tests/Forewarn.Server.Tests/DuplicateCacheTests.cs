using System.Net;

namespace Forewarn.Server.Tests;

/// <summary>The duplicate cache under a concurrent sweep (it takes both cores for a few seconds: with the serial tests, not beside them).</summary>
[Collection(nameof(Serial))]
public sealed class DuplicateCacheTests
{
    [SkippableFact]
    public async Task SweepRacingARequest_NeverLetsItsRetransmissionBeProcessedTwice()
    {
        var cache = new DuplicateCache(TimeProvider.System, TimeSpan.FromSeconds(30));
        var source = IPAddress.Loopback;
        using var stop = new CancellationTokenSource();
        // The sweep runs flat out beside the request path, as the housekeeping timer may at any moment.
        var sweeper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
                cache.Sweep();
        });
        var response = new byte[64];
        int processedTwice = 0;
        for (int i = 0; i < 300_000 && processedTwice == 0; i++)
        {
            // A request that produced no answer leaves its slot free (Abandon), the moment the sweep may take it...
            var abandoned = new DuplicateCache.Key(source, 5000, 1, 7, (UInt128)(2 * i));
            Assert.Equal(DuplicateCache.Outcome.New, cache.Begin(abandoned, response, out _));
            cache.Abandon(abandoned);
            // ...while the next request on the same Identifier claims it, is answered, and is retransmitted.
            var next = new DuplicateCache.Key(source, 5000, 1, 7, (UInt128)(2 * i + 1));
            Assert.Equal(DuplicateCache.Outcome.New, cache.Begin(next, response, out _));
            cache.Complete(next, [2, 7, 0, 20]);
            if (cache.Begin(next, response, out _) != DuplicateCache.Outcome.Answered)
                processedTwice++;
        }
        await stop.CancelAsync();
        await sweeper;
        Assert.Equal(0, processedTwice);
    }
}
