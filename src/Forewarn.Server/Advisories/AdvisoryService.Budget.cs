using System.Collections.Concurrent;
using Forewarn.Core.Deferrals;
using Forewarn.Core.Health;
using Forewarn.Protocol.Advisory;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Advisories;

/// <summary>
/// The load budget's side of the advisory service: a deferral caused by load learns the rate this
/// server carried when it broke; under strategy "enough" only the load above the budget is shed, and
/// whatever arrives above it later (a ramp that goes on) is shed each second; invitations and admitted
/// probes bring clients back only while their rates fit under it.
/// </summary>
public sealed partial class AdvisoryService
{
    private readonly ConcurrentDictionary<string, byte> _loadDeferred = new();
    private readonly LoadBudget _budget;
    private long _lastCut;

    /// <summary>Requests per second this server accepts clients up to (infinity while no load-caused deferral has taught it one).</summary>
    public double BudgetLimit => _budget.Limit;

    private static bool ByLoad(ZoneCause cause) => cause is ZoneCause.Score or ZoneCause.Forecast;

    /// <summary>
    /// The load this server carries, requests/s: every client's smoothed rate; a client that has just
    /// returned (or is invited) counts what it brought when it left until its own rate shows it; a
    /// client deferred in the last two seconds counts nothing (its last rate is from before it left),
    /// later its measured rate (a deferred client that still sends is served).
    /// </summary>
    private double CarriedRate(long now)
    {
        double carried = 0;
        foreach (var client in _registry.All)
        {
            double since = _time.GetElapsedTime(client.StateSince, now).TotalSeconds;
            carried += client.State switch
            {
                ClientState.Deferred => since < 2 ? 0 : client.Rate,
                ClientState.Invited => Math.Max(client.SmoothedRate, client.RateWhenDeferred),
                _ => since < 3 ? Math.Max(client.SmoothedRate, client.RateWhenDeferred) : client.SmoothedRate,
            };
        }
        return carried;
    }

    /// <summary>A deferral caused by load: the budget learns the rate carried; returns the share of <paramref name="className"/>'s load to shed ("enough").</summary>
    private double LearnBreak(ZoneChange change)
    {
        long now = _time.GetTimestamp();
        double carried = CarriedRate(now);
        _budget.Broke(carried);
        LogBudget(_logger, carried, _budget.Limit);
        _loadDeferred[change.Class] = 0;
        _lastCut = now;
        double classRate = _registry.All.Where(c => c.State == ClientState.Active && InClass(c, change.Class)).Sum(c => c.Rate);
        return classRate <= 0 ? 0 : Math.Clamp(_budget.Excess(carried) / classRate, 0, 1);
    }

    /// <summary>
    /// Every second: forget the budget when nobody waits; under "enough", while a class stays deferred
    /// by load, shed what arrives above the budget (and cut it when the score stays far below the
    /// failover threshold); while the server is healthy and clients wait, raise it to the load carried
    /// and grow it.
    /// </summary>
    private async Task BudgetTickAsync()
    {
        if (!_registry.All.Any(c => c.State != ClientState.Active))
        {
            _budget.Forget();
            _loadDeferred.Clear();
            return;
        }
        if (!_budget.Known)
            return;
        long now = _time.GetTimestamp();
        double carried = CarriedRate(now);
        foreach (var className in _loadDeferred.Keys)
        {
            var zone = _monitor.ZoneOf(className);
            if (zone.Current != Zone.Defer)
            {
                _loadDeferred.TryRemove(className, out _);
                continue;
            }
            if (_options.Select.Strategy != "enough")
                continue;
            if (_monitor.Current.Score < zone.Thresholds.Failover / 2 && _time.GetElapsedTime(_lastCut, now).TotalSeconds >= _options.BudgetCutSeconds)
            {
                _budget.Cut();
                _lastCut = now;
            }
            // A few per cent over is the rates' noise (one-second counts): shed only a real excess.
            double excess = _budget.Excess(carried);
            if (excess <= _budget.Limit * 0.03)
                continue;
            var active = _registry.All.Where(c => c.State == ClientState.Active && InClass(c, className)).ToList();
            double classRate = active.Sum(c => c.Rate);
            if (classRate <= 0)
                continue;
            var chosen = DeferralPlanner.Enough(active, excess / classRate);
            LogShedding(_logger, chosen.Count, className, carried, _budget.Limit);
            foreach (var client in chosen)
            {
                carried -= client.Rate;
                await DeferClientAsync(client, AdvisoryReason.Overload).ConfigureAwait(false);
            }
        }
        var main = _monitor.ZoneOf(null);
        if (main.Current == Zone.Accept && main.AdmitsReturning)
        {
            _budget.Carries(carried);
            _budget.Grow(1);
        }
    }

    /// <summary>May <paramref name="client"/> come back now, while the server carries <paramref name="carried"/>, by the budget?</summary>
    private bool BudgetAdmits(ActiveClient client, double carried) => _budget.Admits(carried, client.RateWhenDeferred);

    [LoggerMessage(EventId = 604, Level = LogLevel.Warning, Message = "Deferring {Count} more clients of class {Class}: carrying {Carried:0} requests/s over a load budget of {Limit:0}")]
    private static partial void LogShedding(ILogger logger, int count, string @class, double carried, double limit);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "The score broke at {Carried:0} requests/s: load budget {Limit:0} requests/s")]
    private static partial void LogBudget(ILogger logger, double carried, double limit);
}
