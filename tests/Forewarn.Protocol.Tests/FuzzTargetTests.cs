using Forewarn.Fuzz;

namespace Forewarn.Protocol.Tests;

/// <summary>
/// The fuzz targets' promises on every test run, without AFL: each target's seed corpus (the conformance
/// vectors, read in place, and Forewarn's own messages), then 20,000 random mutations of it (bit flips,
/// byte changes, truncations, insertions, splices; a fixed seed, so a failure reproduces). The coverage-guided
/// runs (fuzz/run.sh) search much further; this keeps a broken invariant from waiting for the next one.
/// </summary>
public sealed class FuzzTargetTests
{
    public static TheoryData<string> Names => [.. Targets.All.Keys];

    [SkippableTheory]
    [MemberData(nameof(Names))]
    public void SeedsAndTheirMutations_KeepEveryPromise(string target)
    {
        var seeds = Seeds.For(target, Paths.Conformance).ToList();
        Assert.NotEmpty(seeds);
        var check = Targets.All[target];
        foreach (var seed in seeds)
            check(seed);
        var random = new Random(20261203);
        for (int i = 0; i < 20_000; i++)
        {
            var input = Mutate(seeds[random.Next(seeds.Count)], seeds[random.Next(seeds.Count)], random);
            try
            {
                check(input);
            }
            catch (Exception e)
            {
                // A dictionary seed is a file of up to 100 KB: its first 1,000 octets say enough (the mutation's number reproduces it).
                Assert.Fail($"{target}: mutation {i} ({Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 1000)))}{(input.Length > 1000 ? $"... {input.Length} octets" : "")}) broke a promise: {e}");
            }
        }
    }

    private static byte[] Mutate(byte[] seed, byte[] other, Random random)
    {
        var bytes = new List<byte>(seed);
        for (int n = random.Next(1, 5); n > 0; n--)
        {
            int at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 8)));
                    break;
                case 3:
                    bytes.InsertRange(at, Enumerable.Range(0, random.Next(1, 8)).Select(_ => (byte)random.Next(256)));
                    break;
                default:
                    int from = other.Length == 0 ? 0 : random.Next(other.Length);
                    bytes.InsertRange(at, other.Skip(from).Take(random.Next(1, 32)));
                    break;
            }
        }
        return [.. bytes];
    }
}
