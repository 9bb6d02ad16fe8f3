using System.Diagnostics.Metrics;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server;

/// <summary>What the server has done, as plain counters (read by tests and status) and as .NET metrics.</summary>
public sealed class ServerCounters : IDisposable
{
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];
    private long _received;
    private long _accessAccepts;
    private long _accessRejects;
    private long _accountingResponses;
    private long _statusResponses;
    private long _duplicatesAnswered;
    private long _sendErrors;
    private readonly Meter _meter;

    public ServerCounters()
    {
        _meter = new Meter("Forewarn.Server");
        _meter.CreateObservableCounter("forewarn.radius.received", () => Received, description: "RADIUS datagrams received");
        _meter.CreateObservableCounter("forewarn.radius.access_accepts", () => AccessAccepts);
        _meter.CreateObservableCounter("forewarn.radius.access_rejects", () => AccessRejects);
        _meter.CreateObservableCounter("forewarn.radius.accounting_responses", () => AccountingResponses);
        _meter.CreateObservableCounter("forewarn.radius.duplicates_answered", () => DuplicatesAnswered);
        _meter.CreateObservableCounter("forewarn.radius.send_errors", () => SendErrors, description: "Answers the operating system refused to send");
        _meter.CreateObservableCounter("forewarn.radius.dropped", ObserveDrops, description: "Datagrams dropped, by reason");
    }

    private IEnumerable<Measurement<long>> ObserveDrops()
    {
        for (int i = 1; i < _drops.Length; i++)
            yield return new Measurement<long>(Interlocked.Read(ref _drops[i]), new KeyValuePair<string, object?>("reason", ((DropReason)i).ToString()));
    }

    public long Received => Interlocked.Read(ref _received);
    public long AccessAccepts => Interlocked.Read(ref _accessAccepts);
    public long AccessRejects => Interlocked.Read(ref _accessRejects);
    public long AccountingResponses => Interlocked.Read(ref _accountingResponses);
    public long StatusResponses => Interlocked.Read(ref _statusResponses);
    public long DuplicatesAnswered => Interlocked.Read(ref _duplicatesAnswered);
    /// <summary>Answers the operating system refused to send (the NAS retransmits; the duplicate cache answers it).</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);
    public long Dropped(DropReason reason) => Interlocked.Read(ref _drops[(int)reason]);

    /// <summary>Every reason with at least one drop, by name.</summary>
    public IReadOnlyDictionary<string, long> DropsByReason()
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (int i = 1; i < _drops.Length; i++)
        {
            long count = Interlocked.Read(ref _drops[i]);
            if (count > 0)
                result[((DropReason)i).ToString()] = count;
        }
        return result;
    }

    public long TotalDropped
    {
        get
        {
            long sum = 0;
            for (int i = 1; i < _drops.Length; i++)
                sum += Interlocked.Read(ref _drops[i]);
            return sum;
        }
    }

    internal void OnReceived() => Interlocked.Increment(ref _received);
    internal void OnDrop(DropReason reason) => Interlocked.Increment(ref _drops[(int)reason]);
    internal void OnDuplicateAnswered() => Interlocked.Increment(ref _duplicatesAnswered);
    internal long OnSendError() => Interlocked.Increment(ref _sendErrors);

    internal void OnResponse(RadiusCode code)
    {
        switch (code)
        {
            case RadiusCode.AccessAccept: Interlocked.Increment(ref _accessAccepts); break;
            case RadiusCode.AccessReject: Interlocked.Increment(ref _accessRejects); break;
            case RadiusCode.AccountingResponse: Interlocked.Increment(ref _accountingResponses); break;
        }
    }

    internal void OnStatusResponse() => Interlocked.Increment(ref _statusResponses);

    public void Dispose() => _meter.Dispose();
}
