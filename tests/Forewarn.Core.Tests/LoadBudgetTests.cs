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
}
