namespace Forewarn.Core.Deferrals;

/// <summary>
/// The request rate this server can carry, learned from the load at which its score broke. Unknown
/// (no limit) until a deferral caused by load (the measured or the forecast score); then
/// <see cref="Limit"/> is a share (<c>backoff</c>) of the rate carried at the break. A deferral that
/// sheds only the excess keeps the server at that limit while the overload lasts, instead of sending
/// every client away and inviting them back into the same overload; invitations and admitted probes
/// bring clients back only while their known rates fit under it. While the server is healthy and
/// clients still wait, the limit grows (<c>growthPerSecond</c>, multiplicatively), so a break that was
/// a passing blip does not keep clients away for good, and never stays below a load the server carries
/// while healthy; with nobody waiting it is forgotten. A break cuts it multiplicatively and health grows
/// it gradually, in the spirit of TCP's congestion window, applied to the clients a server accepts
/// rather than the packets a sender sends.
/// <para>
/// Like TCP after a timeout, recovery has two speeds. <see cref="Mark"/> is the limit the load itself
/// taught (a break at half of it or more: TCP's slow-start threshold); below it the limit doubles each
/// healthy second, above it it grows by <c>growthPerSecond</c>. A break far below the mark (under half)
/// is not the load's doing — a store that stalls every lookup breaks a server its returning clients
/// barely load — so it lowers the limit but not the mark, and the server, once healed, is back at the
/// mark in a few seconds instead of crawling up from the stalled load at a few per cent a second
/// (measured: 172 of 1,000 devices back 30 s after the heal, against all of them before the budget).
/// </para>
/// </summary>
public sealed class LoadBudget(double backoff, double growthPerSecond)
{
    private readonly Lock _lock = new();

    /// <summary>Requests per second this server accepts clients up to; infinity while unknown.</summary>
    public double Limit { get; private set; } = double.PositiveInfinity;

    public bool Known => !double.IsPositiveInfinity(Limit);

    /// <summary>The limit the load taught: below it, health doubles the limit each second; infinity while unknown.</summary>
    public double Mark { get; private set; } = double.PositiveInfinity;

    /// <summary>
    /// The score broke while the server carried <paramref name="carried"/> requests/s: the limit is a
    /// share of it. The latest break is the best evidence: one at a higher load than the limit shows the
    /// server carried more than the limit allowed, one at a lower load that it can carry less now.
    /// </summary>
    /// <remarks>
    /// <paramref name="workersCarry"/>, where the workers were what broke, is what they carry at the
    /// server's target utilisation (Little's law, <see cref="WorkerCapacity"/>): the limit is the higher
    /// of the two. The rate carried is counted as workers take requests, so at a break under a backlog it
    /// is the capacity less the lag of the rates' smoothing, and its share sheds more than the excess; the
    /// workers' own figure does not lag. A stall, whose workers carry next to nothing, keeps the share.
    /// </remarks>
    public void Broke(double carried, double workersCarry = 0)
    {
        if (carried <= 0 || double.IsNaN(carried))
            return;
        double limit = Math.Max(backoff * carried, double.IsFinite(workersCarry) ? workersCarry : 0);
        lock (_lock)
        {
            // The load's own doing (the first break, or one at half the mark or more) sets the mark too. Judged
            // against the mark, not the limit: a limit lowered by a stalled store and doubled back would
            // otherwise take the stall's next break for the load's.
            if (!Known || carried >= Mark / 2)
                Mark = limit;
            Limit = limit;
        }
    }

    /// <summary>
    /// While a deferral the workers caused lasts: the limit is what they carry at the target utilisation
    /// now (a store that slows lowers it, one that recovers raises it, up to the mark: once the load has
    /// gone, light traffic's quick answers are no measure of what the server carries). The mark stays: a
    /// stall's figure is no measure of the load the server carries once healed.
    /// </summary>
    public void Follow(double workersCarry)
    {
        if (double.IsNaN(workersCarry) || workersCarry < 0 || double.IsPositiveInfinity(workersCarry))
            return;
        lock (_lock)
        {
            if (Known)
                Limit = Math.Min(workersCarry, Mark);
        }
    }

    /// <summary>Still broken after shedding down to the limit: the limit falls by the backoff again.</summary>
    public void Cut()
    {
        lock (_lock)
        {
            if (Known)
            {
                Limit *= backoff;
                if (Limit >= Mark / 2)
                    Mark = Math.Min(Mark, Limit);
            }
        }
    }

    /// <summary>Healthy for <paramref name="seconds"/> with clients still waiting: the limit grows, doubling each second up to the mark.</summary>
    public void Grow(double seconds)
    {
        lock (_lock)
        {
            if (!Known)
                return;
            seconds = Math.Max(0, seconds);
            // From a sixty-fourth of the mark at least: a limit the workers' stall brought to nothing doubles from there.
            Limit = Limit < Mark ? Math.Min(Mark, Math.Max(Limit, Mark / 64) * Math.Pow(2, seconds)) : Limit * (1 + growthPerSecond * seconds);
        }
    }

    /// <summary>
    /// Healthy (admitting returning clients) while carrying <paramref name="carried"/>: a limit below it
    /// was learned from a break that was not this load's doing (a burst, a pause), and rises to it.
    /// </summary>
    public void Carries(double carried)
    {
        lock (_lock)
        {
            if (Known && carried > Limit)
                Limit = carried;
        }
    }

    /// <summary>Nobody waits to come back: the limit is forgotten until the next break.</summary>
    public void Forget()
    {
        lock (_lock)
            Limit = Mark = double.PositiveInfinity;
    }

    /// <summary>May a client sending <paramref name="more"/> requests/s come back while the server carries <paramref name="carried"/>?</summary>
    public bool Admits(double carried, double more) => carried + Math.Max(0, more) <= Limit;

    /// <summary>Requests/s of <paramref name="carried"/> above the limit (0 while unknown or under it): what to shed.</summary>
    public double Excess(double carried) => Math.Max(0, carried - Limit);
}
