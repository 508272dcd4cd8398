using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>Tensor names, shapes, types and data of exported files.</summary>
public sealed class GgufTensorTests : IDisposable
{
    private readonly TempDir _d = new();

    [FixtureFact]
    public void Stories260kTensorsGetLlamaCppsNamesShapesAndTypes()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["s.gguf"], "--type", "q8_0");
        // token_embd, 5 × 9 layer tensors, output_norm; tied embeddings: no output.weight (llama.cpp reuses token_embd).
        Assert.Equal(47, g.Tensors.Count);
        Assert.Equal(["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
            "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"],
            g.Tensors.Take(10).Select(t => t.Name));
        Assert.Equal("output_norm.weight", g.Tensors[^1].Name);
        Assert.Equal([64L, 512], g.Tensor("token_embd.weight").Dims);      // ne: innermost (columns) first
        Assert.Equal([64L, 32], g.Tensor("blk.0.attn_k.weight").Dims);     // 4 kv heads × 8
        Assert.Equal([172L, 64], g.Tensor("blk.4.ffn_down.weight").Dims);
        Assert.Equal(GgmlType.Q8_0, g.Tensor("token_embd.weight").Type);
        Assert.Equal(GgmlType.F32, g.Tensor("blk.3.ffn_norm.weight").Type);
        Assert.Equal(GgmlType.F16, g.Tensor("blk.4.ffn_down.weight").Type); // rows of 172: not a multiple of 32 → f16
        Assert.All(g.Tensors, t => Assert.Equal(0, t.Offset % 32));
        Assert.Equal(0, g.DataOffset % 32);
        Assert.Equal(new FileInfo(_d["s.gguf"]).Length, g.DataOffset + GgufFormat.Align(g.Tensors[^1].Offset + g.Tensors[^1].ByteLength, 32));
    }

    [FixtureFact]
    public void QueryAndKeyRowsArePermutedPerHeadAndTheOtherTensorsCopied()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["s.gguf"], "--type", "f32");
        using var m = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        var names = m.Names;
        // convert_hf_to_gguf: w.reshape(n_head, 2, head_dim / 2, cols).swapaxes(1, 2): GGUF row h·8 + 2j + i = HF row h·8 + 4i + j.
        foreach (var (hf, gguf, heads) in new[] { (names.Q, "attn_q.weight", 8), (names.K, "attn_k.weight", 4) })
        {
            var src = m.ReadSingle(names.Layer(2, hf));
            var dst = GgufExport.Floats(g, $"blk.2.{gguf}");
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < 4; j++)
                    for (int i = 0; i < 2; i++)
                        Assert.Equal(src.AsSpan((h * 8 + 4 * i + j) * 64, 64).ToArray(), dst.AsSpan((h * 8 + 2 * j + i) * 64, 64).ToArray());
        }
        Assert.Equal(m.ReadSingle(names.Layer(2, names.V)), GgufExport.Floats(g, "blk.2.attn_v.weight"));
        Assert.Equal(m.ReadSingle(names.Embed), GgufExport.Floats(g, "token_embd.weight"));
        Assert.Equal(m.ReadSingle(names.FinalNorm), GgufExport.Floats(g, "output_norm.weight"));
    }

    [Fact]
    public void ThePermutationSwapsTheHalvesOfEachHeadIntoPairs()
    {
        // Two heads of 4 rows, one column: rows 0..7 → [0, 2, 1, 3, 4, 6, 5, 7].
        Assert.Equal([0f, 2, 1, 3, 4, 6, 5, 7], QkPermutation.Apply([0f, 1, 2, 3, 4, 5, 6, 7], heads: 2, cols: 1));
    }

    [FixtureFact]
    public void MixtralExpertsAreStackedInExpertOrderAndTheRouterStaysF32()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k-moe4"), _d["m.gguf"], "--type", "f16");
        using var m = ModelFolder.Open(SharedFixtures.PathOf("stories260k-moe4"));
        var a = m.Names;
        Assert.Equal(1 + 5 * 10 + 1, g.Tensors.Count); // token_embd, 5 × (2 norms, q, k, v, o, router, 3 stacks), output_norm
        Assert.Equal([64L, 172, 4], g.Tensor("blk.1.ffn_gate_exps.weight").Dims);
        Assert.Equal([172L, 64, 4], g.Tensor("blk.1.ffn_down_exps.weight").Dims);
        Assert.Equal(GgmlType.F32, g.Tensor("blk.1.ffn_gate_inp.weight").Type);
        Assert.Equal([64L, 4], g.Tensor("blk.1.ffn_gate_inp.weight").Dims);
        var f32 = GgufExport.Run(SharedFixtures.PathOf("stories260k-moe4"), _d["m32.gguf"], "--type", "f32", "--force");
        foreach (var (w, gguf) in new[] { ("w1", "ffn_gate_exps.weight"), ("w2", "ffn_down_exps.weight"), ("w3", "ffn_up_exps.weight") })
        {
            var stacked = GgufExport.Floats(f32, $"blk.1.{gguf}");
            var expected = Enumerable.Range(0, 4).SelectMany(e => m.ReadSingle(a.Layer(1, Architecture.Expert(a.ExpertTemplate(w), e)))).ToArray();
            Assert.Equal(expected, stacked);
        }
        // f16 data: each value is the float rounded to nearest even half.
        var gate = m.ReadSingle(a.Layer(1, Architecture.Expert(a.ExpertGate!, 3)));
        var bytes = g.ReadBytes("blk.1.ffn_gate_exps.weight");
        int offset = 3 * 172 * 64 * 2;
        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)gate[5]), BitConverter.ToUInt16(bytes, offset + 10));
    }

    [FixtureFact]
    public void Q4_0TensorsHoldTheReferenceQuantizationOfTheirRows()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["q.gguf"], "--type", "q4_0");
        using var m = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        var v = m.ReadSingle(m.Names.Layer(0, m.Names.V));
        var expected = new byte[Mistral.Merge.Numerics.Quantization.Q4_0.ByteCount(v.Length)];
        Mistral.Merge.Numerics.Quantization.Q4_0.Quantize(v, expected);
        Assert.Equal(GgmlType.Q4_0, g.Tensor("blk.0.attn_v.weight").Type);
        Assert.Equal(expected, g.ReadBytes("blk.0.attn_v.weight"));
        Assert.Equal(GgmlType.Q4_0, g.Tensor("token_embd.weight").Type);
        Assert.Equal(GgmlType.F16, g.Tensor("blk.0.ffn_down.weight").Type);
    }

    [FixtureFact]
    public void SplitOutputIsNamedAndKeyedAsGgufSplitDoes()
    {
        var prefix = _d["s"];
        var r = CliRunner.Run("export-gguf", SharedFixtures.PathOf("stories260k"), prefix + ".gguf", "--type", "f32", "--out-shard-size", "300KB", "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var files = Directory.GetFiles(_d.Path, "s-*.gguf").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(4, files.Count);
        Assert.Equal(Enumerable.Range(1, 4).Select(i => $"{prefix}-0000{i}-of-00004.gguf"), files);
        Assert.False(File.Exists(prefix + ".gguf"));
        var parts = files.Select(GgufReader.Open).ToList();
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((ushort)i, GgufExport.Value(parts[i], "split.no"));
            Assert.Equal((ushort)4, GgufExport.Value(parts[i], "split.count"));
            Assert.Equal(47, GgufExport.Value(parts[i], "split.tensors.count"));
            Assert.True(parts[i].Tensors.Sum(t => GgufFormat.Align(t.ByteLength, 32)) <= 300_000 || parts[i].Tensors.Count == 1);
        }
        Assert.Equal("llama", GgufExport.Value(parts[0], "general.architecture"));
        Assert.Equal(3, parts[1].Metadata.Count); // gguf-split: the metadata lives in the first file only
        var whole = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["whole.gguf"], "--type", "f32");
        Assert.Equal(whole.Tensors.Select(t => t.Name), parts.SelectMany(p => p.Tensors).Select(t => t.Name));
    }

    public void Dispose() => _d.Dispose();
}
