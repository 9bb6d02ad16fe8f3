using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Protocol.Tests;

public class DictionaryTests
{
    /// <summary>Debian's freeradius-common dictionaries, which operators load (installed by .ci/run).</summary>
    private const string DebianDictionaries = "/usr/share/freeradius";

    [Fact]
    public void BuiltIn_CoversTheRfcsAndMicrosoft()
    {
        var d = RadiusDictionary.BuiltIn;
        Assert.Equal(RadiusDataType.Ipv6Prefix, d.Get("Framed-IPv6-Prefix").Type);
        Assert.Equal(RadiusDataType.InterfaceId, d.Get("Framed-Interface-Id").Type);
        Assert.Equal(RadiusDataType.Date, d.Get("Event-Timestamp").Type);
        Assert.True(d.Get("Tunnel-Password").HasTag);
        Assert.Equal(AttributeEncryption.TunnelPassword, d.Get("Tunnel-Password").Encryption);
        Assert.Equal(AttributeEncryption.UserPassword, d.Get("User-Password").Encryption);
        Assert.Equal(311u, d.Get("MS-CHAP2-Success").VendorId);
        Assert.Equal("Interim-Update", d.Get("Acct-Status-Type").ValueNames[3]);
        Assert.Equal(168u, d.Get("Framed-IPv6-Address").Number);
        Assert.Same(d.Get("MS-MPPE-Send-Key"), d.Find(311, 16));
    }

    [SkippableFact]
    public void EveryDebianFreeRadiusDictionaryLoads()
    {
        Paths.Require(Directory.Exists(DebianDictionaries), $"{DebianDictionaries} is missing: install Debian's freeradius-common (.ci/run does)");
        var files = Directory.GetFiles(DebianDictionaries, "dictionary*").Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count > 200, $"only {files.Count} dictionary files found");
        // The master file includes every vendor file; load it the way an operator would.
        var all = RadiusDictionary.LoadBuiltIn([Path.Combine(DebianDictionaries, "dictionary")]);
        Assert.True(all.VendorCount > 150, $"{all.VendorCount} vendors");
        Assert.True(all.AttributeCount > 5000, $"{all.AttributeCount} attributes");
        Assert.Equal(9u, all.Get("Cisco-AVPair").VendorId);
        // Files the master does not include (alternatives, old vendor variants) load on top of it.
        var reached = all.Files.ToHashSet(StringComparer.Ordinal);
        Assert.True(reached.Count > 200, $"the master file reached {reached.Count} files");
        foreach (var file in files.Where(f => !reached.Contains(f)))
        {
            var exception = Record.Exception(() => RadiusDictionary.LoadBuiltIn([Path.Combine(DebianDictionaries, "dictionary"), file]));
            Assert.True(exception is null, $"{Path.GetFileName(file)}: {exception?.Message}");
        }
    }

    [Theory]
    [InlineData("ATTRIBUTE Foo 300x integer", ":1: ")]
    [InlineData("ATTRIBUTE Foo 1 flubber", "unknown data type 'flubber'")]
    [InlineData("BEGIN-VENDOR Nobody", "unknown vendor 'Nobody'")]
    [InlineData("FROB x", "unknown keyword 'FROB'")]
    public void BadDictionaryLines_ClearErrorsWithFileAndLine(string line, string expected)
    {
        var path = Path.Combine(Path.GetTempPath(), $"dictionary.bad-{Guid.NewGuid():N}");
        File.WriteAllText(path, line + "\n");
        try
        {
            var e = Assert.Throws<DictionaryException>(() => RadiusDictionary.LoadFiles(path));
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ValueForUnknownAttribute_IsAWarningNotAFailure()
    {
        var path = Path.Combine(Path.GetTempPath(), $"dictionary.warn-{Guid.NewGuid():N}");
        File.WriteAllText(path, "ATTRIBUTE Known 1 integer\nVALUE Nope Thing 1\nVALUE Known Yes 1\n");
        try
        {
            var d = RadiusDictionary.LoadFiles(path);
            Assert.Contains("unknown attribute 'Nope'", Assert.Single(d.Warnings), StringComparison.Ordinal);
            Assert.Equal("Yes", d.Get("Known").ValueNames[1]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("Framed-IP-Address", "10.0.0.1", "08060a000001")]
    [InlineData("Framed-IPv6-Prefix", "2001:db8::/32", "61080020" + "20010db8")]
    [InlineData("NAS-IPv6-Address", "::1", "5f1200000000000000000000000000000001")]
    [InlineData("Framed-Interface-Id", "0001:0203:0405:0607", "600a0001020304050607")]
    [InlineData("Event-Timestamp", "2020-01-01T00:00:00Z", "37065e0be100")]
    [InlineData("Service-Type", "Framed-User", "060600000002")]
    [InlineData("Session-Timeout", "3600", "1b0600000e10")]
    [InlineData("Tunnel-Type:1", "VLAN", "40060100000d")]
    [InlineData("Tunnel-Private-Group-Id:1", "42", "5105013432")]
    [InlineData("MS-Primary-DNS-Server", "10.0.0.53", "1a0c000001371c060a000035")]
    public void TypedValues_EncodeAndDecodeBack(string name, string text, string wireHex)
    {
        var d = RadiusDictionary.BuiltIn;
        Assert.True(AttributeValue.TryParse(d, name, text, out var value, out var error), error);
        var buffer = new byte[4096];
        var writer = new Radius.RadiusWriter(buffer, Radius.RadiusCode.AccessAccept, 0);
        value!.WriteTo(ref writer, d, "s"u8, new byte[16]);
        Assert.Equal(wireHex, Convert.ToHexStringLower(buffer, 20, writer.Length - 20));
        var decoded = Assert.Single(AttributeDecoder.Decode(buffer.AsSpan(20, writer.Length - 20), d));
        Assert.Equal(value.ToString(), decoded.ToString());
    }

    [Theory]
    [InlineData("Framed-IP-Address", "not-an-address")]
    [InlineData("Framed-IP-Address", "::1")]
    [InlineData("Session-Timeout", "-1")]
    [InlineData("Service-Type", "No-Such-Value")]
    [InlineData("No-Such-Attribute", "1")]
    [InlineData("Session-Timeout:3", "1")]
    public void BadValues_AreRefusedWithAReason(string name, string text)
    {
        Assert.False(AttributeValue.TryParse(RadiusDictionary.BuiltIn, name, text, out _, out var error));
        Assert.False(string.IsNullOrWhiteSpace(error));
    }
}
