using System.Net;

namespace Forewarn.Protocol.Advisory;

/// <summary>
/// The checks a receiver makes after the digest (docs/protocol.md §5): the message is addressed to it
/// and came from the server it names; its timestamp is within the window; its sequence is above the
/// last one accepted from that sender. A retransmission of the last accepted message (same sequence,
/// same digest) is recognised, so that it can be ACKed again without being acted on twice.
/// </summary>
public sealed class AdvisoryReceiver(TimeProvider time, TimeSpan window)
{
    private readonly Dictionary<IPAddress, (ulong Sequence, long Timestamp)> _last = [];
    private readonly Lock _lock = new();

    public static TimeSpan DefaultWindow { get; } = TimeSpan.FromSeconds(30);

    public enum Verdict { Accept, Retransmission, Reject }

    /// <summary>Decodes, verifies and checks one datagram from <paramref name="source"/> for <paramref name="self"/>.</summary>
    public Verdict Check(ReadOnlySpan<byte> data, IPAddress source, IPAddress? self, Func<byte, byte[]?> keyFor, out AdvisoryMessage? message, out AdvisoryError error) =>
        Check(data, source, self is null ? null : a => Normalise(a).Equals(Normalise(self)), keyFor, out message, out error);

    /// <summary>
    /// Decodes, verifies and checks one datagram from <paramref name="source"/>, addressed to one of the
    /// receiver's own addresses (<paramref name="isSelf"/>; a server on the wildcard address has several).
    /// </summary>
    public Verdict Check(ReadOnlySpan<byte> data, IPAddress source, Func<IPAddress, bool>? isSelf, Func<byte, byte[]?> keyFor, out AdvisoryMessage? message, out AdvisoryError error)
    {
        message = null;
        if (!AdvisoryCodec.TryPeekKeyId(data, out byte keyId))
        {
            error = AdvisoryError.Malformed;
            return Verdict.Reject;
        }
        if (keyFor(keyId) is not { } key)
        {
            error = AdvisoryError.UnknownKey;
            return Verdict.Reject;
        }
        error = AdvisoryCodec.TryDecode(data, key, out message);
        if (error != AdvisoryError.None)
            return Verdict.Reject;
        if (!Normalise(message!.Server).Equals(Normalise(source)))
        {
            error = AdvisoryError.MisaddressedServer;
            return Verdict.Reject;
        }
        if (isSelf is not null && !isSelf(message.Client))
        {
            error = AdvisoryError.MisaddressedClient;
            return Verdict.Reject;
        }
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (Math.Abs(now - message.Timestamp) > window.TotalMilliseconds)
        {
            error = AdvisoryError.Expired;
            return Verdict.Reject;
        }
        lock (_lock)
        {
            var sender = Normalise(message.Server);
            if (_last.TryGetValue(sender, out var last))
            {
                if (message.Sequence == last.Sequence && message.Timestamp == last.Timestamp)
                    return Verdict.Retransmission;
                if (message.Sequence <= last.Sequence)
                {
                    error = AdvisoryError.Replayed;
                    return Verdict.Reject;
                }
            }
            _last[sender] = (message.Sequence, message.Timestamp);
        }
        return Verdict.Accept;
    }

    private static IPAddress Normalise(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}

/// <summary>A sender's sequence: strictly increasing, and still increasing after a restart (it starts at the clock in microseconds).</summary>
public sealed class AdvisorySequence(TimeProvider time)
{
    private long _last = time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;

    public ulong Next() => (ulong)Interlocked.Increment(ref _last);
}
