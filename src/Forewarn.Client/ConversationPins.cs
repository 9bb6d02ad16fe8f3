using System.Collections.Concurrent;
using Forewarn.Protocol.Radius;

namespace Forewarn.Client;

/// <summary>
/// Multi-round conversations (EAP: an Access-Challenge whose State the next Access-Request echoes)
/// stay with the server that began them: only it knows the State. Each State is pinned to its server
/// when the challenge arrives and unpinned when the conversation ends or after <paramref name="lifetime"/>.
/// A FAILOVER does not move a pinned conversation (it finishes where it began); only new ones go to
/// the alternates.
/// </summary>
internal sealed class ConversationPins(TimeProvider time, TimeSpan lifetime, int capacity = 65_536)
{
    private readonly ConcurrentDictionary<string, (PoolServer Server, DateTimeOffset Expires)> _pins = new(StringComparer.Ordinal);
    private DateTimeOffset _lastSweep;

    public int Count => _pins.Count;

    private static string? StateOf(RadiusRequest request)
    {
        if (request.Code != RadiusCode.AccessRequest)
            return null;
        foreach (var (type, value) in request.Attributes)
        {
            if (type == AttributeTypes.State)
                return Convert.ToBase64String(value);
        }
        return null;
    }

    /// <summary>The server holding the conversation <paramref name="request"/> continues, if it is pinned.</summary>
    public PoolServer? Find(RadiusRequest request) =>
        StateOf(request) is { } state && _pins.TryGetValue(state, out var pin) && pin.Expires > time.GetUtcNow() ? pin.Server : null;

    public void Forget(RadiusRequest request)
    {
        if (StateOf(request) is { } state)
            _pins.TryRemove(state, out _);
    }

    /// <summary>After an answer: a challenge pins its State to <paramref name="server"/>; the end of a conversation unpins the State it continued.</summary>
    public void Learn(RadiusRequest request, byte[] response, PoolServer server)
    {
        if (request.Code != RadiusCode.AccessRequest || RadiusPacket.TryParse(response, out var answer) != DropReason.None)
            return;
        if (StateOf(request) is { } previous)
            _pins.TryRemove(previous, out _);
        if (answer.Code != RadiusCode.AccessChallenge || !answer.TryGetAttribute(AttributeTypes.State, out var state))
            return;
        var now = time.GetUtcNow();
        if (_pins.Count >= capacity)
        {
            Sweep(now);
            if (_pins.Count >= capacity)
                return; // unpinned, the next round goes where the pool sends it (the same server while it is healthy)
        }
        else if (now - _lastSweep > lifetime)
        {
            Sweep(now);
        }
        _pins[Convert.ToBase64String(state)] = (server, now + lifetime);
    }

    private void Sweep(DateTimeOffset now)
    {
        _lastSweep = now;
        foreach (var (key, pin) in _pins)
        {
            if (pin.Expires <= now)
                _pins.TryRemove(key, out _);
        }
    }
}
