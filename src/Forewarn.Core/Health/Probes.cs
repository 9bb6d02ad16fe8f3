namespace Forewarn.Core.Health;

/// <summary>What a probe measures (patent ¶[0064]–[0068]).</summary>
public enum ProbeKind
{
    /// <summary>Server parameters: workers, queue, latency, drops.</summary>
    Server,
    /// <summary>System parameters: CPU, memory, network, processes.</summary>
    System,
    /// <summary>A service the server cannot work without (a RADIUS listener, the user store): down forces the worst score.</summary>
    Mandatory,
    /// <summary>A service for secondary functions (logging, the accounting sink): down defers every client and alerts.</summary>
    Dependent,
}

/// <summary>
/// One reading: <see cref="Headroom"/> is normalised to [0, 1] (1 = idle, 0 = exhausted) so that
/// readings compare; <see cref="Raw"/> and <see cref="Unit"/> are the figure an operator recognises.
/// </summary>
public readonly record struct ProbeSample(string Name, ProbeKind Kind, double Headroom, double Raw, string Unit, bool Healthy = true, string? Detail = null)
{
    public static double Clamp(double headroom) => double.IsNaN(headroom) ? 1 : Math.Clamp(headroom, 0, 1);

    /// <summary>
    /// Headroom of a load figure: 1 up to <paramref name="knee"/> (load that costs nothing), then falling
    /// linearly to 0 at <paramref name="limit"/> (the level at which the resource counts as exhausted).
    /// </summary>
    public static double FromLoad(double value, double limit, double knee = 0) =>
        limit <= knee ? 1 : value <= knee ? 1 : Clamp(1 - (value - knee) / (limit - knee));
}

/// <summary>A cheap, synchronous measurement taken on every monitor tick (10 Hz by default).</summary>
public interface IProbe
{
    string Name { get; }
    ProbeKind Kind { get; }
    ProbeSample Sample();
}
