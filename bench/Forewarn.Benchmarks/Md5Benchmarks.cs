using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Forewarn.Benchmarks;

/// <summary>MD5 and HMAC-MD5 over a RADIUS-sized input (a 100-octet packet): .NET's OpenSSL-backed one-shots against BouncyCastle's managed digest.</summary>
[MemoryDiagnoser]
public class Md5Benchmarks
{
    private static readonly byte[] Secret = "testing123"u8.ToArray();
    private readonly byte[] _packet = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
    private readonly byte[] _digest = new byte[16];
    private readonly MD5Digest _bcMd5 = new();
    private readonly HMac _bcHmac = new(new MD5Digest());

    public Md5Benchmarks() => _bcHmac.Init(new KeyParameter(Secret));

    [Benchmark(Baseline = true)]
    public int Md5_DotNetOneShot() => MD5.HashData(_packet, _digest);

    [Benchmark]
    public int Md5_BouncyCastle()
    {
        _bcMd5.BlockUpdate(_packet);
        return _bcMd5.DoFinal(_digest);
    }

    [Benchmark]
    public int HmacMd5_DotNetOneShot() => HMACMD5.HashData(Secret, _packet, _digest);

    [Benchmark]
    public int HmacMd5_BouncyCastleKeyed()
    {
        _bcHmac.BlockUpdate(_packet);
        return _bcHmac.DoFinal(_digest);
    }
}
