using System.Globalization;

namespace Forewarn.Storage.Sqlite;

/// <summary>
/// The dedup keys of the accounting records stored in the last <see cref="Window"/>, at most
/// <see cref="Capacity"/> of them (oldest forgotten first): a retransmission arrives within seconds or a
/// few minutes, so this is where it is recognised, without a unique index over every record ever kept.
/// Keys are the first 64 bits of the record's SHA-256 dedup key (a false match among 300,000 keys has a
/// chance of about 2⁻⁴⁶). Used under the store's accounting lock only.
/// </summary>
internal sealed class RecentKeys
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);
    public const int Capacity = 300_000;

    private readonly HashSet<ulong> _keys = [];
    private readonly Queue<(ulong Key, long At)> _order = new();

    public int Count => _keys.Count;

    public static ulong Of(string dedupKey) => ulong.Parse(dedupKey.AsSpan(0, 16), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public bool Contains(ulong key) => _keys.Contains(key);

    public void Add(ulong key, long atMilliseconds)
    {
        if (!_keys.Add(key))
            return;
        _order.Enqueue((key, atMilliseconds));
        long horizon = atMilliseconds - (long)Window.TotalMilliseconds;
        while (_order.Count > Capacity || (_order.Count > 0 && _order.Peek().At < horizon))
            _keys.Remove(_order.Dequeue().Key);
    }
}
