using Forewarn.Core.Health;

namespace Forewarn.Core.Deferrals;

/// <summary>How the server chooses whom to defer (section <c>Forewarn:Advisory:Select</c>).</summary>
public sealed class SelectionOptions
{
    /// <summary>all | list | group | topology | enough.</summary>
    public string Strategy { get; set; } = "all";

    /// <summary>Strategy "list": client names to defer.</summary>
    public List<string> Clients { get; set; } = [];

    /// <summary>Strategy "group": device groups to defer.</summary>
    public List<string> Groups { get; set; } = [];

    /// <summary>Strategy "topology": how many clients (farthest / most lossy first); 0 = half of them.</summary>
    public int Count { get; set; }
}

/// <summary>
/// Chooses the clients of one class to defer when that class's zone goes to Defer. A forced move (a
/// mandatory or dependent service down, a drain) defers every client whatever the strategy.
/// </summary>
public static class DeferralPlanner
{
    public static IReadOnlyList<ActiveClient> Choose(IEnumerable<ActiveClient> candidates, SelectionOptions options, ZoneChange change, double loadToShed)
    {
        var active = candidates.Where(c => c.State == ClientState.Active).ToList();
        if (change.Cause is ZoneCause.MandatoryService or ZoneCause.DependentService or ZoneCause.Drain)
            return active;
        switch (options.Strategy)
        {
            case "list":
                return [.. active.Where(c => options.Clients.Contains(c.Client.Name, StringComparer.Ordinal))];
            case "group":
                return [.. active.Where(c => c.Client.DeviceGroup is { } g && options.Groups.Contains(g, StringComparer.Ordinal))];
            case "topology":
            {
                // Farthest (largest advisory round trip) and least reliable (unacknowledged advisories) first.
                int count = options.Count > 0 ? options.Count : (active.Count + 1) / 2;
                return [.. active
                    .OrderByDescending(c => c.Unacknowledged)
                    .ThenByDescending(c => double.IsNaN(c.RoundTripMs) ? 0 : c.RoundTripMs)
                    .Take(count)];
            }
            case "enough":
                return Enough(active, loadToShed);
            default:
                return active;
        }
    }

    /// <summary>
    /// Just enough clients, busiest first, that what they are likely to send (<see cref="Likely"/>) adds up
    /// to <paramref name="loadToShed"/> (a share, 0..1, of the total rate): the load that takes the score
    /// back above the threshold.
    /// </summary>
    public static IReadOnlyList<ActiveClient> Enough(IReadOnlyList<ActiveClient> active, double loadToShed, Func<ActiveClient, double>? likely = null)
    {
        // Nothing to shed is nobody, whatever the rates read (checked first: with no rate measured yet the
        // fallback below would send everyone).
        if (!(loadToShed > 0))
            return [];
        likely ??= Likely(active);
        double total = active.Sum(likely);
        if (total <= 0)
            return active;
        double target = Math.Clamp(loadToShed, 0, 1) * total, shed = 0;
        var chosen = new List<ActiveClient>();
        foreach (var client in active.OrderByDescending(c => c.SteadyRate))
        {
            if (shed >= target && chosen.Count > 0)
                break;
            chosen.Add(client);
            shed += likely(client);
        }
        return chosen;
    }

    // The variance of a client's ten-second rate (an exponential average of one-second Poisson counts, α = 0.1) as a share of its mean: α / (2 − α).
    private const double LongRateNoise = 0.1 / 1.9;

    /// <summary>
    /// What each of <paramref name="clients"/> is likely to send, requests/s: its rate over ten
    /// seconds, shrunk toward the clients' median by the share of their spread that is counting noise (a
    /// James–Stein estimate; median and spread are read robustly, so that a few clients far from the rest,
    /// such as one that sent heavily and has just gone quiet, do not set them). Where clients send alike,
    /// the busiest by measurement are the ones whose counts ran high, and credited with what they read, the
    /// budget shed too few: thirty clients for an excess of 89 requests/s (the overload benchmark, where
    /// every device sent 0.69/s). Where clients differ (a wireless controller beside a branch switch), the
    /// spread is theirs and their rates stand.
    /// </summary>
    public static Func<ActiveClient, double> Likely(IReadOnlyCollection<ActiveClient> clients)
    {
        if (clients.Count < 2)
            return static c => c.SteadyRate;
        double center = Median(clients.Select(c => c.SteadyRate));
        // The median absolute deviation, scaled to a normal spread's standard deviation; where more than
        // half the clients read alike (most of them idle, say), the plain variance.
        double deviation = 1.4826 * Median(clients.Select(c => Math.Abs(c.SteadyRate - center)));
        double spread = deviation > 0 ? deviation * deviation
            : clients.Sum(c => (c.SteadyRate - center) * (c.SteadyRate - center)) / (clients.Count - 1);
        double kept = Kept(center, spread, LongRateNoise);
        return c => Math.Max(0, center + kept * (c.SteadyRate - center));
    }

    /// <summary>
    /// What each of <paramref name="clients"/> sent in the last second, as a rate: its one-second count,
    /// shrunk toward the clients' mean by the share of their spread that is Poisson noise (alike clients
    /// are each credited with the mean; clients that differ keep their own count).
    /// </summary>
    public static Func<ActiveClient, double> LastSecond(IReadOnlyCollection<ActiveClient> clients)
    {
        if (clients.Count < 2)
            return static c => c.Rate;
        double mean = clients.Average(c => c.Rate);
        double spread = clients.Sum(c => (c.Rate - mean) * (c.Rate - mean)) / (clients.Count - 1);
        double kept = Kept(mean, spread, noise: 1);
        return c => mean + kept * (c.Rate - mean);
    }

    /// <summary>The share of the clients' spread around <paramref name="center"/> that is theirs, not counting noise (a variance of <paramref name="noise"/> × the center); with no spread at all every client reads the center, and keeps its own rate.</summary>
    private static double Kept(double center, double spread, double noise) =>
        spread > 0 ? Math.Clamp(1 - noise * Math.Max(0, center) / spread, 0, 1) : 1;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
