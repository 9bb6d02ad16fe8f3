namespace Forewarn.Server.Health;

/// <summary>
/// Service latencies over a sliding window, as log-scale histograms in one-second slots: recording is
/// one interlocked increment, a percentile sums at most window × buckets counters. Buckets grow by
/// 25 % from 10 µs, so a percentile is exact to within a quarter.
/// </summary>
public sealed class LatencyWindow
{
    private const int Buckets = 80;
    private const double FirstBucketMs = 0.01;
    private const double Growth = 1.25;
    private static readonly double LogGrowth = Math.Log(Growth);

    private readonly TimeProvider _time;
    private readonly int _seconds;
    private readonly long[][] _slots;
    private readonly long[] _slotSecond;

    public LatencyWindow(TimeProvider time, int seconds = 10)
    {
        _time = time;
        _seconds = seconds;
        _slots = new long[seconds][];
        for (int i = 0; i < seconds; i++)
            _slots[i] = new long[Buckets];
        _slotSecond = new long[seconds];
        Array.Fill(_slotSecond, -1);
    }

    private long Second => _time.GetTimestamp() / _time.TimestampFrequency;

    public static int BucketOf(double milliseconds) =>
        milliseconds <= FirstBucketMs ? 0 : Math.Min(Buckets - 1, 1 + (int)(Math.Log(milliseconds / FirstBucketMs) / LogGrowth));

    /// <summary>The upper edge of a bucket, reported as its percentile value.</summary>
    public static double UpperEdge(int bucket) => FirstBucketMs * Math.Pow(Growth, bucket);

    public void Record(TimeSpan latency)
    {
        long second = Second;
        int index = (int)(second % _seconds);
        if (Volatile.Read(ref _slotSecond[index]) != second)
        {
            lock (_slots[index])
            {
                if (_slotSecond[index] != second)
                {
                    Array.Clear(_slots[index]);
                    Volatile.Write(ref _slotSecond[index], second);
                }
            }
        }
        Interlocked.Increment(ref _slots[index][BucketOf(latency.TotalMilliseconds)]);
    }

    /// <summary>Forgets every recorded latency (the slow first requests after start, once warm-up ends).</summary>
    public void Reset()
    {
        for (int i = 0; i < _seconds; i++)
        {
            lock (_slots[i])
            {
                Volatile.Write(ref _slotSecond[i], -1);
                Array.Clear(_slots[i]);
            }
        }
    }

    /// <summary>Percentiles over the window, in milliseconds, and the count of requests; NaN when nothing was recorded.</summary>
    public (double P50, double P95, double P99, long Count) Percentiles()
    {
        var (p50, p95, p99, _, count) = Percentiles(_ => 0.99);
        return (p50, p95, p99, count);
    }

    /// <summary>
    /// As <see cref="Percentiles()"/>, and the quantile (0..1) that <paramref name="quantileOf"/> chooses for
    /// the count; only the last <paramref name="lastSeconds"/> one-second slots (the current one included)
    /// when fewer than the window.
    /// </summary>
    public (double P50, double P95, double P99, double Quantile, long Count) Percentiles(Func<long, double> quantileOf, int lastSeconds = int.MaxValue)
    {
        Span<long> totals = stackalloc long[Buckets];
        totals.Clear();
        long now = Second, count = 0, span = Math.Clamp(lastSeconds, 1, _seconds);
        for (int s = 0; s < _seconds; s++)
        {
            if (now - Volatile.Read(ref _slotSecond[s]) >= span)
                continue;
            var slot = _slots[s];
            for (int b = 0; b < Buckets; b++)
            {
                long c = Volatile.Read(ref slot[b]);
                totals[b] += c;
                count += c;
            }
        }
        if (count == 0)
            return (double.NaN, double.NaN, double.NaN, double.NaN, 0);
        return (At(totals, count, 0.50), At(totals, count, 0.95), At(totals, count, 0.99), At(totals, count, quantileOf(count)), count);
    }

    private static double At(ReadOnlySpan<long> totals, long count, double quantile)
    {
        long rank = (long)Math.Ceiling(quantile * count), seen = 0;
        for (int b = 0; b < totals.Length; b++)
        {
            seen += totals[b];
            if (seen >= rank)
                return UpperEdge(b);
        }
        return UpperEdge(totals.Length - 1);
    }
}
