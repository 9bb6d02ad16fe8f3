namespace Forewarn.Core.Health;

/// <summary>
/// One tick's score and what it is made of. <see cref="Service"/> is the evidence of the service itself
/// (workers, queueing delay, latency against the objective, distress drops, service checks);
/// <see cref="System"/> is the machine's sustained pressure (CPU, memory, run queue, network);
/// <see cref="Strain"/>, 0..1, is how much strain the service shows, and so how much the machine's
/// pressure is allowed to count.
/// </summary>
public readonly record struct ScoreReading(double Score, double Service, double System, double Strain);

/// <summary>
/// Folds probe headrooms into one performance score in [0, 1].
/// <para>
/// Service probes decide. The default takes their minimum (the scarcest resource decides);
/// "weighted-mean" averages them with per-probe weights. A mandatory service that is down forces 0; a
/// probe with weight 0 is left out.
/// </para>
/// <para>
/// System probes inform, and count in proportion to the strain the service shows: with the service at
/// full headroom a busy machine changes nothing (a compiler next door, a burst of another process, the
/// operator's own <c>forewarn status</c>); as the service's headroom falls towards
/// <see cref="HealthOptions.StrainFullAt"/> the machine's pressure counts more, and below it in full, so a
/// starved machine moves the zone before the service's own figures reach the failover threshold. This is
/// how DAGOR (WeChat's overload control) treats CPU: never a trigger on its own.
/// </para>
/// </summary>
public sealed class ScoreFunction(HealthOptions options)
{
    public double Compute(IReadOnlyList<ProbeSample> samples) => Read(samples).Score;

    public ScoreReading Read(IReadOnlyList<ProbeSample> samples)
    {
        double min = 1, weighted = 0, totalWeight = 0, system = 1;
        foreach (var sample in samples)
        {
            if (sample.Kind == ProbeKind.Mandatory && !sample.Healthy)
                return new ScoreReading(0, 0, system, 1);
            // Dependent services do not lower the score: their failure is the dependent-service rule's business.
            if (sample.Kind == ProbeKind.Dependent)
                continue;
            double weight = options.Weights.TryGetValue(sample.Name, out var w) ? w : 1;
            if (weight <= 0)
                continue;
            double headroom = ProbeSample.Clamp(sample.Headroom);
            if (sample.Kind == ProbeKind.System)
            {
                system = Math.Min(system, headroom);
                continue;
            }
            min = Math.Min(min, headroom);
            weighted += weight * headroom;
            totalWeight += weight;
        }
        double service = options.ScoreFunction == "weighted-mean" ? (totalWeight == 0 ? 1 : weighted / totalWeight) : min;
        double strain = Math.Clamp((1 - service) / (1 - options.StrainFullAt), 0, 1);
        double gated = 1 - (1 - system) * strain;
        return new ScoreReading(Math.Min(service, gated), service, system, strain);
    }
}

/// <summary>
/// The last few values of a series and an order statistic over them: what "k of n samples" means.
/// <see cref="Lowest"/>(k) is the k-th lowest of the last n values: it falls below a threshold only
/// once k of the n values have (a breach that persists), and one stray sample never moves it.
/// </summary>
public sealed class RecentValues(int capacity)
{
    private readonly double[] _values = new double[Math.Max(1, capacity)];
    private readonly double[] _sorted = new double[Math.Max(1, capacity)];
    private int _count;
    private int _next;

    public int Count => _count;
    public int Capacity => _values.Length;

    public void Add(double value)
    {
        _values[_next] = value;
        _next = (_next + 1) % _values.Length;
        _count = Math.Min(_count + 1, _values.Length);
    }

    public void Clear() => _count = _next = 0;

    /// <summary>The k-th lowest (1-based) of the values held; with fewer than k values, the highest.</summary>
    public double Lowest(int k)
    {
        if (_count == 0)
            return double.NaN;
        var sorted = _sorted.AsSpan(0, _count);
        _values.AsSpan(0, _count).CopyTo(sorted);
        sorted.Sort();
        return sorted[Math.Clamp(k, 1, _count) - 1];
    }

    /// <summary>The highest value held: "sustained" — it is low only if every value was.</summary>
    public double Highest()
    {
        if (_count == 0)
            return double.NaN;
        double max = double.NegativeInfinity;
        foreach (var v in _values.AsSpan(0, _count))
            max = Math.Max(max, v);
        return max;
    }
}

/// <summary>
/// A least-squares line through the last <see cref="HealthOptions.ForecastWindowSeconds"/> of the
/// persistent score, extrapolated over the horizon. A fall counts only when it is
/// <list type="bullet">
/// <item>fitted to a full window (a line through a few samples predicts anything),</item>
/// <item>significant: the slope at least <see cref="HealthOptions.ForecastNoiseFactor"/> standard errors
/// below zero, and large enough to lose 0.1 of headroom over the horizon,</item>
/// <item>real: the fitted level has already fallen at least <see cref="HealthOptions.ForecastMinimumDrop"/>
/// below the window's best (a flat score at 1 with one dip is not a ramp),</item>
/// <item>a ramp, not a step: the score fell in at least five separate samples of the window (a machine
/// that got busy and stayed so drops the score once; extrapolating that drop predicted a crossing
/// that never came, in the noise benchmark); and where one sample's fall is half the window's, only
/// what came after that step is fitted,</item>
/// <item>and persistent: all of that for <see cref="HealthOptions.ForecastPersistSamples"/> ticks in a row.</item>
/// </list>
/// (Holt smoothing gated on the one-step error was tried first and raised false alarms on the noise
/// test; see docs/benchmarks.md for the false-positive rate and the lead on ramps.)
/// </summary>
public sealed class TrendForecaster
{
    private readonly HealthOptions _options;
    private readonly double[] _t;
    private readonly double[] _y;
    private int _count;
    private int _next;
    private int _significantRun;
    private long _origin = -1;

    public TrendForecaster(HealthOptions options)
    {
        _options = options;
        int capacity = (int)Math.Clamp(Math.Ceiling(options.ForecastWindowSeconds * options.SampleHz), 5, 2000);
        _t = new double[capacity];
        _y = new double[capacity];
    }

    /// <summary>Change of the score per second (the fitted slope).</summary>
    public double Trend { get; private set; }

    /// <summary>The fitted score now.</summary>
    public double Level { get; private set; } = 1;

    /// <summary>True while the fall is significant, real and persistent.</summary>
    public bool Falling => _significantRun >= Math.Max(1, _options.ForecastPersistSamples);

    public void Add(double value, long timestamp, long frequency)
    {
        if (_origin < 0)
            _origin = timestamp;
        double t = (timestamp - _origin) / (double)frequency;
        _t[_next] = t;
        _y[_next] = value;
        _next = (_next + 1) % _t.Length;
        _count = Math.Min(_count + 1, _t.Length);
        Fit(t, value);
    }

    private void Fit(double now, double latest)
    {
        int n = _count;
        if (n < _t.Length)
        {
            ClaimNothing(latest);
            return;
        }
        double best = 0;
        for (int i = 0; i < n; i++)
            best = Math.Max(best, _y[i]);
        // A step in the window (one sample's fall at least half of the whole fall so far) is a change of
        // level, not a trend: only what came after it is fitted. A line through the step and a swing after
        // it was extrapolated through the failover threshold (measured: a score that stepped from 1 to 0.5
        // and swung ±0.05 there, every device deferred); a step with too little after it claims nothing.
        int from = 0;
        var (stepAt, stepDrop) = LargestFall();
        if (stepDrop >= 0.1 && stepDrop >= 0.5 * (best - latest))
        {
            from = stepAt;
            if (n - from < Math.Max(10, n / 4))
            {
                ClaimNothing(latest);
                return;
            }
            // After a step, the drop and the falls that make a ramp are counted from the step on too: the step itself is neither.
            best = 0;
            for (int k = from; k < n; k++)
                best = Math.Max(best, _y[At(k)]);
        }
        var (slope, level, standardError) = Line(from, now);
        Trend = slope;
        Level = Math.Clamp(level, 0, 1);
        bool significant = slope < 0 && -slope >= _options.ForecastNoiseFactor * standardError
            && -slope * _options.ForecastHorizonSeconds >= 0.1
            && best - Level >= _options.ForecastMinimumDrop
            && Decreases(from) >= MinimumDecreases;
        _significantRun = significant ? _significantRun + 1 : 0;
    }

    /// <summary>Too little to fit a line to (a window not yet full, a step just now): no trend, the level is the latest sample.</summary>
    private void ClaimNothing(double latest)
    {
        Level = latest;
        Trend = 0;
        _significantRun = 0;
    }

    /// <summary>The sample <paramref name="k"/> places after the oldest of the window.</summary>
    private int At(int k) => (_next - _count + k + 2 * _t.Length) % _t.Length;

    /// <summary>The least-squares line through the window's samples from the <paramref name="from"/>-th (oldest first): its slope, its value now, and the slope's standard error.</summary>
    private (double Slope, double Level, double StandardError) Line(int from, double now)
    {
        int n = _count - from;
        double meanT = 0, meanY = 0;
        for (int k = from; k < _count; k++)
        {
            meanT += _t[At(k)];
            meanY += _y[At(k)];
        }
        meanT /= n;
        meanY /= n;
        double stt = 0, sty = 0;
        for (int k = from; k < _count; k++)
        {
            double dt = _t[At(k)] - meanT;
            stt += dt * dt;
            sty += dt * (_y[At(k)] - meanY);
        }
        double slope = stt > 0 ? sty / stt : 0;
        double residual = 0;
        for (int k = from; k < _count; k++)
        {
            double e = _y[At(k)] - (meanY + slope * (_t[At(k)] - meanT));
            residual += e * e;
        }
        // Standard error of the slope; a floor keeps a perfectly clean line from dividing by zero.
        double standardError = stt > 0 ? Math.Sqrt(Math.Max(residual / Math.Max(1, n - 2), 1e-8) / stt) : double.PositiveInfinity;
        return (slope, meanY + slope * (now - meanT), standardError);
    }

    /// <summary>The window's largest fall from one sample to the next: where it lands (oldest first) and how far.</summary>
    private (int At, double Drop) LargestFall()
    {
        int at = 0;
        double drop = 0;
        for (int k = 1; k < _count; k++)
        {
            double fall = _y[At(k - 1)] - _y[At(k)];
            if (fall > drop)
                (at, drop) = (k, fall);
        }
        return (at, drop);
    }

    /// <summary>A ramp falls in many steps; a step change (the machine got busy, then stayed so) in one or two.</summary>
    private const int MinimumDecreases = 5;

    /// <summary>Samples in the window, in time order, that fell below the one before.</summary>
    private int Decreases(int from)
    {
        int count = 0;
        for (int k = from + 1; k < _count; k++)
        {
            if (_y[At(k)] < _y[At(k - 1)] - 0.002)
                count++;
        }
        return count;
    }

    /// <summary>The score expected <paramref name="horizonSeconds"/> from now when a fall is under way; else <paramref name="current"/>: no claim.</summary>
    public double Predict(double horizonSeconds, double current) =>
        Falling ? Math.Min(current, Math.Clamp(Level + Trend * horizonSeconds, 0, 1)) : current;
}
