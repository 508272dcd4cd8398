using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO;

/// <summary>
/// Thousands of seeded random mutations of a valid file: opening and reading every tensor may only
/// ever throw MergeException — no other exception, crash or hang (a hang would trip the test timeout).
/// </summary>
public class FuzzTests
{
    private const string Structural = "{}[]\",:-0123456789e.\\ ";

    private static byte[] Mutate(byte[] valid, Random rng)
    {
        var b = new List<byte>(valid);
        int edits = 1 + rng.Next(4);
        for (int e = 0; e < edits; e++)
        {
            // Most bytes that matter are in the header: aim there three times out of four.
            int headerEnd = Math.Min(b.Count, 8 + (int)BitConverter.ToUInt64(valid, 0));
            int pos = b.Count == 0 ? 0 : rng.Next(4) > 0 ? rng.Next(Math.Max(1, headerEnd)) : rng.Next(b.Count);
            switch (rng.Next(8))
            {
                case 0: if (b.Count > 0) b[Math.Min(pos, b.Count - 1)] = (byte)rng.Next(256); break;
                case 1: if (b.Count > 0) b[Math.Min(pos, b.Count - 1)] ^= (byte)(1 << rng.Next(8)); break;
                case 2: b.RemoveRange(Math.Min(pos, b.Count), b.Count - Math.Min(pos, b.Count)); break; // truncate
                case 3: b.Insert(Math.Min(pos, b.Count), (byte)rng.Next(256)); break;
                case 4: if (b.Count > 0) b.RemoveAt(Math.Min(pos, b.Count - 1)); break;
                case 5: // a structural JSON character or digit where it hurts
                    if (b.Count > 0) b[Math.Min(pos, b.Count - 1)] = (byte)Structural[rng.Next(Structural.Length)];
                    break;
                case 6: // rewrite the header length
                    if (b.Count >= 8)
                    {
                        ulong n = rng.Next(3) switch { 0 => (ulong)rng.Next(0, 400), 1 => (ulong)rng.NextInt64(), _ => BitConverter.ToUInt64(b.GetRange(0, 8).ToArray()) + (ulong)rng.Next(-9, 9) };
                        var nb = BitConverter.GetBytes(n);
                        for (int i = 0; i < 8; i++) b[i] = nb[i];
                    }
                    break;
                case 7: b.AddRange(new byte[rng.Next(1, 9)]); break; // trailing bytes
            }
        }
        return b.ToArray();
    }

    private static void OpenAndReadAll(string path)
    {
        using var f = SafetensorsFile.Open(path);
        long sum = 0;
        var floats = new float[64];
        foreach (var t in f.Tensors)
        {
            foreach (var x in f.GetBytes(t)) sum += x;
            if (t.DType.IsFloatMath() && t.ElementCount <= floats.Length)
                Conversions.ToSingle(f.GetBytes(t), t.DType, floats);
        }
        GC.KeepAlive(sum);
    }

    [Fact]
    public void RandomMutationsOnlyEverThrowMergeException()
    {
        var valid = RawSafetensors.Valid();
        using var tmp = new TempDir();
        var path = tmp["fuzz.safetensors"];
        var rng = new Random(1234);
        int rejected = 0, accepted = 0;
        for (int i = 0; i < 5000; i++)
        {
            var bytes = Mutate(valid, rng);
            File.WriteAllBytes(path, bytes);
            try { OpenAndReadAll(path); accepted++; }
            catch (MergeException e)
            {
                rejected++;
                Assert.StartsWith(path + ": ", e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {i}: {e.GetType().Name}: {e.Message} for bytes {Convert.ToHexString(bytes)}");
            }
        }
        Assert.True(rejected > 3000, $"only {rejected} of 5000 mutations were rejected");
        Assert.True(accepted > 0); // e.g. a flipped data byte or a harmless header change
    }

    [Fact]
    public void RandomIndexMutationsOnlyEverThrowMergeException()
    {
        using var tmp = new TempDir();
        const string shard = "model-00001-of-00001.safetensors";
        File.WriteAllBytes(tmp[shard], RawSafetensors.Valid());
        var index = System.Text.Encoding.UTF8.GetBytes(
            "{\"metadata\":{\"total_size\":36},\"weight_map\":{\"a\":\"" + shard + "\",\"b\":\"" + shard + "\",\"c\":\"" + shard + "\"}}");
        var rng = new Random(99);
        for (int i = 0; i < 1500; i++)
        {
            var mutated = Mutate(RawSafetensors.Build(index, []), rng);
            File.WriteAllBytes(tmp[CheckpointWriter.IndexFileName], mutated.Length > 8 ? mutated[8..] : []);
            try { using var m = ModelFolder.Open(tmp.Path); Assert.Equal(3, m.TensorNames.Count); }
            catch (MergeException e) { Assert.DoesNotContain('\n', e.Message); }
            catch (Exception e) { Assert.Fail($"iteration {i}: {e.GetType().Name}: {e.Message}"); }
        }
    }
}
