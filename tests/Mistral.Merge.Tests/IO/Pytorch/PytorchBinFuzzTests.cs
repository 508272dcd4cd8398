using Mistral.Merge.IO;
using Mistral.Merge.IO.Pickle;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>
/// Thousands of seeded random mutations of torch-written .bin files (both formats): opening and reading every
/// tensor may only ever load or throw one line of MergeException naming the file — no other exception, crash or hang.
/// </summary>
public class PytorchBinFuzzTests
{
    // pickle opcodes that change structure, so that mutations reach past the first check
    private const string Opcodes = "()}]tqhXKJMRQb.su\u0080\u0085\u0086\u0087\u0088\u0089\u008a\u008c\u0093\u0094";

    private static byte[] Mutate(byte[] valid, int hotEnd, Random rng)
    {
        var b = new List<byte>(valid);
        int edits = 1 + rng.Next(4);
        for (int e = 0; e < edits; e++)
        {
            // three times out of four in the part that is parsed (pickles, zip directory), else anywhere
            int pos = b.Count == 0 ? 0 : rng.Next(4) > 0 ? HotPosition(b.Count, hotEnd, rng) : rng.Next(b.Count);
            int at = Math.Min(pos, Math.Max(0, b.Count - 1));
            switch (rng.Next(7))
            {
                case 0: if (b.Count > 0) b[at] = (byte)rng.Next(256); break;
                case 1: if (b.Count > 0) b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 2: b.RemoveRange(Math.Min(pos, b.Count), b.Count - Math.Min(pos, b.Count)); break; // truncate
                case 3: b.Insert(Math.Min(pos, b.Count), (byte)rng.Next(256)); break;
                case 4: if (b.Count > 0) b.RemoveAt(at); break;
                case 5: if (b.Count > 0) b[at] = (byte)Opcodes[rng.Next(Opcodes.Length)]; break;
                case 6: b.AddRange(new byte[rng.Next(1, 9)]); break; // trailing bytes
            }
        }
        return b.ToArray();
    }

    /// <summary>The legacy pickles at the start, or a zip's data.pkl at the start and its central directory at the end.</summary>
    private static int HotPosition(int count, int hotEnd, Random rng) =>
        hotEnd > 0 ? rng.Next(Math.Min(count, hotEnd)) : rng.Next(2) == 0 ? rng.Next(Math.Min(count, 2200)) : Math.Max(0, count - 1 - rng.Next(Math.Min(count, 1200)));

    private static void OpenAndReadAll(string path)
    {
        using var f = PytorchCheckpoint.Open(path);
        long sum = 0;
        var floats = new float[64];
        foreach (var t in f.Tensors)
        {
            foreach (var x in f.GetBytes(t)) sum += x;
            if (t.DType.IsFloatMath() && t.ElementCount <= floats.Length) Conversions.ToSingle(f.GetBytes(t), t.DType, floats);
        }
        GC.KeepAlive(sum);
    }

    [Theory]
    [InlineData("dtypes-zip.bin", 0, 11)]
    [InlineData("dtypes-legacy.bin", 1400, 12)]
    [InlineData("llama-zip/pytorch_model.bin", 0, 13)]
    [InlineData("llama-legacy/pytorch_model.bin", 2300, 14)]
    public void RandomMutationsOnlyEverLoadOrThrowOneLineMergeException(string fixture, int hotEnd, int seed)
    {
        var valid = File.ReadAllBytes(PytorchFixtures.PathOf(fixture));
        using var tmp = new TempDir();
        var path = tmp["fuzz.bin"];
        var rng = new Random(seed);
        int rejected = 0, accepted = 0;
        for (int i = 0; i < 2000; i++)
        {
            var bytes = Mutate(valid, hotEnd, rng);
            File.WriteAllBytes(path, bytes);
            try { OpenAndReadAll(path); accepted++; }
            catch (MergeException e)
            {
                rejected++;
                Assert.True(e.Message.StartsWith(path + ": ", StringComparison.Ordinal) && !e.Message.Contains('\n'), $"iteration {i}: {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Assert.True(rejected > 800, $"only {rejected} of 2000 mutations were rejected");
        Assert.True(accepted > 0); // e.g. a changed tensor byte
    }
}
