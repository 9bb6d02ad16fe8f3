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
    /// Just enough clients, busiest first, that their request rates add up to <paramref name="loadToShed"/>
    /// (a share, 0..1, of the total rate): the load that takes the score back above the threshold.
    /// </summary>
    public static IReadOnlyList<ActiveClient> Enough(IReadOnlyList<ActiveClient> active, double loadToShed)
    {
        // Nothing to shed is nobody, whatever the rates read (checked first: with no rate measured yet the
        // fallback below would send everyone).
        if (!(loadToShed > 0))
            return [];
        double total = active.Sum(c => c.SteadyRate);
        if (total <= 0)
            return active;
        double target = Math.Clamp(loadToShed, 0, 1) * total, shed = 0;
        var chosen = new List<ActiveClient>();
        foreach (var client in active.OrderByDescending(c => c.SteadyRate))
        {
            if (shed >= target && chosen.Count > 0)
                break;
            chosen.Add(client);
            shed += client.SteadyRate;
        }
        return chosen;
    }
}
