using BenchmarkDotNet.Attributes;
using Forewarn.Protocol.Radius;

namespace Forewarn.Benchmarks;

/// <summary>The wire codec on a typical PAP Access-Request and its Access-Accept.</summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private static readonly byte[] Secret = "testing123"u8.ToArray();
    private readonly byte[] _request = RequestFactory.PapRequest("alice", "correct horse", Secret);
    private readonly byte[] _response = new byte[RadiusPacket.MaxLength];

    [Benchmark]
    public int ValidateAndWalk()
    {
        RadiusPacket.TryParse(_request, out var packet);
        int sum = 0;
        foreach (var attribute in packet.Attributes)
            sum += attribute.Value.Length;
        return sum;
    }

    [Benchmark]
    public bool VerifyMessageAuthenticator()
    {
        RadiusPacket.TryParse(_request, out var packet);
        return RadiusCrypto.VerifyMessageAuthenticator(packet, Secret);
    }

    [Benchmark]
    public int UnhidePassword()
    {
        RadiusPacket.TryParse(_request, out var packet);
        packet.TryGetAttribute(AttributeTypes.UserPassword, out var hidden);
        Span<byte> plain = stackalloc byte[128];
        return RadiusCrypto.UnhideUserPassword(hidden, Secret, packet.Authenticator, plain);
    }

    [Benchmark]
    public int EncodeAccessAccept()
    {
        var writer = new RadiusWriter(_response, RadiusCode.AccessAccept, 7);
        writer.AddMessageAuthenticator();
        writer.AddUInt32(AttributeTypes.SessionTimeout, 3600);
        writer.Add(AttributeTypes.FramedIpAddress, [10, 0, 0, 7]);
        return writer.Complete(Secret, _request.AsSpan(4, 16));
    }
}
