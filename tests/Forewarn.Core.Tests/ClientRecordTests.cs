using Forewarn.Core.Store;

namespace Forewarn.Core.Tests;

public class ClientRecordTests
{
    [Fact]
    public void ToString_NeverShowsTheSecret()
    {
        var text = new ClientRecord("switch-1", "10.0.0.0/24", "s3cr3t-do-not-log", DeviceGroup: "floor-2").ToString();
        Assert.DoesNotContain("s3cr3t-do-not-log", text, StringComparison.Ordinal);
        Assert.Contains("switch-1", text, StringComparison.Ordinal);
        Assert.Contains("10.0.0.0/24", text, StringComparison.Ordinal);
        Assert.Contains("floor-2", text, StringComparison.Ordinal);
    }
}
