using System.Collections.Concurrent;
using Forewarn.Core.Store;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Core.Aaa;

/// <summary>Turns stored reply items into typed attribute values once, and remembers the result.</summary>
public sealed class ReplyCompiler(RadiusDictionary dictionary)
{
    private readonly ConcurrentDictionary<ReplyItem, AttributeValue?> _cache = new();

    public RadiusDictionary Dictionary => dictionary;

    /// <summary>The typed value, or null (with the reason) when the item no longer parses, e.g. after a dictionary change.</summary>
    public AttributeValue? Compile(ReplyItem item, out string? error)
    {
        error = null;
        if (_cache.TryGetValue(item, out var cached))
            return cached;
        AttributeValue.TryParse(dictionary, item.Attribute, item.Value, out var value, out var reason);
        if (value is null)
            error = reason;
        if (_cache.Count < 10_000)
            _cache[item] = value;
        return value;
    }

    /// <summary>Validates an item for the command line: a clear error instead of a silently ignored attribute.</summary>
    public bool Validate(ReplyItem item, out string error)
    {
        var ok = AttributeValue.TryParse(dictionary, item.Attribute, item.Value, out _, out error);
        return ok;
    }
}
