using Forewarn.Core.Deferrals;

namespace Forewarn.Core.Tests;

public class LoadBudgetTests
{
    [Fact]
    public void Unknown_until_a_break_admits_anything()
    {
        var budget = new LoadBudget(0.95, 0.02);
        Assert.False(budget.Known);
        Assert.True(budget.Admits(1e9, 1e9));
        Assert.Equal(0, budget.Excess(1e9));
        budget.Broke(0);
        Assert.False(budget.Known);
    }

    [Fact]
    public void A_break_sets_the_limit_to_a_share_of_the_load_carried_and_the_latest_break_wins()
    {
        var budget = new LoadBudget(0.9, 0.02);
        budget.Broke(1000);
        Assert.Equal(900, budget.Limit, 6);
        Assert.True(budget.Admits(800, 100));
        Assert.False(budget.Admits(800, 101));
        Assert.Equal(300, budget.Excess(1200), 6);
        Assert.Equal(0, budget.Excess(900));

        budget.Broke(2000);
        Assert.Equal(1800, budget.Limit, 6);
        budget.Broke(500);
        Assert.Equal(450, budget.Limit, 6);
    }

    [Fact]
    public void Cut_grow_carry_and_forget()
    {
        var budget = new LoadBudget(0.5, 0.1);
        budget.Cut();
        budget.Grow(10);
        budget.Carries(10);
        Assert.False(budget.Known);

        budget.Broke(400);
        budget.Cut();
        Assert.Equal(100, budget.Limit, 6);
        budget.Grow(2);
        Assert.Equal(120, budget.Limit, 6);
        budget.Carries(100);
        Assert.Equal(120, budget.Limit, 6);
        budget.Carries(300);
        Assert.Equal(300, budget.Limit, 6);

        budget.Forget();
        Assert.False(budget.Known);
        Assert.True(budget.Admits(1e6, 1));
    }

    [Fact]
    public void A_break_far_below_the_limit_lowers_it_but_health_doubles_it_back_to_the_mark()
    {
        var budget = new LoadBudget(0.95, 0.02);
        budget.Broke(1000); // the load broke it: limit and mark 950
        Assert.Equal(950, budget.Mark, 6);
        budget.Broke(50); // broken again while its clients were away: a stalled store, not the load
        Assert.Equal(47.5, budget.Limit, 6);
        Assert.Equal(950, budget.Mark, 6);
        budget.Grow(1);
        Assert.Equal(95, budget.Limit, 6);
        budget.Grow(4);
        Assert.Equal(950, budget.Limit, 6); // doubled, but never past the mark
        budget.Grow(1);
        Assert.Equal(969, budget.Limit, 6); // then a few per cent a second

        // The stall goes on: broken at 50, doubled to 95, broken again at 80. Still far below the mark: not the load's.
        budget.Broke(50);
        budget.Grow(1);
        budget.Broke(80);
        Assert.Equal(76, budget.Limit, 6);
        Assert.Equal(950, budget.Mark, 6);
        budget.Cut();
        Assert.Equal(950, budget.Mark, 6);
        budget.Grow(5);
        Assert.Equal(950, budget.Limit, 6);

        // A break at half the mark or more is the load's: the mark follows it, and growth is slow from there.
        budget.Broke(600);
        Assert.Equal(570, budget.Mark, 6);
        budget.Grow(1);
        Assert.Equal(581.4, budget.Limit, 6);

        // Still broken after shedding: the cut lowers the mark with the limit.
        budget.Cut();
        Assert.Equal(budget.Limit, budget.Mark, 6);
        budget.Forget();
        Assert.False(budget.Known);
        Assert.True(double.IsPositiveInfinity(budget.Mark));
    }
}
