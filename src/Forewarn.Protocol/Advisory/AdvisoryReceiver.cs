using System.Net;

namespace Forewarn.Protocol.Advisory;

/// <summary>
/// The checks a receiver makes after the digest (docs/protocol.md §5): the message is addressed to it
/// and came from the server it names; its timestamp is within the window; its sequence is above the
/// last one accepted from that sender. A retransmission of the last accepted message (same sequence,
/// same digest) is recognised, so that it can be ACKed again without being acted on twice.
/// A sender is forgotten once the newest timestamp it sent is outside the window: every message it sent
/// before is then rejected as expired anyway, so nothing can be replayed, the state stays bounded by the
/// senders heard within one window, and a sender that restarted with a lower sequence (a NAS whose clock
/// was stepped back) is accepted again after at most one window instead of never.
/// </summary>
public sealed class AdvisoryReceiver(TimeProvider time, TimeSpan window)
{
    private readonly Dictionary<IPAddress, Last> _last = [];
    private readonly Lock _lock = new();
    private long _sweptAt = time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The last message accepted from a sender, and the newest timestamp any of its accepted messages carried.</summary>
    private readonly record struct Last(ulong Sequence, long Timestamp, long NewestTimestamp);

    /// <summary>How many senders' sequences are remembered.</summary>
    public int Senders
    {
        get
        {
            lock (_lock)
                return _last.Count;
        }
    }

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
            Sweep(now);
            var sender = Normalise(message.Server);
            long newest = message.Timestamp;
            if (_last.TryGetValue(sender, out var last) && now - last.NewestTimestamp <= window.TotalMilliseconds)
            {
                if (message.Sequence == last.Sequence && message.Timestamp == last.Timestamp)
                    return Verdict.Retransmission;
                if (message.Sequence <= last.Sequence)
                {
                    error = AdvisoryError.Replayed;
                    return Verdict.Reject;
                }
                newest = Math.Max(newest, last.NewestTimestamp);
            }
            _last[sender] = new Last(message.Sequence, message.Timestamp, newest);
        }
        return Verdict.Accept;
    }

    /// <summary>Every half window, forgets the senders whose newest message has expired.</summary>
    private void Sweep(long now)
    {
        if (now - _sweptAt < window.TotalMilliseconds / 2)
            return;
        _sweptAt = now;
        List<IPAddress>? expired = null;
        foreach (var (sender, last) in _last)
        {
            if (now - last.NewestTimestamp > window.TotalMilliseconds)
                (expired ??= []).Add(sender);
        }
        foreach (var sender in expired ?? [])
            _last.Remove(sender);
    }

    private static IPAddress Normalise(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}

/// <summary>
/// A sender's sequence: (boot epoch × 2³²) + a counter, strictly increasing within a run and from one
/// run to the next as long as each run's epoch is above the last one's. A server keeps its epoch in its
/// data directory (one more than the last, or the clock in seconds if that is higher), so its sequences
/// keep increasing across restarts whatever its clock does; a client without storage takes the clock in
/// seconds, and a receiver forgets it within one window if its clock was stepped back.
/// </summary>
public sealed class AdvisorySequence(ulong epoch)
{
    private long _last = (long)(epoch << 32);

    /// <summary>An epoch from the clock: Unix seconds at start.</summary>
    public AdvisorySequence(TimeProvider time) : this((ulong)time.GetUtcNow().ToUnixTimeSeconds())
    {
    }

    public ulong Epoch { get; } = epoch;

    public ulong Next() => (ulong)Interlocked.Increment(ref _last);
}
