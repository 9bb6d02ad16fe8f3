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

    /// <summary>Found by the dictionary fuzz target (dictionary.freeradius.internal, dictionary.vqp): Auth-Type = Accept was sent as attribute 232.</summary>
    [Theory]
    [InlineData("ATTRIBUTE Auth-Type 1000 integer\nVALUE Auth-Type Accept 1", "Auth-Type", "Accept")]
    [InlineData("VENDOR Example 32473\nBEGIN-VENDOR Example\nATTRIBUTE Example-Wide 300 string\nEND-VENDOR Example", "Example-Wide", "x")]
    public void AttributeNumberedBeyondItsTypeField_IsNotSentUnderAnotherNumber(string text, string name, string value)
    {
        var d = RadiusDictionary.LoadText(text, "test");
        Assert.False(AttributeValue.TryParse(d, name, value, out _, out var error));
        Assert.Contains("never sent", error, StringComparison.Ordinal);
        var wide = RadiusDictionary.LoadText("VENDOR Example 32473 format=2,2\nBEGIN-VENDOR Example\nATTRIBUTE Example-Wide 300 string\nEND-VENDOR Example", "test");
        Assert.True(AttributeValue.TryParse(wide, "Example-Wide", "x", out _, out error), error);
    }

    /// <summary>Ascend's Send-Secret scheme (encrypt=3) is not implemented: such an attribute is refused rather than sent in the clear.</summary>
    [Fact]
    public void HidingForewarnDoesNotImplement_IsRefusedNotSentInTheClear()
    {
        var d = RadiusDictionary.LoadText("ATTRIBUTE Ascend-Send-Secret 214 string encrypt=3", "test");
        Assert.False(AttributeValue.TryParse(d, "Ascend-Send-Secret", "s3cret", out _, out var error));
        Assert.Contains("encrypt=3", error, StringComparison.Ordinal);
    }

    private const string Usr = "ATTRIBUTE USR-Speed-Of-Connection 1 integer\nVALUE USR-Speed-Of-Connection 56 1\nVALUE USR-Speed-Of-Connection 0x38 2";
    private const string Sip = "ATTRIBUTE Sip-Method 101 integer\nVALUE Sip-Method INVITE 0\nVALUE Sip-Method BYE 1\nVALUE Sip-Method Bye-Again 1\nVALUE Sip-Method BYE 8";

    /// <summary>
    /// Found by the dictionary fuzz target: numbers shown as text that read back as others. Debian's dictionary.usr names a
    /// value with another number's digits (VALUE USR-Speed-Of-Connection 56 1): 56 is now shown in hex. dictionary.openser
    /// gives a name again to another number (Sip-Method BYE, after dictionary.columbia_university's): it now names only that one.
    /// </summary>
    [Theory]
    [InlineData(Usr, 1u, "56")]
    [InlineData(Usr, 56u, "0x038")]
    [InlineData(Sip, 0u, "INVITE")]
    [InlineData(Sip, 1u, "Bye-Again")]
    [InlineData(Sip, 8u, "BYE")]
    public void EveryNumber_IsShownAsTextThatReadsBackAsIt(string dictionary, uint number, string text)
    {
        var attribute = Assert.Single(RadiusDictionary.LoadText(dictionary, "test").Attributes);
        var wire = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(wire, number);
        Assert.Equal(text, ValueCodec.Format(attribute, wire));
        Assert.True(ValueCodec.TryParse(attribute, text, out var value, out var error), error);
        Assert.Equal(wire, value);
    }

    [Fact]
    public void TextWithoutAFile_RefusesIncludeNamingTheLine()
    {
        var e = Assert.Throws<DictionaryException>(() => RadiusDictionary.LoadText("ATTRIBUTE A 1 integer\n$INCLUDE dictionary.other", "operator text"));
        Assert.StartsWith("operator text:2: $INCLUDE", e.Message, StringComparison.Ordinal);
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
