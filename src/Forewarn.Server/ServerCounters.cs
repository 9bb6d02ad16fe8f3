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

    /// <summary>The TACACS+ listener's counters; the metrics below tag both protocols.</summary>
    public Tacacs.TacacsCounters Tacacs { get; } = new();

    public ServerCounters()
    {
        _meter = new Meter("Forewarn.Server");
        _meter.CreateObservableCounter("forewarn.requests.received", ObserveReceived, description: "Requests received, by protocol");
        _meter.CreateObservableCounter("forewarn.requests.dropped", ObserveAllDrops, description: "Requests dropped, by protocol and reason");
        _meter.CreateObservableCounter("forewarn.responses", ObserveResponses, description: "Answers sent, by protocol and result");
        _meter.CreateObservableCounter("forewarn.radius.duplicates_answered", () => DuplicatesAnswered, description: "Retransmissions answered from the duplicate cache");
        _meter.CreateObservableCounter("forewarn.radius.send_errors", () => SendErrors, description: "Answers the operating system refused to send");
            }

    private static KeyValuePair<string, object?> Protocol(string name) => new("protocol", name);

    private IEnumerable<Measurement<long>> ObserveReceived()
    {
        yield return new Measurement<long>(Received, Protocol("radius"));
        yield return new Measurement<long>(Tacacs.Received, Protocol("tacacs"));
    }

    private IEnumerable<Measurement<long>> ObserveAllDrops()
    {
        foreach (var m in ObserveDrops())
            yield return new Measurement<long>(m.Value, [Protocol("radius"), .. m.Tags]);
        foreach (var (reason, count) in Tacacs.DropsByReason())
            yield return new Measurement<long>(count, Protocol("tacacs"), new KeyValuePair<string, object?>("reason", reason));
    }

    private IEnumerable<Measurement<long>> ObserveResponses()
    {
        static KeyValuePair<string, object?> Result(string result) => new("result", result);
        yield return new Measurement<long>(AccessAccepts, Protocol("radius"), Result("access-accept"));
        yield return new Measurement<long>(AccessRejects, Protocol("radius"), Result("access-reject"));
        yield return new Measurement<long>(AccountingResponses, Protocol("radius"), Result("accounting-response"));
        yield return new Measurement<long>(StatusResponses, Protocol("radius"), Result("status-server"));
        yield return new Measurement<long>(Tacacs.AuthenticationPasses, Protocol("tacacs"), Result("authentication-pass"));
        yield return new Measurement<long>(Tacacs.AuthenticationFailures, Protocol("tacacs"), Result("authentication-fail"));
        yield return new Measurement<long>(Tacacs.AuthorizationPasses, Protocol("tacacs"), Result("authorization-pass"));
        yield return new Measurement<long>(Tacacs.AuthorizationFailures, Protocol("tacacs"), Result("authorization-fail"));
        yield return new Measurement<long>(Tacacs.AccountingSuccesses, Protocol("tacacs"), Result("accounting-success"));
        yield return new Measurement<long>(Tacacs.Errors, Protocol("tacacs"), Result("error"));
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
    public IReadOnlyDictionary<string, long> DropsByReason() => ByReason<DropReason>(_drops);

    /// <summary>The non-zero counts of <paramref name="counts"/>, indexed by <typeparamref name="TReason"/> (0 is "none" and skipped), by name.</summary>
    internal static IReadOnlyDictionary<string, long> ByReason<TReason>(long[] counts) where TReason : struct, Enum
    {
        var result = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (int i = 1; i < counts.Length; i++)
        {
            long count = Interlocked.Read(ref counts[i]);
            if (count > 0)
                result[Enum.GetName(typeof(TReason), i) ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = count;
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
