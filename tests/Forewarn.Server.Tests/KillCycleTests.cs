using Forewarn.Bench.Faults;

namespace Forewarn.Server.Tests;

/// <summary>
/// kill -9 under accounting load, five times in a row (the hundred-cycle run is `forewarn bench kill`,
/// recorded in docs/reliability.md): NASes that retransmit until acknowledged, a real server process
/// killed with SIGKILL at random moments and restarted on the same SQLite file. Every acknowledged
/// record must be in the store once; retransmissions of records already stored must not be stored again.
/// </summary>
[Collection(nameof(Serial))]
public sealed class KillCycleTests
{
    [SkippableFact]
    public async Task KilledFiveTimesUnderLoad_EveryAcknowledgedRecordStoredOnce()
    {
        var options = new KillCycleOptions
        {
            ServerCommand = ["dotnet", Path.Combine(AppContext.BaseDirectory, "forewarn.dll")],
            OpenStore = data => StoreFactory.Open(data, postgres: null),
            Cycles = 5,
            Nases = 8,
            Rate = 2000,
            MinUpSeconds = 0.3,
            MaxUpSeconds = 1.5,
        };
        try
        {
            var result = await new KillCycleRunner(options).RunAsync();
            string why = KillCycleRunner.Describe(result);
            var count = result.Count;
            Assert.True(count.Acknowledged > 0, why);
            Assert.True(result.Retransmissions > 0, why);
            Assert.Equal(0, count.Missing);
            Assert.Equal(0, count.Duplicates);
            Assert.Equal(0, count.Unknown);
            Assert.Equal(0, count.NeverAcknowledged);
            Assert.Equal(count.Issued, count.StoredRows);
        }
        finally
        {
            if (Directory.Exists(options.WorkDirectory))
                Directory.Delete(options.WorkDirectory, recursive: true);
        }
    }
}
