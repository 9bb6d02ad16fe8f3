using Forewarn.Protocol.Radius;

namespace Forewarn.Protocol.Tests;

/// <summary>RadiusPacket's helpers given octets nobody validated: an error or "not found", never a hang or an overrun.</summary>
public class UnvalidatedInputTests
{
    [Fact]
    public async Task FromValidated_ZeroLengthAttribute_StopsTheLookupInsteadOfLooping()
    {
        // Header (20 octets, Length 24) and one attribute of type 1 whose length octet is 0.
        var packet = new byte[24];
        packet[0] = (byte)RadiusCode.AccessRequest;
        packet[3] = 24;
        packet[20] = 1;
        packet[21] = 0;
        var lookup = Task.Run(() =>
        {
            var view = RadiusPacket.FromValidated(packet);
            return (view.HasAttribute(AttributeTypes.UserPassword), view.TryGetAttribute(AttributeTypes.UserName, out _));
        });
        Assert.Same(lookup, await Task.WhenAny(lookup, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal((false, false), await lookup);
    }

    [Fact]
    public void FromValidated_AttributeRunningPastTheEnd_IsNotRead()
    {
        var packet = new byte[22];
        packet[0] = (byte)RadiusCode.AccessRequest;
        packet[3] = 22;
        packet[20] = AttributeTypes.UserName;
        packet[21] = 40;
        Assert.False(RadiusPacket.FromValidated(packet).TryGetAttribute(AttributeTypes.UserName, out _));
    }

    [Theory]
    [InlineData(10, 10)]
    [InlineData(20, 19)]
    [InlineData(20, 30)]
    public void FromValidated_BadHeader_IsAnArgumentError(int size, int lengthField)
    {
        var packet = new byte[size];
        if (size >= 4)
        {
            packet[2] = (byte)(lengthField >> 8);
            packet[3] = (byte)lengthField;
        }
        Assert.Throws<ArgumentException>(() => RadiusPacket.FromValidated(packet));
    }
}
