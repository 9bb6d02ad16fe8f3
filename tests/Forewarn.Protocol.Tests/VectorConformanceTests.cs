using System.Text;
using System.Text.Json;
using Forewarn.Protocol.Auth;
using Forewarn.Protocol.Radius;
using Forewarn.Protocol.Radius.Dictionary;

namespace Forewarn.Protocol.Tests;

/// <summary>Vectors from layeh/radius, pyrad, node-radius captures and FreeRADIUS's auth tests, read in place.</summary>
public class VectorConformanceTests
{
    private static JsonElement Load(params string[] path) => JsonDocument.Parse(File.ReadAllText(Paths.ConformanceFile(path))).RootElement;

    private static byte[] Hex(JsonElement e) => Paths.Hex(e.GetString()!);

    [SkippableFact]
    public void Layeh_ParseInvalid_AllRejected()
    {
        foreach (var c in Load("layeh-radius", "layeh-vectors.json").GetProperty("parse_invalid").EnumerateArray())
            Assert.NotEqual(DropReason.None, RadiusPacket.TryParse(Hex(c.GetProperty("packet_hex")), out _));
    }

    [SkippableFact]
    public void Layeh_UserPasswordCiphertexts()
    {
        var v = Load("layeh-radius", "layeh-vectors.json").GetProperty("user_password_lengths");
        var secret = Encoding.ASCII.GetBytes(v.GetProperty("secret").GetString()!);
        var authenticator = Encoding.ASCII.GetBytes(v.GetProperty("request_authenticator_ascii").GetString()!);
        foreach (var c in v.GetProperty("cases").EnumerateArray())
        {
            var password = Encoding.ASCII.GetBytes(c.GetProperty("password").GetString()!);
            var hidden = new byte[128];
            int length = RadiusCrypto.HideUserPassword(password, secret, authenticator, hidden);
            Assert.Equal(c.GetProperty("encoded_length").GetInt32(), length);
            Assert.Equal(c.GetProperty("ciphertext_hex_computed_here").GetString(), Convert.ToHexStringLower(hidden, 0, length));
        }
    }

    [SkippableFact]
    public void Layeh_TunnelPasswordRoundTrip()
    {
        var v = Load("layeh-radius", "layeh-vectors.json").GetProperty("tunnel_password_roundtrip");
        ushort salt = Convert.ToUInt16(v.GetProperty("salt_hex").GetString(), 16);
        var secret = Encoding.ASCII.GetBytes(v.GetProperty("secret").GetString()!);
        var authenticator = Enumerable.Range(1, 16).Select(i => (byte)(i * 7)).ToArray();
        foreach (var p in v.GetProperty("passwords").EnumerateArray())
        {
            var password = Encoding.ASCII.GetBytes(p.GetString()!);
            var encrypted = new byte[256];
            int length = RadiusCrypto.SaltEncrypt(password, secret, authenticator, salt, encrypted);
            Assert.Equal(salt, (encrypted[0] << 8) | encrypted[1]);
            var plain = new byte[256];
            int plainLength = RadiusCrypto.SaltDecrypt(encrypted.AsSpan(0, length), secret, authenticator, plain);
            Assert.Equal(password, plain.AsSpan(0, plainLength).ToArray());
        }
    }

    [SkippableFact]
    public void Layeh_DesParityAndMsChapV2()
    {
        var v = Load("layeh-radius", "layeh-vectors.json");
        foreach (var c in v.GetProperty("des_parity").EnumerateArray())
        {
            var key = new byte[8];
            MsChap.ExpandDesKey(Hex(c.GetProperty("in7_hex")), key);
            Assert.Equal(c.GetProperty("out8_hex").GetString(), Convert.ToHexStringLower(key));
        }
        foreach (var c in v.GetProperty("mschapv2_nt_response").EnumerateArray())
        {
            var hash = new byte[16];
            MsChap.NtPasswordHash(c.GetProperty("password").GetString()!, hash);
            var response = new byte[24];
            MsChap.GenerateNtResponse(Hex(c.GetProperty("authenticator_challenge")), Hex(c.GetProperty("peer_challenge")),
                Encoding.ASCII.GetBytes(c.GetProperty("username").GetString()!), hash, response);
            Assert.Equal(c.GetProperty("nt_response").GetString(), Convert.ToHexStringLower(response));
        }
        foreach (var c in v.GetProperty("mschapv2_authenticator_response").EnumerateArray())
        {
            var hash = new byte[16];
            MsChap.NtPasswordHash(c.GetProperty("password").GetString()!, hash);
            Assert.Equal(c.GetProperty("authenticator_response").GetString(), MsChap.GenerateAuthenticatorResponse(hash,
                Hex(c.GetProperty("nt_response")), Hex(c.GetProperty("peer_challenge")), Hex(c.GetProperty("authenticator_challenge")),
                Encoding.ASCII.GetBytes(c.GetProperty("username").GetString()!)));
        }
    }

    /// <summary>RFC 3079 §3.5.3: the 128-bit sample keys (MasterKey, send and receive start keys).</summary>
    [SkippableFact]
    public void Rfc3079_3_5_3_MppeKeys()
    {
        // RFC 3079 §3.5: User "User", password "clientPass", NT-Response 82309ECD...
        var hash = new byte[16];
        MsChap.NtPasswordHash("clientPass", hash);
        var ntResponse = Paths.Hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
        var send = new byte[16];
        var receive = new byte[16];
        MsChap.MppeKeys(hash, ntResponse, send, receive);
        // RFC 3079 lists the server's SendStartKey128 (GetAsymmetricStartKey with IsSend and IsServer).
        Assert.Equal("8B7CDC149B993A1BA118CB153F56DCCB", Convert.ToHexString(send));
        Assert.NotEqual(Convert.ToHexString(send), Convert.ToHexString(receive));
    }

    [SkippableFact]
    public void Pyrad_PasswordsAuthenticatorsAndChap()
    {
        var v = Load("pyrad", "pyrad-vectors.json");
        foreach (var c in v.GetProperty("password_crypt").EnumerateArray())
        {
            if (!c.TryGetProperty("derived_here", out _))
                continue; // the 17-octet-authenticator quirk cases reproduce only pyrad's bug
            var hidden = new byte[128];
            int length = RadiusCrypto.HideUserPassword(Encoding.ASCII.GetBytes(c.GetProperty("plaintext").GetString()!),
                Encoding.ASCII.GetBytes(c.GetProperty("secret").GetString()!), Hex(c.GetProperty("authenticator_hex")), hidden);
            Assert.Equal(c.GetProperty("ciphertext_hex").GetString(), Convert.ToHexStringLower(hidden, 0, length));
        }
        var empty = v.GetProperty("authenticators")[0];
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, 0);
        writer.Complete(Encoding.ASCII.GetBytes(empty.GetProperty("secret").GetString()!));
        Assert.Equal(empty.GetProperty("expected_request_authenticator").GetString(), Convert.ToHexStringLower(buffer, 4, 16));

        foreach (var c in v.GetProperty("chap").EnumerateArray())
        {
            Assert.True(Chap.Verify(Hex(c.GetProperty("chap_password_hex")), Encoding.ASCII.GetBytes(c.GetProperty("password").GetString()!),
                Encoding.ASCII.GetBytes(c.GetProperty("challenge_ascii").GetString()!)));
        }
    }

    [SkippableFact]
    public void Pyrad_DecodeCases()
    {
        foreach (var c in Load("pyrad", "pyrad-vectors.json").GetProperty("decode").EnumerateArray())
        {
            if (c.TryGetProperty("dictionary", out _))
                continue; // pyrad's test dictionary makes attribute 4 a TLV; structure is covered by the other cases
            byte[] bytes = c.TryGetProperty("packet_hex_prefix", out var prefix)
                ? [.. Hex(prefix), .. Enumerable.Repeat(Convert.ToByte(c.GetProperty("fill_byte").GetString(), 16), c.GetProperty("packet_len").GetInt32() - 4)]
                : Hex(c.GetProperty("packet_hex"));
            var reason = RadiusPacket.TryParse(bytes, out var packet);
            if (c.TryGetProperty("expect_error", out _))
            {
                Assert.NotEqual(DropReason.None, reason);
                continue;
            }
            Assert.Equal(DropReason.None, reason);
            var expected = c.GetProperty("expect").GetProperty("attributes").EnumerateArray()
                .Select(a => $"{a[0].GetInt32()}:{(a[1].GetString() is { } s && s.All(Uri.IsHexDigit) ? s : "")}").ToList();
            var actual = new List<string>();
            foreach (var attribute in packet.Attributes)
                actual.Add($"{attribute.Type}:{Convert.ToHexStringLower(attribute.Value)}");
            Assert.Equal(expected, actual);
        }
    }

    [SkippableFact]
    public void Pyrad_RealisticAccounting_UnknownAttributesSurviveDecodeAndReencode()
    {
        var c = Load("pyrad", "pyrad-vectors.json").GetProperty("realistic_accounting_request");
        var bytes = Hex(c.GetProperty("packet_hex"));
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(bytes, out var packet));
        var attributes = AttributeDecoder.Decode(packet.AttributeBytes, RadiusDictionary.BuiltIn);
        var byName = attributes.ToDictionary(a => a.Name, a => a.ValueText);
        Assert.Equal("user@example.com", byName["User-Name"]);
        Assert.Equal("3551101035", byName["Acct-Output-Octets"]);
        Assert.Equal("Interim-Update", byName["Acct-Status-Type"]);
        Assert.Equal("0x32345010002296c9", byName["Attr-224"]);
        Assert.Equal("0xfe99d050", byName["Attr-228"]);
        Assert.Equal("0x554e4b4e4f574e5f50524f44554354", byName["Vendor-594-Attr-1"]);

        // Re-encode from the raw attributes: identical octets.
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, RadiusCode.AccountingRequest, packet.Identifier);
        foreach (var attribute in packet.Attributes)
            writer.Add(attribute.Type, attribute.Value);
        int length = writer.Complete("x"u8);
        Assert.Equal(Convert.ToHexString(bytes, 20, bytes.Length - 20), Convert.ToHexString(buffer, 20, length - 20));
    }

    private static byte[] Capture(string name) => File.ReadAllBytes(Paths.ConformanceFile("node-radius", "captures", name + ".packet"));

    [SkippableFact]
    public void NodeRadius_Captures()
    {
        var packets = Load("node-radius", "node-radius-captures.json").GetProperty("packets");
        foreach (var entry in packets.EnumerateObject())
        {
            var bytes = Capture(entry.Name);
            var c = entry.Value;
            var reason = RadiusPacket.TryParse(bytes, out var packet);
            if (entry.Name == "invalid_register")
            {
                Assert.NotEqual(DropReason.None, reason);
                continue;
            }
            Assert.Equal(DropReason.None, reason);
            Assert.Equal(c.GetProperty("code").GetInt32(), (int)packet.Code);
            Assert.Equal(c.GetProperty("id").GetInt32(), packet.Identifier);
            if (c.TryGetProperty("attr_types", out var types))
            {
                var actual = new List<int>();
                foreach (var attribute in packet.Attributes)
                    actual.Add(attribute.Type);
                Assert.Equal(types.EnumerateArray().Select(t => t.GetInt32()), actual);
            }
            var secret = c.GetProperty("secret").GetString() is { } s ? Encoding.ASCII.GetBytes(s) : [];
            if (c.TryGetProperty("message_authenticator_valid", out var ma))
                Assert.Equal(ma.GetBoolean(), RadiusCrypto.VerifyMessageAuthenticator(packet, secret));
            if (c.TryGetProperty("acct_request_authenticator_valid", out var acct))
            {
                Assert.Equal(acct.GetBoolean(), RadiusCrypto.VerifyRequestAuthenticator(packet.Bytes, secret));
                Assert.False(RadiusCrypto.VerifyRequestAuthenticator(packet.Bytes, "not-secret"u8));
            }
            if (c.TryGetProperty("user_password_decrypts_to", out var password))
            {
                packet.TryGetAttribute(AttributeTypes.UserPassword, out var hidden);
                var plain = new byte[128];
                int length = RadiusCrypto.UnhideUserPassword(hidden, secret, packet.Authenticator, plain);
                Assert.Equal(password.GetString(), Encoding.UTF8.GetString(plain, 0, length));
            }
        }
    }

    [SkippableTheory]
    [InlineData("cisco_accounting", "cisco_accounting_response", RadiusCode.AccountingResponse)]
    [InlineData("cisco_mac_auth", "cisco_mac_auth_reject", RadiusCode.AccessReject)]
    public void NodeRadius_ResponsesReencodeByteExact(string requestName, string responseName, RadiusCode code)
    {
        var request = Capture(requestName);
        var expected = Capture(responseName);
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, code, request[1]);
        int length = writer.Complete("nearbuy"u8, request.AsSpan(4, 16));
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(buffer, 0, length));
    }

    [SkippableFact]
    public void NodeRadius_EapRequest_ReencodesWithComputedMessageAuthenticator()
    {
        var capture = Capture("eap_request");
        Assert.Equal(DropReason.None, RadiusPacket.TryParse(capture, out var packet));
        var buffer = new byte[4096];
        var writer = new RadiusWriter(buffer, packet.Code, packet.Identifier, packet.Authenticator);
        foreach (var attribute in packet.Attributes)
        {
            if (attribute.Type == AttributeTypes.MessageAuthenticator)
                writer.AddMessageAuthenticator();
            else
                writer.Add(attribute.Type, attribute.Value);
        }
        Assert.Equal(Convert.ToHexString(capture), Convert.ToHexString(buffer, 0, writer.Complete("testing123"u8)));
    }

    [SkippableFact]
    public void FreeRadius_AuthCrypto()
    {
        var v = Load("freeradius", "auth-crypto.json");
        foreach (var c in v.GetProperty("chap").EnumerateArray())
        {
            Assert.True(Chap.Verify(Hex(c.GetProperty("chap_password")), Encoding.UTF8.GetBytes(c.GetProperty("password").GetString()!), Hex(c.GetProperty("chap_challenge"))));
        }
        foreach (var c in v.GetProperty("mschapv1").EnumerateArray())
        {
            var nt = new byte[16];
            MsChap.NtPasswordHash(c.GetProperty("password").GetString()!, nt);
            var expected = new byte[24];
            MsChap.NtChallengeResponse(Hex(c.GetProperty("ms_chap_challenge")), nt, expected);
            Assert.Equal(Convert.ToHexStringLower(Hex(c.GetProperty("ms_chap_response"))[26..]), Convert.ToHexStringLower(expected));
            if (c.TryGetProperty("expect_ms_chap_mppe_keys", out var keys))
            {
                var lm = new byte[16];
                MsChap.LmPasswordHash(c.GetProperty("password").GetString()!, lm);
                var plain = new byte[32];
                MsChap.MsChapV1MppeKeys(lm, nt, plain);
                Assert.Equal(keys.GetString(), Convert.ToHexStringLower(plain));
            }
        }
        foreach (var c in v.GetProperty("mschapv2").EnumerateArray())
        {
            var nt = new byte[16];
            MsChap.NtPasswordHash(c.GetProperty("password").GetString()!, nt);
            var response = Hex(c.GetProperty("ms_chap2_response"));
            var userName = Encoding.UTF8.GetBytes(c.GetProperty("user_name_attribute").GetString()!);
            var challenge = Hex(c.GetProperty("ms_chap_challenge"));
            var expected = new byte[24];
            MsChap.GenerateNtResponse(challenge, response.AsSpan(2, 16), userName, nt, expected);
            Assert.Equal(Convert.ToHexStringLower(response[26..]), Convert.ToHexStringLower(expected));
            var success = "\0"u8.ToArray().Concat(Encoding.ASCII.GetBytes(MsChap.GenerateAuthenticatorResponse(nt, response.AsSpan(26, 24), response.AsSpan(2, 16), challenge, userName)));
            Assert.Equal(c.GetProperty("expect_ms_chap2_success").GetString(), Convert.ToHexStringLower(success.ToArray()));
        }
    }
}
