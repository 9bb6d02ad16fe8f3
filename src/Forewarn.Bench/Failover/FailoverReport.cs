using System.Globalization;
using System.Text;

namespace Forewarn.Bench.Failover;

/// <summary>The failover run as a table (Markdown, also fine on a terminal) and as an SVG plot.</summary>
public static class FailoverReport
{
    private static readonly string[] Colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

    private static string F(double? value, string format = "0.###") => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    /// <summary>One column per run: the figures the issue asks for, in the order a reader asks them.</summary>
    public static string Table(IReadOnlyList<FailoverResult> results)
    {
        var rows = new (string Label, Func<FailoverResult, string> Value)[]
        {
            ("zone to Defer after degradation (s)", r => F(r.DeferredAfter) + (r.DeferCause is null ? "" : $" ({r.DeferCause})")),
            ("forecast lead over the measured crossing (s)", r => F(r.ForecastLeadSeconds)),
            ("first request over T or failed, after degradation (s)", r => F(r.FirstLateAfter)),
            ("devices moved: 50 % (s)", r => F(r.Moved50After)),
            ("devices moved: 99 % (s)", r => F(r.Moved99After)),
            ("devices moved: 100 % (s)", r => F(r.Moved100After) + (r.Moved < r.Devices ? $" ({r.Moved}/{r.Devices} moved)" : "")),
            ("99 % moved, after the zone change (s)", r => F(r.Moved99AfterDefer)),
            ("moved after the device's own first request since: 50 % / 99 % (s)", r => $"{F(r.MovedAfterOwnRequest50)} / {F(r.MovedAfterOwnRequest99)}"),
            ("requests during the event", r => r.RequestsInEvent.ToString("N0", CultureInfo.InvariantCulture)),
            ("failed", r => r.Failed.ToString("N0", CultureInfo.InvariantCulture)),
            ("answered later than T", r => r.Late.ToString("N0", CultureInfo.InvariantCulture)),
            ("failed or late (%)", r => F(r.FailedOrLatePercent)),
            ("answered later than 1 s", r => r.LaterThanOneSecond.ToString("N0", CultureInfo.InvariantCulture)),
            ("failed or later than 1 s (%)", r => F(r.FailedOrLaterThanOneSecondPercent)),
            ("hedged requests / suspicions / keepalives / PeerDowns from survivors (fleet)", r => FormattableString.Invariant($"{r.Hedges:N0} / {r.Suspicions:N0} / {r.Keepalives:N0} / {r.PeerDowns:N0}")),
            ("copies sent again at the deadline (fleet)", r => FormattableString.Invariant($"{r.EarlyRetransmissions:N0}")),
            ("FAILOVER + retransmissions + reminders per device while degraded", r => F(r.SignallingPerDevice)),
            ("PROBEs refused per device while degraded", r => F(r.RefusalsWhileDegradedPerDevice)),
            ("advisory messages per device, whole run, both ways", r => F(r.AllAdvisoriesPerDevice)),
            ("unanswered attempts per device", r => F(r.UnansweredAttemptsPerDevice)),
            ("all back after heal (s)", r => F(r.AllBackAfter) + (r.Returned < r.Devices ? $" ({r.Returned}/{r.Devices} back)" : "")),
            ("worst score once back in Accept, warm-up apart (connect threshold)", r => $"{F(r.WorstScoreDuringReturn)} ({F(r.ConnectThreshold)})"),
            ("worst score shown while warming up (not acted on)", r => F(r.WorstScoreInWarmUp)),
            ("peak return rate / steady rate", r => F(r.PeakRateRatio)),
            ("server CPU (s, per server)", r => string.Join(" / ", r.ServerCpuSeconds.Select(c => F(c, "0.0")))),
            ("p99 latency before / during the event (ms)", r => $"{F(r.BaselineP99Ms, "0.#")} / {F(r.EventP99Ms, "0.#")}"),
            ("p99 latency of A's own answers during the event (ms)", r => F(r.AdmittedP99Ms, "0.#")),
            ("worst score of an alternate while degraded", r => F(r.WorstAlternateScore)),
            ("keepalive messages per device per minute", r => F(r.KeepaliveMessagesPerDeviceMinute, "0.###")),
            ("times a device left A since the degradation: mean / most", r => $"{F(r.MovesPerDeviceMean)} / {r.MovesPerDeviceMax}"),
            ("A's zone changes / FAILOVERs sent while degraded", r => FormattableString.Invariant($"{r.ZoneChangesInEvent} / {r.FailoversWhileDegraded:N0}")),
        };
        if (results.Any(r => r.CapacityPerSecond is not null))
        {
            rows =
            [
                .. rows,
                ("A's measured capacity / peak offered load (requests/s)", r => $"{F(r.CapacityPerSecond, "N0")} / {F(r.PeakOfferedPerSecond, "N0")}"),
                ("A's peak goodput (answers within T/s, best 3 s) / share kept at the peak load", r => $"{F(r.PeakGoodput, "N0")} / {F(r.GoodputKeptAtPeak)}"),
                ("fleet requests sent at the peak load answered within T", r => F(r.FleetAnsweredWithinTAtPeak, "0.####")),
            ];
        }
        var text = new StringBuilder();
        text.Append("| | ").AppendJoin(" | ", results.Select(r => r.Mode)).AppendLine(" |");
        text.Append("|---|").AppendJoin("", results.Select(_ => "---:|")).AppendLine();
        foreach (var (label, value) in rows)
            text.Append("| ").Append(label).Append(" | ").AppendJoin(" | ", results.Select(value)).AppendLine(" |");
        return text.ToString();
    }

    public static string Markdown(IReadOnlyList<FailoverResult> results, string command, IReadOnlyList<string> plots)
    {
        var first = results[0];
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Failover: {first.Degradation}, {first.Devices} devices at {F(first.RatePerDevice)} requests/s each");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command}`  ");
        text.AppendLine(CultureInfo.InvariantCulture, $"Classic profile: {first.Profile} (T = {F(first.TimeoutSeconds)} s); carrier {first.Carrier}; ramp {F(first.RampSeconds)} s. Times after degradation count from the moment server A was degraded.");
        if (first.Degradation == "steady")
            text.AppendLine("Steady: A's store slowed as for the overload run, its capacity measured; the fleet's offered load swung open-loop (Poisson arrivals) between the middle share ± the swing of that capacity for the whole event: every advisory is a false alarm.");
        if (first.Degradation == "oscillate")
            text.AppendLine("Oscillate: A's score held by a `level` drill on a sine around the returning clients', the new clients' and the failover threshold in turn, a third of the event each.");
        if (first.Degradation == "overload")
            text.AppendLine("Overload: A's store slowed (a slow-store drill for the whole run); the fleet's offered load ramped open-loop from 0.3x of A's measured capacity to the peak offered (rows below); servers defer with `Select:Strategy=enough` (only the load above the budget learned when the score broke).");
        text.AppendLine();
        text.Append(Table(results));
        // The advisory's lead: how long before classic clients' first request over T (same run) each mode moved the zone.
        if (results.FirstOrDefault(r => r.Mode == "classic")?.FirstLateAfter is { } firstLate)
        {
            foreach (var r in results.Where(r => r.Mode != "classic" && r.DeferredAfter is not null))
                text.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Lead, {r.Mode}: the zone moved {F(firstLate - r.DeferredAfter)} s before the first classic request over T.");
        }
        foreach (var r in results)
            text.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"Advisories, {r.Mode}: {r.AdvisoryBreakdown ?? "none"}.");
        foreach (var plot in plots)
            text.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(plot)}]({plot})");
        return text.ToString();
    }

    /// <summary>Two panels over time: each server's score (and forecast, dotted), and the devices attached to each; degradation and heal marked.</summary>
    public static string Svg(FailoverResult r, IReadOnlyList<string> serverNames)
    {
        const int width = 900, left = 60, right = 20, panel = 200, gap = 50, top = 40;
        int height = top + panel * 2 + gap + 50;
        double end = Math.Max(1, r.Timeline.Count == 0 ? r.EndedAt : r.Timeline[^1].At);
        double X(double t) => left + (width - left - right) * t / end;
        double Y1(double score) => top + panel * (1 - Math.Clamp(score, 0, 1));
        double Y2(double devices) => top + panel + gap + panel * (1 - devices / Math.Max(1, r.Devices));
        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"20\" font-size=\"14\">{r.Mode}: {r.Degradation} of server A, {r.Devices} devices</text>");
        foreach (var (y0, label) in new[] { (top, "score (dotted: forecast)"), (top + panel + gap, "devices attached") })
        {
            svg.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{y0}\" width=\"{width - left - right}\" height=\"{panel}\" fill=\"none\" stroke=\"#999\"/>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left + 4}\" y=\"{y0 + 14}\" fill=\"#555\">{label}</text>");
        }
        for (double t = 0; t <= end; t += end > 60 ? 10 : 5)
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{X(t):0.#}\" y=\"{top + panel * 2 + gap + 16}\" text-anchor=\"middle\" fill=\"#555\">{t:0}s</text>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{Y1(1) + 4:0.#}\" text-anchor=\"end\">1</text><text x=\"{left - 6}\" y=\"{Y1(0) + 4:0.#}\" text-anchor=\"end\">0</text>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{Y2(r.Devices) + 4:0.#}\" text-anchor=\"end\">{r.Devices}</text><text x=\"{left - 6}\" y=\"{Y2(0) + 4:0.#}\" text-anchor=\"end\">0</text>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y1(r.ConnectThreshold):0.#}\" y2=\"{Y1(r.ConnectThreshold):0.#}\" stroke=\"#aaa\" stroke-dasharray=\"6 4\"/>");
        foreach (var (t, label) in new[] { (r.DegradedAt, "degraded"), (r.HealedAt, "healed") })
        {
            svg.AppendLine(CultureInfo.InvariantCulture, $"<line x1=\"{X(t):0.#}\" x2=\"{X(t):0.#}\" y1=\"{top}\" y2=\"{top + panel * 2 + gap}\" stroke=\"#444\" stroke-dasharray=\"3 3\"/>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{X(t) + 4:0.#}\" y=\"{top + panel + 30}\" fill=\"#444\">{label}</text>");
        }
        for (int s = 0; s < serverNames.Count; s++)
        {
            string colour = Colours[s % Colours.Length];
            int server = s;
            svg.AppendLine(Polyline(r.Timeline.Where(p => p.Score[server] is not null).Select(p => (X(p.At), Y1(p.Score[server]!.Value))), colour, ""));
            svg.AppendLine(Polyline(r.Timeline.Where(p => p.Predicted[server] is not null).Select(p => (X(p.At), Y1(p.Predicted[server]!.Value))), colour, " stroke-dasharray=\"2 3\" opacity=\"0.7\""));
            svg.AppendLine(Polyline(r.Timeline.Select(p => (X(p.At), Y2(p.Attached[server]))), colour, ""));
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{width - right - 200}\" y=\"{top + 16 + 16 * s}\" fill=\"{colour}\">{serverNames[s]}</text>");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static string Polyline(IEnumerable<(double X, double Y)> points, string colour, string extra) =>
        $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"{extra} points=\"{string.Join(' ', points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.X:0.#},{p.Y:0.#}")))}\"/>";
}
