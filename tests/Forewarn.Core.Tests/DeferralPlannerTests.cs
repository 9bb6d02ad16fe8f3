using System.Net;
using Forewarn.Core.Clients;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Core.Store;

namespace Forewarn.Core.Tests;

public class DeferralPlannerTests
{
    private static ActiveClient Client(int i, double rate, string? group = null, double rtt = double.NaN, int unacknowledged = 0) =>
        new(IPAddress.Parse($"10.0.0.{i}"), new RadiusClient(new ClientRecord($"nas-{i}", $"10.0.0.{i}", "s", group)), 0)
        {
            Rate = rate,
            RoundTripMs = rtt,
            Unacknowledged = unacknowledged,
        };

    private static readonly ZoneChange ByScore = new("default", DateTimeOffset.UnixEpoch, Zone.Accept, Zone.Defer, 0.1, 0.1, ZoneCause.Score);

    private static readonly List<ActiveClient> Fleet =
    [
        Client(1, 100, "core", rtt: 1),
        Client(2, 50, "core", rtt: 9),
        Client(3, 30, "edge", rtt: 3, unacknowledged: 2),
        Client(4, 20, "edge", rtt: 5),
    ];

    private static string[] Names(IEnumerable<ActiveClient> clients) => [.. clients.Select(c => c.Client.Name)];

    [Fact]
    public void All_List_Group()
    {
        Assert.Equal(4, DeferralPlanner.Choose(Fleet, new SelectionOptions(), ByScore, 0.5).Count);
        Assert.Equal(["nas-2"], Names(DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "list", Clients = ["nas-2"] }, ByScore, 0.5)));
        Assert.Equal(["nas-3", "nas-4"], Names(DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "group", Groups = ["edge"] }, ByScore, 0.5)));
    }

    [Fact]
    public void Topology_LeastReliableThenFarthestFirst()
    {
        var chosen = DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "topology", Count = 2 }, ByScore, 0.5);
        Assert.Equal(["nas-3", "nas-2"], Names(chosen));
    }

    [Fact]
    public void Enough_SheddsTheBusiestUntilTheShareIsMet()
    {
        // 200 requests/s in all; shedding 40 % means 80/s: the busiest client (100/s) alone suffices.
        Assert.Equal(["nas-1"], Names(DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "enough" }, ByScore, 0.4)));
        // 70 % = 140/s: the two busiest.
        Assert.Equal(["nas-1", "nas-2"], Names(DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "enough" }, ByScore, 0.7)));
    }

    /// <summary>
    /// A hundred clients that all send 0.7 requests/s, their measured rates spread by counting noise alone:
    /// shedding 30 % of the load takes 30 of them. Credited with their measured rates, the busiest (the
    /// ones whose counts ran high) covered the share with 22.
    /// </summary>
    [Fact]
    public void Enough_CreditsAlikeClientsWithTheirLikelyRate_NotTheirNoise()
    {
        // The noise of a ten-second average of Poisson counts at 0.7/s: σ = √(0.7 / 19) ≈ 0.19; the rates
        // spread over the normal quantiles with that σ.
        double sigma = Math.Sqrt(0.7 / 19);
        var fleet = Enumerable.Range(1, 100).Select(i => Client(i, 0.7 + sigma * Quantile((i - 0.5) / 100))).ToList();
        // Two that sent heavily and have just gone quiet: they read high over ten seconds (chosen first), but
        // do not set the fleet's median or spread, and are credited like the rest.
        fleet.Add(Quiet(101, 200));
        fleet.Add(Quiet(102, 150));
        var chosen = DeferralPlanner.Choose(fleet, new SelectionOptions { Strategy = "enough" }, ByScore, 0.3);
        Assert.InRange(chosen.Count, 2 + 29, 2 + 31);
        Assert.Contains(chosen, c => c.Client.Name == "nas-101");
        // Clients that really differ keep their rates: the busiest alone covers the same share.
        Assert.Equal(["nas-1"], Names(DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "enough" }, ByScore, 0.3)));
    }

    private static ActiveClient Quiet(int i, double tenSecondRate)
    {
        var client = Client(i, 0);
        client.LongRate = tenSecondRate;
        return client;
    }

    /// <summary>Most clients idle, a few busy: the busy keep their own rates, and only as many as the share needs are shed.</summary>
    [Fact]
    public void Enough_MostClientsIdle_ShedsOnlyTheBusiestNeeded()
    {
        var fleet = Enumerable.Range(1, 60).Select(i => Client(i, 0)).Concat([Client(61, 100), Client(62, 50), Client(63, 30)]).ToList();
        Assert.Equal(["nas-61"], Names(DeferralPlanner.Choose(fleet, new SelectionOptions { Strategy = "enough" }, ByScore, 0.4)));
    }

    /// <summary>The standard normal quantile, by the logistic approximation (a spread about 7 % wider: enough for a test's).</summary>
    private static double Quantile(double p) => Math.Log(p / (1 - p)) / 1.702;

    [Theory]
    [InlineData(ZoneCause.Drain)]
    [InlineData(ZoneCause.MandatoryService)]
    [InlineData(ZoneCause.DependentService)]
    public void ForcedMoves_DeferEveryClient_WhateverTheStrategy(ZoneCause cause)
    {
        var change = ByScore with { Cause = cause };
        Assert.Equal(4, DeferralPlanner.Choose(Fleet, new SelectionOptions { Strategy = "list", Clients = ["nas-2"] }, change, 0.1).Count);
    }

    [Fact]
    public void AlreadyDeferredClients_AreNotChosenAgain()
    {
        var fleet = Fleet.Select(c => Client(int.Parse(c.Client.Name[4..], System.Globalization.CultureInfo.InvariantCulture), c.Rate)).ToList();
        fleet[0].State = ClientState.Deferred;
        Assert.Equal(3, DeferralPlanner.Choose(fleet, new SelectionOptions(), ByScore, 0.5).Count);
    }
}
