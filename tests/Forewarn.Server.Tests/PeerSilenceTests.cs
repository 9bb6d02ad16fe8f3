using Forewarn.Server.Advisories;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Forewarn.Server.Tests;

/// <summary>A peer's silence as a server judges it: its own stall is not the peer's silence.</summary>
public sealed class PeerSilenceTests
{
    private static void Run(FakeTimeProvider time, PeerSilence silence, TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += TimeSpan.FromMilliseconds(50))
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            silence.Tick();
        }
    }

    [Fact]
    public void PeerUnheardForTheLimit_IsSilent_ButNotAfterTheJudgeItselfWasStopped()
    {
        var time = new FakeTimeProvider();
        var silence = new PeerSilence(time, 1000);
        silence.Tick();
        long heard = time.GetTimestamp();
        Run(time, silence, TimeSpan.FromMilliseconds(900));
        Assert.False(silence.IsSilent(heard));
        Run(time, silence, TimeSpan.FromMilliseconds(200));
        Assert.True(silence.IsSilent(heard));

        // This server is stopped for 30 s (SIGSTOP) and resumes: it heard nothing meanwhile, nor did it judge.
        heard = time.GetTimestamp();
        time.Advance(TimeSpan.FromSeconds(30));
        silence.Tick();
        Assert.False(silence.IsSilent(heard));
        Assert.True(silence.Of(heard) < TimeSpan.FromMilliseconds(100));
        // A peer still unheard a full limit after the resume is silent.
        Run(time, silence, TimeSpan.FromMilliseconds(1050));
        Assert.True(silence.IsSilent(heard));
    }
}
