namespace Forewarn.Core.Health;

/// <summary>
/// Folds probe headrooms into one performance score in [0, 1]. The default takes the minimum: the
/// scarcest resource decides. "weighted-mean" averages with per-probe weights. Either way a mandatory
/// service that is down forces 0, and a probe with weight 0 is left out.
/// </summary>
public sealed class ScoreFunction(HealthOptions options)
{
    public double Compute(IReadOnlyList<ProbeSample> samples)
    {
        double min = 1, weighted = 0, totalWeight = 0;
        foreach (var sample in samples)
        {
            if (sample.Kind == ProbeKind.Mandatory && !sample.Healthy)
                return 0;
            // Dependent services do not lower the score: their failure is the dependent-service rule's business.
            if (sample.Kind == ProbeKind.Dependent)
                continue;
            double weight = options.Weights.TryGetValue(sample.Name, out var w) ? w : 1;
            if (weight <= 0)
                continue;
            double headroom = ProbeSample.Clamp(sample.Headroom);
            min = Math.Min(min, headroom);
            weighted += weight * headroom;
            totalWeight += weight;
        }
        return options.ScoreFunction == "weighted-mean" ? (totalWeight == 0 ? 1 : weighted / totalWeight) : min;
    }
}

/// <summary>
/// A least-squares line through the last <see cref="HealthOptions.ForecastWindowSeconds"/> of scores,
/// extrapolated over the horizon. A fall counts only when the slope is significant — at least
/// <see cref="HealthOptions.ForecastNoiseFactor"/> standard errors below zero for three ticks in a
/// row — so noise around a steady level stays silent while a ramp is seen early. (Holt smoothing gated
/// on the one-step error was tried first and raised false alarms on the noise test; see docs.)
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

    /// <summary>True while the fall is significant.</summary>
    public bool Falling => _significantRun >= 3;

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
        if (n < 10)
        {
            Level = latest;
            Trend = 0;
            _significantRun = 0;
            return;
        }
        double meanT = 0, meanY = 0;
        for (int i = 0; i < n; i++)
        {
            meanT += _t[i];
            meanY += _y[i];
        }
        meanT /= n;
        meanY /= n;
        double stt = 0, sty = 0;
        for (int i = 0; i < n; i++)
        {
            double dt = _t[i] - meanT;
            stt += dt * dt;
            sty += dt * (_y[i] - meanY);
        }
        double slope = stt > 0 ? sty / stt : 0;
        double residual = 0;
        for (int i = 0; i < n; i++)
        {
            double e = _y[i] - (meanY + slope * (_t[i] - meanT));
            residual += e * e;
        }
        // Standard error of the slope; a floor keeps a perfectly clean line from dividing by zero.
        double standardError = Math.Sqrt(Math.Max(residual / (n - 2), 1e-8) / stt);
        Trend = slope;
        Level = Math.Clamp(meanY + slope * (now - meanT), 0, 1);
        bool significant = slope < 0 && -slope >= _options.ForecastNoiseFactor * standardError
            && -slope * _options.ForecastHorizonSeconds >= 0.02;
        _significantRun = significant ? _significantRun + 1 : 0;
    }

    /// <summary>The score expected <paramref name="horizonSeconds"/> from now when a significant fall is under way; else the fitted level.</summary>
    public double Predict(double horizonSeconds) =>
        Falling ? Math.Clamp(Level + Trend * horizonSeconds, 0, 1) : Level;
}
