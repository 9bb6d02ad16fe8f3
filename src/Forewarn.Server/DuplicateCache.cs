using System.Collections.Concurrent;
using System.Net;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server;

/// <summary>
/// RFC 5080 §2.2.2 duplicate detection: a request from the same source address and port with the same
/// Identifier and Request Authenticator within the window is a retransmission. While the original is
/// in progress the copy is dropped; once answered, the copy gets the cached response and is never
/// processed twice.
/// </summary>
public sealed class DuplicateCache(TimeProvider time, TimeSpan window)
{
    public readonly record struct Key(IPAddress Address, int Port, byte Code, byte Identifier, UInt128 Authenticator);

    private sealed class Entry(long expires)
    {
        public volatile byte[]? Response;
        public long Expires = expires;
    }

    private readonly ConcurrentDictionary<Key, Entry> _entries = new();

    public int Count => _entries.Count;

    public static Key KeyOf(IPEndPoint source, RadiusPacket packet) =>
        new(source.Address, source.Port, (byte)packet.Code, packet.Identifier,
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(packet.Authenticator));

    public enum Outcome { New, InProgress, Answered }

    /// <summary>Claims the key for processing, or reports what an earlier copy left: in progress, or the response to resend.</summary>
    public Outcome Begin(Key key, out byte[]? cachedResponse)
    {
        cachedResponse = null;
        long now = time.GetTimestamp();
        var fresh = new Entry(now + (long)(window.TotalSeconds * time.TimestampFrequency));
        var entry = _entries.GetOrAdd(key, fresh);
        if (ReferenceEquals(entry, fresh))
            return Outcome.New;
        if (entry.Expires < now)
        {
            // Expired but not yet swept: treat as new.
            _entries[key] = fresh;
            return Outcome.New;
        }
        cachedResponse = entry.Response;
        return cachedResponse is null ? Outcome.InProgress : Outcome.Answered;
    }

    public void Complete(Key key, ReadOnlySpan<byte> response)
    {
        if (_entries.TryGetValue(key, out var entry))
            entry.Response = response.ToArray();
    }

    /// <summary>Forgets a request that produced no response, so that a retransmission is processed afresh.</summary>
    public void Abandon(Key key) => _entries.TryRemove(key, out _);

    public int Sweep()
    {
        long now = time.GetTimestamp();
        int removed = 0;
        foreach (var (key, entry) in _entries)
        {
            if (entry.Expires < now && _entries.TryRemove(key, out _))
                removed++;
        }
        return removed;
    }
}
