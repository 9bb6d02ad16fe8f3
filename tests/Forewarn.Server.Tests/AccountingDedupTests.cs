using Forewarn.Core.Store;
using Forewarn.Storage.Sqlite;

namespace Forewarn.Server.Tests;

/// <summary>
/// The store recognises retransmissions by a window of recent dedup keys (no unique index): within a
/// batch, across batches, and across a restart of the process (the window is reloaded from the file).
/// </summary>
public sealed class AccountingDedupTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "forewarn-dedup-" + Guid.NewGuid().ToString("N")[..8]);

    public AccountingDedupTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static AccountingRecord Record(string key, string session) =>
        new(0, DateTimeOffset.UtcNow, "nas", "127.0.0.1", "alice", session, 1, $"Acct-Session-Id = \"{session}\"\n", key);

    private static string Key(int n) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(n)));

    [SkippableFact]
    public async Task Retransmissions_AreStoredOnce_WithinABatch_AcrossBatches_AndAcrossARestart()
    {
        var path = Path.Combine(_directory, "forewarn.db");
        using (var store = SqliteStore.Open(path))
        {
            Assert.Equal(2, await store.AppendBatchAsync([Record(Key(1), "s1"), Record(Key(1), "s1"), Record(Key(2), "s2")]));
            Assert.Equal(1, await store.AppendBatchAsync([Record(Key(2), "s2"), Record(Key(3), "s3")]));
        }
        // A new process: the window is rebuilt from what was stored in its span.
        using (var store = SqliteStore.Open(path))
        {
            Assert.Equal(1, await store.AppendBatchAsync([Record(Key(3), "s3"), Record(Key(1), "s1"), Record(Key(4), "s4")]));
            var stored = await store.QueryAsync(new AccountingQuery(Limit: 100));
            Assert.Equal(["s1", "s2", "s3", "s4"], stored.Select(r => r.SessionId).Order());
        }
    }
}
