using System.Buffers.Binary;
using CsCheck;
using Forewarn.Protocol.Eap;

namespace Forewarn.Protocol.Tests;

/// <summary>The parsers EAP feeds with a peer's bytes: never an exception, never a read past the input, and what is written reads back.</summary>
public sealed class EapPropertyTests
{
    [Fact]
    public void EapPacket_AnyBytes_ParseOrFailWithAReason_AndNeverReadPastTheirLength()
    {
        Gen.Byte.Array[0, 600].Sample(bytes =>
        {
            if (EapPacket.TryParse(bytes, out var packet, out string error))
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2));
                Assert.Equal(length, packet.Bytes.Length);
                Assert.True(packet.TypeData.Length <= Math.Max(0, length - 5));
            }
            else
            {
                Assert.NotEmpty(error);
            }
        }, iter: 20_000);
    }

    [Fact]
    public void EapPacket_Built_ParsesBackToTheSameFields()
    {
        Gen.Select(Gen.Byte[1, 2], Gen.Byte, Gen.Byte, Gen.Byte.Array[0, 1500]).Sample((code, id, type, data) =>
        {
            var bytes = EapPacket.Build((EapCode)code, id, type, data);
            Assert.True(EapPacket.TryParse(bytes, out var packet, out _));
            Assert.Equal((EapCode)code, packet.Code);
            Assert.Equal(id, packet.Identifier);
            Assert.Equal(type, packet.Type);
            Assert.Equal(data, packet.TypeData.ToArray());
        }, iter: 5_000);
    }

    [Fact]
    public void TlsFraming_AnyBytes_ReadOrFailWithAReason_AndAnnouncedLengthsAreBounded()
    {
        Gen.Byte.Array[0, 300].Sample(bytes =>
        {
            if (EapTlsFraming.TryRead(bytes, out var fragment, out string error))
            {
                Assert.True(fragment.TotalLength <= EapTlsFraming.MaxMessageLength);
                Assert.True(fragment.TotalLength < 0 || fragment.Data.Length <= fragment.TotalLength);
            }
            else
            {
                Assert.NotEmpty(error);
            }
        }, iter: 20_000);
    }

    [Fact]
    public void TlsFraming_FragmentsOfAMessage_ReassembleToIt()
    {
        Gen.Select(Gen.Byte.Array[1, 5000], Gen.Int[64, 1400]).Sample((message, size) =>
        {
            var joined = new List<byte>();
            int total = -1;
            for (int offset = 0; offset < message.Length; offset += size)
            {
                int chunk = Math.Min(size, message.Length - offset);
                bool more = offset + chunk < message.Length;
                var fragment = EapTlsFraming.Write(0, message.AsSpan(offset, chunk), message.Length, offset == 0, more);
                Assert.True(EapTlsFraming.TryRead(fragment, out var read, out _));
                Assert.Equal(more, read.More);
                if (read.TotalLength >= 0)
                    total = read.TotalLength;
                joined.AddRange(read.Data.ToArray());
            }
            Assert.Equal(message, joined.ToArray());
            Assert.True(total == -1 || total == message.Length);
        }, iter: 2_000);
    }

    [Fact]
    public void DiameterAvps_AnyBytes_ParseOrFail_AndWrittenAvpsReadBack()
    {
        Gen.Byte.Array[0, 400].Sample(bytes =>
        {
            if (!DiameterAvp.TryParse(bytes, out _, out string error))
                Assert.NotEmpty(error);
        }, iter: 20_000);
        Gen.Select(Gen.UInt, Gen.Bool, Gen.Byte.Array[0, 300]).Array[1, 6].Sample(avps =>
        {
            var output = new List<byte>();
            foreach (var (code, vendor, data) in avps)
                DiameterAvp.Write(output, code, vendor ? 311u : 0, data);
            Assert.True(DiameterAvp.TryParse(output.ToArray(), out var read, out _));
            Assert.Equal(avps.Length, read.Count);
            for (int i = 0; i < avps.Length; i++)
            {
                Assert.Equal(avps[i].Item1, read[i].Code);
                Assert.Equal(avps[i].Item2 ? 311u : 0, read[i].Vendor);
                Assert.Equal(avps[i].Item3, read[i].Data);
            }
        }, iter: 2_000);
    }
}
