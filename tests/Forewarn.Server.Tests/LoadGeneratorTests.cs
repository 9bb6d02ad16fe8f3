using System.Net;
using Forewarn.Bench.Load;
using Forewarn.Core.Store;

namespace Forewarn.Server.Tests;

/// <summary>
/// The load generator's machinery against a real server on loopback, for a few seconds: it counts what
/// the server really answered, verifies every answer, and tells accepted, rejected and lost apart.
/// Never a timed assertion: throughput only has to be positive.
/// </summary>
[Collection(nameof(Serial))]
public sealed class LoadGeneratorTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        for (int i = 1; i <= 20; i++)
            await _server.AddUserAsync($"load{i}", "password", AuthMethods.All);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static LoadOptions Options(LoadKind kind, IPEndPoint server) => new()
    {
        Server = server,
        Secret = "testing123"u8.ToArray(),
        Kind = kind,
        Users = 20,
        UserFormat = "load{0}",
        Password = "password",
        Outstanding = 32,
        Sockets = 4,
        Duration = TimeSpan.FromSeconds(2),
        Warmup = TimeSpan.FromSeconds(0.5),
        // Generous: what is checked is that every request is answered and verified, not how fast. A cold
        // server given 128 MS-CHAPv2 requests at once on a busy CI machine answered a few of the warm-up's
        // after 2 s, and those late answers counted against the run.
        Timeout = TimeSpan.FromSeconds(10),
    };

    [SkippableTheory]
    [InlineData(LoadKind.Pap)]
    [InlineData(LoadKind.Chap)]
    [InlineData(LoadKind.MsChapV2)]
    [InlineData(LoadKind.Status)]
    public async Task ClosedLoop_EveryRequestAnsweredAndVerified(LoadKind kind)
    {
        var report = await new LoadGenerator(Options(kind, _server.Auth)).RunAsync();
        Assert.True(report.Answered > 0, $"nothing answered: {report}");
        Assert.Equal(report.Sent, report.Answered);
        Assert.Equal(report.Answered, report.Accepted);
        Assert.Equal(0, report.Timeouts + report.Invalid + report.Late);
        Assert.True(report.LatencyP50Ms > 0 && report.LatencyP50Ms <= report.LatencyP99Ms);
    }

    [SkippableFact]
    public async Task WrongPassword_IsAnsweredAndCountedAsRejected()
    {
        var report = await new LoadGenerator(Options(LoadKind.Pap, _server.Auth) with { Password = "wrong", Duration = TimeSpan.FromSeconds(1) }).RunAsync();
        Assert.True(report.Answered > 0);
        Assert.Equal(0, report.Accepted);
        Assert.Equal(report.Answered, report.Rejected);
    }

    /// <summary>With another secret the server drops every request (bad Message-Authenticator): all of them are counted lost, none answered.</summary>
    [SkippableFact]
    public async Task WrongSecret_EveryRequestCountsAsLost()
    {
        var report = await new LoadGenerator(Options(LoadKind.Pap, _server.Auth) with
        {
            Secret = "not-the-secret"u8.ToArray(), Duration = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromMilliseconds(300),
        }).RunAsync();
        Assert.Equal(0, report.Answered);
        Assert.True(report.Timeouts > 0);
        Assert.Equal(report.Sent, report.Timeouts);
    }

    /// <summary>Every Accounting-Response the generator counted stands for a record in the store (Start, Interim-Update and Stop).</summary>
    [SkippableFact]
    public async Task Accounting_EveryAnsweredRequestIsStored()
    {
        var report = await new LoadGenerator(Options(LoadKind.Accounting, _server.Acct)).RunAsync();
        Assert.True(report.Answered > 0);
        Assert.Equal(0, report.Timeouts + report.Invalid);
        var stored = await _server.Store.QueryAsync(new AccountingQuery(Limit: int.MaxValue));
        // The warm-up's and the drain's answers are stored too, so at least as many as measured.
        Assert.True(stored.Count >= report.Answered, $"{stored.Count} stored, {report.Answered} answered");
        Assert.Equal([1u, 2u, 3u], stored.Select(r => r.StatusType).Distinct().Order());
    }

    [SkippableFact]
    public async Task OpenLoop_SendsOnScheduleAndLosesNothing()
    {
        var report = await new LoadGenerator(Options(LoadKind.Pap, _server.Auth) with { Rate = 400 }).RunAsync();
        // 400/s for 2 s on a fixed schedule: the count is set by the schedule, not by the server (a busy
        // machine may start the schedule late, so the bounds are far from the 800 expected).
        Assert.InRange(report.Sent, 600, 1000);
        Assert.Equal(report.Sent, report.Answered);
        Assert.Equal("open", report.Mode);
    }
}
