using System.Collections.Concurrent;
using System.Net;
using Forewarn.Protocol.Radius;

namespace Forewarn.Server;

/// <summary>
/// RFC 5080 §2.2.2 duplicate detection: a request from the same source address and port with the same
/// Identifier and Request Authenticator within the window is a retransmission. While the original is
/// in progress the copy is dropped; once answered, the copy gets the cached response and is never
/// processed twice.
/// A source can have only 256 identifiers in use, so the cache has one slot per (source, code,
/// identifier), not one entry per request: a new request on an identifier takes its slot over (as
/// FreeRADIUS's request list does), the slot's response buffer is reused, and the cache's size is
/// bounded by the sources seen in the window whatever the request rate.
/// </summary>
public sealed class DuplicateCache(TimeProvider time, TimeSpan window)
{
    public readonly record struct Key(IPAddress Address, int Port, byte Code, byte Identifier, UInt128 Authenticator)
    {
        internal SlotKey Slot => new(Address, Port, Code, Identifier);
    }

    internal readonly record struct SlotKey(IPAddress Address, int Port, byte Code, byte Identifier);

    private sealed class Slot
    {
        public UInt128 Authenticator;
        public long Expires;
        public bool InUse;
        public byte[] Response = [];
        public int ResponseLength = -1;     // -1: in progress
        public bool Removed;                // swept out of the dictionary: whoever holds it must look again
    }

    private readonly ConcurrentDictionary<SlotKey, Slot> _slots = new();
    private readonly long _windowTicks = (long)(window.TotalSeconds * time.TimestampFrequency);

    /// <summary>Slots held (at most 256 per source address, port and code).</summary>
    public int Count => _slots.Count;

    public static Key KeyOf(IPEndPoint source, RadiusPacket packet) =>
        new(source.Address, source.Port, (byte)packet.Code, packet.Identifier,
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(packet.Authenticator));

    public enum Outcome { New, InProgress, Answered }

    /// <summary>
    /// Claims the key for processing, or reports what an earlier copy left: in progress, or answered, in
    /// which case the response is copied into <paramref name="response"/> and its length returned in <paramref name="cachedLength"/>.
    /// </summary>
    public Outcome Begin(Key key, Span<byte> response, out int cachedLength)
    {
        cachedLength = 0;
        long now = time.GetTimestamp();
        while (true)
        {
            var slot = _slots.GetOrAdd(key.Slot, static _ => new Slot());
            lock (slot)
            {
                if (slot.Removed)
                    continue; // Sweep took it out between the lookup and the lock
                return Begin(slot, key, now, response, out cachedLength);
            }
        }
    }

    /// <summary>Called under the slot's lock.</summary>
    private Outcome Begin(Slot slot, Key key, long now, Span<byte> response, out int cachedLength)
    {
        cachedLength = 0;
        if (slot.InUse && slot.Authenticator == key.Authenticator && slot.Expires >= now)
        {
            if (slot.ResponseLength < 0)
                return Outcome.InProgress;
            slot.Response.AsSpan(0, slot.ResponseLength).CopyTo(response);
            cachedLength = slot.ResponseLength;
            return Outcome.Answered;
        }
        slot.InUse = true;
        slot.Authenticator = key.Authenticator;
        slot.Expires = now + _windowTicks;
        slot.ResponseLength = -1;
        return Outcome.New;
    }

    public void Complete(Key key, ReadOnlySpan<byte> response)
    {
        if (!_slots.TryGetValue(key.Slot, out var slot))
            return;
        lock (slot)
        {
            if (!slot.InUse || slot.Authenticator != key.Authenticator)
                return;
            if (slot.Response.Length < response.Length)
                slot.Response = new byte[Math.Max(response.Length, 64)];
            response.CopyTo(slot.Response);
            slot.ResponseLength = response.Length;
        }
    }

    /// <summary>Forgets a request that produced no response, so that a retransmission is processed afresh.</summary>
    public void Abandon(Key key)
    {
        if (!_slots.TryGetValue(key.Slot, out var slot))
            return;
        lock (slot)
        {
            if (slot.Authenticator == key.Authenticator)
                slot.InUse = false;
        }
    }

    /// <summary>Removes slots whose last request is older than the window (sources that went quiet).</summary>
    public int Sweep()
    {
        long now = time.GetTimestamp();
        int removed = 0;
        foreach (var (key, slot) in _slots)
        {
            // Decided and removed under the slot's lock: a request claiming the slot meanwhile either
            // finds it still here (and the sweep leaves it) or sees it removed and takes a new one.
            lock (slot)
            {
                if (!(slot.Expires < now && slot.ResponseLength >= 0 || !slot.InUse))
                    continue;
                if (_slots.TryRemove(KeyValuePair.Create(key, slot)))
                {
                    slot.Removed = true;
                    removed++;
                }
            }
        }
        return removed;
    }
}
