using Forewarn.Core.Deferrals;

namespace Forewarn.Core.Tests;

public class WorkerCapacityTests
{
    [Fact]
    public void No_evidence_sets_no_limit()
    {
        var capacity = new WorkerCapacity();
        Assert.True(double.IsNaN(capacity.ServiceSeconds));
        Assert.True(double.IsPositiveInfinity(capacity.RateAt(0.625, 16)));
        capacity.Record(0.2, 0);
        Assert.True(double.IsPositiveInfinity(capacity.RateAt(0.625, 16)));
    }

    [Fact]
    public void A_slow_store_shows_at_light_load_by_Littles_law()
    {
        var capacity = new WorkerCapacity();
        // 20 requests in a second, each holding a worker 50 ms: 16 workers carry 320/s, 200/s at 62.5 % busy.
        capacity.Record(20 * 0.050, 20);
        Assert.Equal(0.050, capacity.ServiceSeconds, 9);
        Assert.Equal(320, capacity.RateAt(1, 16), 6);
        Assert.Equal(200, capacity.RateAt(0.625, 16), 6);
    }

    [Fact]
    public void Only_the_window_counts_so_a_healed_store_is_not_held_against_the_server()
    {
        var capacity = new WorkerCapacity(windowSeconds: 3);
        capacity.Record(10 * 0.050, 10);
        capacity.Record(0, 0);
        capacity.Record(0, 0);
        Assert.Equal(0.050, capacity.ServiceSeconds, 9);
        capacity.Record(0, 0);
        Assert.True(double.IsNaN(capacity.ServiceSeconds));
        capacity.Record(100 * 0.005, 100);
        Assert.Equal(0.005, capacity.ServiceSeconds, 9);
    }

    [Fact]
    public void A_stall_of_a_second_does_not_read_as_a_slower_store_but_a_lasting_slowing_does()
    {
        var capacity = new WorkerCapacity(windowSeconds: 5);
        // 32 workers at 48 ms, 530 requests a second: 25.4 worker-seconds a second.
        for (int i = 0; i < 4; i++)
            capacity.Record(530 * 0.048, 530);
        // Half a second in which every worker was held: 16 worker-seconds more over that second's requests.
        capacity.Record(530 * 0.048 + 16, 530);
        Assert.Equal(0.048, capacity.ServiceSeconds, 9);
        Assert.Equal(32 * 0.92 / 0.048, capacity.RateAt(0.92, 32), 6);
        // The store slows to 60 ms for good: the figure follows once most of the window shows it.
        capacity.Record(530 * 0.060, 530);
        Assert.Equal(0.048, capacity.ServiceSeconds, 9);
        capacity.Record(530 * 0.060, 530);
        Assert.Equal(0.060, capacity.ServiceSeconds, 9);
    }

    [Fact]
    public void Workers_held_with_nothing_completing_is_a_stall()
    {
        var capacity = new WorkerCapacity();
        capacity.Record(16, 0);
        Assert.True(double.IsPositiveInfinity(capacity.ServiceSeconds));
        Assert.Equal(0, capacity.RateAt(0.625, 16));
    }

    [Fact]
    public void Bad_samples_are_ignored()
    {
        var capacity = new WorkerCapacity();
        capacity.Record(double.NaN, 5);
        capacity.Record(-1, 5);
        capacity.Record(1, -5);
        Assert.True(double.IsNaN(capacity.ServiceSeconds));
    }
}
