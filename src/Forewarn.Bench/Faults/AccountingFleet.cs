using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Forewarn.Core.Store;

namespace Forewarn.Bench.Faults;

/// <summary>What a store holds against what a fleet issued: the durability promise, counted.</summary>
public readonly record struct StoreCount(long Issued, long Acknowledged, long StoredRows, int Missing, int Duplicates, int Unknown, int NeverAcknowledged, IReadOnlyList<string> MissingExamples)
{
    /// <summary>Every acknowledged record stored, none twice, nothing stored that was never sent, and nothing left unacknowledged.</summary>
    public bool Held => Missing == 0 && Duplicates == 0 && Unknown == 0 && NeverAcknowledged == 0;

    public override string ToString() =>
        $"{Issued:N0} records issued, {Acknowledged:N0} acknowledged; the store holds {StoredRows:N0} rows: {Missing} acknowledged records missing, " +
        $"{Duplicates} stored twice, {Unknown} unknown, {NeverAcknowledged} never acknowledged" +
        (MissingExamples.Count > 0 ? $" (missing: {string.Join(", ", MissingExamples)})" : "");
}

/// <summary>
/// NASes on 127.3.0.1.. sending accounting to one server at a paced rate, each retransmitting until
/// acknowledged (<see cref="AccountingNas"/>); a thread ticks them every 5 ms. Whatever happens to the
/// server, <see cref="CountAsync"/> then says whether the store kept the promise.
/// </summary>
public sealed class AccountingFleet : IDisposable
{
    private readonly List<AccountingNas> _nases;
    private readonly double _rate;
    private readonly Thread _ticker;
    private volatile bool _issuing = true;
    private volatile bool _running = true;

    public AccountingFleet(IPEndPoint server, string secret, int nases, int window, double rate, TimeSpan retransmitAfter)
    {
        string runId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        _nases = [.. Enumerable.Range(0, nases).Select(i => new AccountingNas(IPAddress.Parse($"127.3.0.{i + 1}"), server, secret, window, runId, i, retransmitAfter))];
        _rate = rate;
        _ticker = new Thread(Tick) { IsBackground = true, Name = "accounting-fleet" };
        _ticker.Start();
    }

    /// <summary>False: no new records, only retransmissions of what is outstanding.</summary>
    public bool Issuing { get => _issuing; set => _issuing = value; }
    public int Pending => _nases.Sum(n => n.Pending);
    public long Acknowledged => _nases.Sum(n => n.Acknowledged);
    public long Retransmissions => _nases.Sum(n => n.Retransmissions);

    /// <summary>Starts a new span for <see cref="FirstAcknowledgedSinceMark"/>.</summary>
    public void Mark()
    {
        foreach (var nas in _nases)
            nas.Mark();
    }

    /// <summary>Stopwatch timestamp of the first acknowledgement since <see cref="Mark"/>; null if none.</summary>
    public long? FirstAcknowledgedSinceMark
    {
        get
        {
            long first = _nases.Select(n => n.FirstAcknowledgedSinceMark).Where(t => t != 0).DefaultIfEmpty().Min();
            return first == 0 ? null : first;
        }
    }

    /// <summary>Stops issuing and waits until every record is acknowledged; false if some are still outstanding at the limit.</summary>
    public async Task<bool> DrainAsync(TimeSpan limit, CancellationToken cancellationToken = default)
    {
        Issuing = false;
        var clock = Stopwatch.StartNew();
        while (Pending > 0 && clock.Elapsed < limit)
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        return Pending == 0;
    }

    /// <summary>Reads every accounting record of <paramref name="store"/> and matches it against what the NASes issued.</summary>
    public async Task<StoreCount> CountAsync(IForewarnStore store, CancellationToken cancellationToken = default)
    {
        var issued = _nases.SelectMany(n => n.Records).ToList();
        var stored = new Dictionary<string, int>(StringComparer.Ordinal);
        long rows = 0;
        foreach (var record in await store.QueryAsync(new AccountingQuery(Limit: int.MaxValue), cancellationToken).ConfigureAwait(false))
        {
            rows++;
            string key = $"{record.SessionId}/{record.StatusType}";
            stored[key] = stored.GetValueOrDefault(key) + 1;
        }
        var issuedKeys = issued.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        var missing = issued.Where(r => r.Acknowledged && !stored.ContainsKey(r.Key)).Select(r => r.Key).ToList();
        return new StoreCount(issued.Count, issued.Count(r => r.Acknowledged), rows, missing.Count,
            stored.Count(p => p.Value > 1), stored.Keys.Count(k => !issuedKeys.Contains(k)), issued.Count(r => !r.Acknowledged), [.. missing.Take(10)]);
    }

    private void Tick()
    {
        long start = Stopwatch.GetTimestamp();
        long issued = 0;
        int next = 0;
        while (_running)
        {
            long now = Stopwatch.GetTimestamp();
            long due = _issuing ? (long)(Stopwatch.GetElapsedTime(start, now).TotalSeconds * _rate) - issued : 0;
            // Round-robin over the NASes, so that none starves while the windows are full.
            for (int i = 0; i < _nases.Count; i++)
            {
                int sent = _nases[(next + i) % _nases.Count].Tick(now, (int)Math.Clamp(due, 0, int.MaxValue));
                issued += sent;
                due -= sent;
            }
            next = (next + 1) % _nases.Count;
            // No debt builds while the windows are full (the server is down): it would arrive as a burst
            // after the restart. The rate is an upper limit; at most 20 ms of it is carried over.
            long carry = (long)(_rate / 50);
            if (due > carry)
                issued += due - carry;
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        _running = false;
        _ticker.Join();
        foreach (var nas in _nases)
            nas.Dispose();
    }
}
