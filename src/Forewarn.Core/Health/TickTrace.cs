using System.Globalization;
using System.Text;

namespace Forewarn.Core.Health;

/// <summary>
/// One CSV line per monitor tick: seconds since start, the score and its parts, the forecast, the zone,
/// and each probe's headroom. Recorded noise replayed through the forecast and the zone machine is how
/// their false-positive rate is measured (<c>forewarn bench replay</c>).
/// </summary>
internal sealed class TickTrace : IDisposable
{
    private readonly StreamWriter _writer;
    private long _lastFlush;

    public TickTrace(string path, IReadOnlyList<IProbe> probes)
    {
        _writer = new StreamWriter(path, append: false, new UTF8Encoding(false), 1 << 16);
        _writer.WriteLine("seconds,score,sustained,predicted,service,system,strain,zone," + string.Join(',', probes.Select(p => p.Name)));
    }

    public void Write(HealthSnapshot s, double seconds)
    {
        var line = new StringBuilder(160);
        var c = CultureInfo.InvariantCulture;
        line.Append(c, $"{seconds:0.000},{s.Score:0.0000},{s.Sustained:0.0000},{s.Predicted:0.0000},{s.ServiceScore:0.0000},{s.SystemScore:0.0000},{s.Strain:0.0000},{s.Zone}");
        foreach (var probe in s.Probes)
            line.Append(c, $",{ProbeSample.Clamp(probe.Headroom):0.0000}");
        _writer.WriteLine(line);
        if (seconds - _lastFlush >= 1)
        {
            _writer.Flush();
            _lastFlush = (long)seconds;
        }
    }

    public void Dispose() => _writer.Dispose();
}
