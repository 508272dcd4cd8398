using System.Text.Json.Nodes;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// The encoders against llama.cpp's own reference functions (quantize_row_q8_0_ref, quantize_row_q4_0_ref,
/// ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref from the libggml-base.so of node-llama-cpp 3.21.1 =
/// llama.cpp v0.4.0), called on 12 blocks of 32 values by tests/gguf/quant-vectors.c (generate-vectors.sh):
/// zeros, exact ties, negative and positive extremes, the first of equal magnitudes, a subnormal fp16 scale,
/// values past fp16's range, weight-like random values.
/// </summary>
public class QuantizationVectorTests
{
    private static readonly JsonArray Blocks = (JsonArray)JsonNode.Parse(File.ReadAllText(
        Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Gguf", "ggml-quant-vectors.json")))!["blocks"]!;

    public static TheoryData<int> BlockIndexes() => [.. Enumerable.Range(0, 12)];

    private static float[] Input(int b) =>
        [.. Enumerable.Range(0, 32).Select(j => BitConverter.ToSingle(Convert.FromHexString((string)Blocks[b]!["input"]!), 4 * j))];

    private static string Expected(int b, string key) => ((string)Blocks[b]![key]!).ToUpperInvariant();

    [Theory, MemberData(nameof(BlockIndexes))]
    public void Q8_0BlocksEqualLlamaCppsReferenceQuantizer(int b)
    {
        var o = new byte[Q8_0.BlockBytes];
        Q8_0.Quantize(Input(b), o);
        Assert.Equal(Expected(b, "q8_0"), Convert.ToHexString(o));
    }

    [Theory, MemberData(nameof(BlockIndexes))]
    public void Q4_0BlocksEqualLlamaCppsReferenceQuantizer(int b)
    {
        var o = new byte[Q4_0.BlockBytes];
        Q4_0.Quantize(Input(b), o);
        Assert.Equal(Expected(b, "q4_0"), Convert.ToHexString(o));
    }

    [Theory, MemberData(nameof(BlockIndexes))]
    public void Fp16AndBf16RowsEqualGgmlsConversions(int b)
    {
        var x = Input(b);
        var h = new byte[64];
        Fp16.WriteRow(x, h);
        Assert.Equal(Expected(b, "f16"), Convert.ToHexString(h));
        var bf = x.SelectMany(v => BitConverter.GetBytes(BFloat16.RoundToBits(v))).ToArray();
        Assert.Equal(Expected(b, "bf16"), Convert.ToHexString(bf));
    }

    [Fact]
    public void Q4_0PacksWeightJInTheLowNibbleAndWeightJPlus16InTheHighNibble()
    {
        // max = −8 → d = 1, id = 1: q = min(15, (int8)(x + 8.5)); x = −8 → 0, x = 7 → 15, x = 7.9 → 16 → 15, x = −0.6 → 7.
        var x = new float[32];
        x[0] = -8f; x[16] = 7f; x[1] = 7.9f; x[17] = -0.6f;
        var o = new byte[Q4_0.BlockBytes];
        Q4_0.Quantize(x, o);
        Assert.Equal(0x3C00, o[0] | (o[1] << 8)); // fp16 1.0
        Assert.Equal(0xF0, o[2]);
        Assert.Equal(0x7F, o[3]);
        Assert.Equal(0x88, o[4]);
        var back = new float[32];
        Q4_0.Dequantize(o, back);
        Assert.Equal([-8f, 7f, 7f, -1f], new[] { back[0], back[16], back[1], back[17] });
    }
}
