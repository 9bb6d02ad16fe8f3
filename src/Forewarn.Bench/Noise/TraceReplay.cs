using System.Globalization;
using Forewarn.Core.Health;

namespace Forewarn.Bench.Noise;

/// <summary>What the forecast made of one recorded trace.</summary>
public sealed record ReplayResult(string Trace, string Series, double Hours, int Episodes, double EpisodesPerHour, int PredictedCrossings, double? FirstCrossingLeadSeconds);

/// <summary>
/// Replays a monitor trace (Forewarn:Health:TraceFile, one line per tick) through the forecast as the
/// server runs it: how often a significant, persistent fall is called ("episodes"), how often it predicts
/// the failover threshold crossed within the horizon, and, where the recorded series does cross, how long
/// before the crossing the first prediction came. On recorded noise every episode is a false positive.
/// The same trace's raw score (before the 3-of-5 rule) is replayed too, as the harder case.
/// </summary>
public static class TraceReplay
{
    public static IEnumerable<ReplayResult> Run(string path, HealthOptions options)
    {
        // The warm-up is left out, as the zones leave it out.
        var rows = Read(path, options.WarmupSeconds);
        foreach (var (series, column) in new[] { ("sustained", 2), ("raw score", 1) })
            yield return Replay(Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) + "/" + Path.GetFileName(path), series, rows, column, options);
    }

    private static List<double[]> Read(string path, double warmupSeconds)
    {
        var rows = new List<double[]>();
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        reader.ReadLine();
        while (reader.ReadLine() is { } line)
        {
            var c = line.Split(',');
            if (c.Length > 2 && double.TryParse(c[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double t)
                && double.TryParse(c[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double raw)
                && double.TryParse(c[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double sustained)
                && t >= warmupSeconds)
                rows.Add([t, raw, sustained]);
        }
        return rows;
    }

    private static ReplayResult Replay(string trace, string series, List<double[]> rows, int column, HealthOptions options)
    {
        var forecast = new TrendForecaster(options);
        const long frequency = 1000;
        int episodes = 0, crossings = 0;
        bool falling = false, predicting = false;
        double? firstPrediction = null, firstCrossing = null;
        double failover = options.Thresholds.Failover;
        foreach (var row in rows)
        {
            double value = row[column];
            forecast.Add(value, (long)(row[0] * frequency), frequency);
            if (forecast.Falling && !falling)
                episodes++;
            falling = forecast.Falling;
            bool predicts = forecast.Predict(options.ForecastHorizonSeconds, value) < failover && value >= failover;
            if (predicts && !predicting)
            {
                crossings++;
                firstPrediction ??= row[0];
            }
            predicting = predicts;
            if (value < failover)
                firstCrossing ??= row[0];
        }
        double hours = rows.Count == 0 ? 0 : (rows[^1][0] - rows[0][0]) / 3600;
        double? lead = firstPrediction is { } p && firstCrossing is { } c && p <= c ? Math.Round(c - p, 2) : null;
        return new ReplayResult(trace, series, Math.Round(hours, 3), episodes, hours > 0 ? Math.Round(episodes / hours, 1) : 0, crossings, lead);
    }

    public static string Table(IEnumerable<ReplayResult> results)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine("| trace | series | hours | falls called | per hour | predicted failover crossings | lead of the first (s) |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var r in results)
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Trace} | {r.Series} | {r.Hours:0.###} | {r.Episodes} | {r.EpisodesPerHour:0.#} | {r.PredictedCrossings} | {(r.FirstCrossingLeadSeconds is { } l ? l.ToString("0.0", CultureInfo.InvariantCulture) : "–")} |"));
        return text.ToString();
    }
}
