using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Forewarn.Core.Aaa.Eap;

/// <summary>One EAP conversation in progress: the State that names it, its client, its machine.</summary>
public sealed class EapConversation(UInt128 state, string client, EapMachine machine, long created)
{
    public UInt128 State { get; } = state;
    public string Client { get; } = client;
    public EapMachine Machine { get; } = machine;
    public long Created { get; } = created;
    public long LastSeen { get; set; } = created;
    /// <summary>1 while a request of the conversation is being processed: a second one at once is dropped, never run beside it.</summary>
    internal int Busy;
    public bool Ended { get; set; }

    public byte[] StateBytes()
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, State);
        return bytes;
    }
}

/// <summary>
/// The conversations in progress, named by a State attribute of 16 random octets (RFC 2865 §5.24; from
/// the CSPRNG, so a State cannot be guessed) and bound to the client that began them. Bounded in total
/// and per client; when full, the oldest conversation that never got past its first request gives way
/// (a flood of EAP starts can only displace other bare starts, never a conversation in progress), and
/// when none qualifies the new one is refused. Idle conversations expire.
/// </summary>
public sealed class EapConversations(TimeProvider time, int maxTotal = 65_536, int maxPerClient = 8_192, TimeSpan? idle = null, TimeSpan? lifetime = null)
{
    private readonly Dictionary<UInt128, EapConversation> _byState = [];
    private readonly Dictionary<string, int> _perClient = new(StringComparer.Ordinal);
    private readonly LinkedList<EapConversation> _fresh = new();
    private readonly long _idleTicks = (long)((idle ?? TimeSpan.FromSeconds(30)).TotalSeconds * time.TimestampFrequency);
    private readonly long _lifetimeTicks = (long)((lifetime ?? TimeSpan.FromSeconds(120)).TotalSeconds * time.TimestampFrequency);
    private long _lastSweep;
    private long _refused;
    private long _displaced;

    public int Count { get { lock (_byState) return _byState.Count; } }

    /// <summary>Conversations of one client in progress.</summary>
    public int CountOf(string client) { lock (_byState) return _perClient.GetValueOrDefault(client); }
    public long Refused => Interlocked.Read(ref _refused);
    public long Displaced => Interlocked.Read(ref _displaced);

    /// <summary>A new conversation for <paramref name="client"/>; null when the limits leave no room.</summary>
    public EapConversation? TryStart(string client, EapMachine machine)
    {
        long now = time.GetTimestamp();
        lock (_byState)
        {
            if (now - _lastSweep > time.TimestampFrequency)
                Sweep(now);
            _perClient.TryGetValue(client, out int count);
            if (count >= maxPerClient && !Displace(client))
            {
                _refused++;
                return null;
            }
            if (_byState.Count >= maxTotal && !Displace(null))
            {
                _refused++;
                return null;
            }
            UInt128 state;
            Span<byte> random = stackalloc byte[16];
            do
            {
                RandomNumberGenerator.Fill(random);
                state = BinaryPrimitives.ReadUInt128BigEndian(random);
            }
            while (_byState.ContainsKey(state));
            var conversation = new EapConversation(state, client, machine, now);
            _byState[state] = conversation;
            _perClient[client] = _perClient.GetValueOrDefault(client) + 1;
            _fresh.AddLast(conversation);
            return conversation;
        }
    }

    /// <summary>The conversation a State names, if it is live and belongs to <paramref name="client"/>.</summary>
    public EapConversation? Find(ReadOnlySpan<byte> state, string client)
    {
        if (state.Length != 16)
            return null;
        var key = BinaryPrimitives.ReadUInt128BigEndian(state);
        long now = time.GetTimestamp();
        lock (_byState)
        {
            if (!_byState.TryGetValue(key, out var conversation) || conversation.Client != client || Expired(conversation, now))
                return null;
            conversation.LastSeen = now;
            return conversation;
        }
    }

    public void End(EapConversation conversation)
    {
        lock (_byState)
            Remove(conversation);
    }

    private bool Expired(EapConversation conversation, long now) =>
        now - conversation.LastSeen > _idleTicks || now - conversation.Created > _lifetimeTicks;

    private void Remove(EapConversation conversation)
    {
        if (conversation.Ended)
            return;
        conversation.Ended = true;
        _byState.Remove(conversation.State);
        if (_perClient.TryGetValue(conversation.Client, out int count))
        {
            if (count <= 1)
                _perClient.Remove(conversation.Client);
            else
                _perClient[conversation.Client] = count - 1;
        }
    }

    /// <summary>Ends the oldest bare start (of <paramref name="client"/>, or of anyone); false when there is none.</summary>
    private bool Displace(string? client)
    {
        for (var node = _fresh.First; node is not null;)
        {
            var next = node.Next;
            var conversation = node.Value;
            if (conversation.Ended || conversation.Machine.Progressed)
            {
                _fresh.Remove(node);
            }
            else if ((client is null || conversation.Client == client) && Volatile.Read(ref conversation.Busy) == 0)
            {
                _fresh.Remove(node);
                Remove(conversation);
                _displaced++;
                return true;
            }
            node = next;
        }
        return false;
    }

    private void Sweep(long now)
    {
        _lastSweep = now;
        List<EapConversation>? expired = null;
        foreach (var conversation in _byState.Values)
        {
            if (Expired(conversation, now))
                (expired ??= []).Add(conversation);
        }
        if (expired is not null)
            foreach (var conversation in expired)
                Remove(conversation);
        for (var node = _fresh.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.Ended || node.Value.Machine.Progressed)
                _fresh.Remove(node);
            node = next;
        }
    }
}
