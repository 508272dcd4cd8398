using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// <c>inspect X.gguf --check</c> on exported synthesized models with planted values: a NaN or infinite fp16 block
/// scale of a Q8_0/Q4_0 tensor, −Inf in an f16 weight, an all-zero float32 norm. The expected counts come from the
/// planted bytes themselves (an infinite scale times quant q is ±Inf by q's sign and NaN for q = 0, as IEEE and ggml's
/// <c>q·d</c> give), not from the dequantizer under test.
/// </summary>
public sealed class GgufInspectCheckTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const ushort HalfNaN = 0x7E00, HalfPosInf = 0x7C00, HalfNegInf = 0xFC00;

    private string Export(string type)
    {
        var folder = _d["m"];
        if (!Directory.Exists(folder)) GgufExport.Synth(folder, "llama");
        var gguf = _d[$"m-{type}.gguf"];
        GgufExport.Run(folder, gguf, "--type", type);
        return gguf;
    }

    /// <summary>The file offset of a tensor's first byte.</summary>
    private static long DataOf(string gguf, string name)
    {
        var g = GgufReader.Open(gguf);
        return g.DataOffset + g.Tensor(name).Offset;
    }

    private static void Poke(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        fs.Write(bytes);
    }

    private static void PokeHalf(string path, long offset, ushort bits)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, bits);
        Poke(path, offset, b);
    }

    private static string Row(CliRunner.Result r, string name) => r.Stdout.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));

    [Fact]
    public void Q8_0BlockScalesThatAreNaNOrInfiniteSpoilTheirBlocksWeightByWeight()
    {
        var gguf = Export("q8_0");
        const string Q = "blk.0.attn_q.weight", Norm = "output_norm.weight";
        long q = DataOf(gguf, Q);
        PokeHalf(gguf, q, HalfNaN);            // block 0: 32 NaN
        PokeHalf(gguf, q + 34, HalfPosInf);    // block 1: ±Inf by each quant's sign, NaN where it is 0
        var quants = File.ReadAllBytes(gguf).AsSpan((int)(q + 36), 32).ToArray().Select(b => (sbyte)b).ToArray();
        int pos = quants.Count(v => v > 0), neg = quants.Count(v => v < 0), zero = quants.Count(v => v == 0);
        Poke(gguf, DataOf(gguf, Norm), new byte[32 * 4]); // output_norm: [32] float32, all zero

        var r = CliRunner.Run("inspect", gguf, "--check");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {gguf}: 1 tensor holds NaN or Inf values", r.Stderr.TrimEnd('\n'));
        Assert.Matches($@"q8_0\s+\[32, 32\]\s+1,088\s+{32 + zero}\s+{pos}\s+{neg}\s+no$", Row(r, Q));
        Assert.Matches(@"f32\s+\[32\]\s+128\s+0\s+0\s+0\s+yes$", Row(r, Norm));
        Assert.Matches(@"q8_0\s+\[32, 32\]\s+1,088\s+0\s+0\s+0\s+no$", Row(r, "blk.1.attn_q.weight"));
        int tensors = GgufReader.Open(gguf).Tensors.Count;
        Assert.Contains($"check:        {tensors} tensors scanned, 1 with NaN/Inf (NaN {32 + zero}, +Inf {pos}, -Inf {neg}), 1 all-zero", r.Stdout);

        var j = CliRunner.Run("inspect", gguf, "--check", "--json");
        Assert.Equal(1, j.ExitCode);
        var doc = JsonDocument.Parse(j.Stdout).RootElement;
        var check = doc.GetProperty("check");
        Assert.Equal((1, 32 + zero, pos, neg, 1, 0), (check.GetProperty("tensors_with_nonfinite").GetInt32(), check.GetProperty("nan").GetInt32(),
            check.GetProperty("pos_inf").GetInt32(), check.GetProperty("neg_inf").GetInt32(), check.GetProperty("all_zero_tensors").GetInt32(),
            check.GetProperty("not_read").GetInt32()));
        var row = doc.GetProperty("tensors").EnumerateArray().Single(t => t.GetProperty("name").GetString() == Q);
        Assert.Equal((32 + zero, pos, neg, false), (row.GetProperty("nan").GetInt32(), row.GetProperty("pos_inf").GetInt32(),
            row.GetProperty("neg_inf").GetInt32(), row.GetProperty("all_zero").GetBoolean()));
    }

    [Fact]
    public void Q4_0AndF16TensorsAreScannedToo()
    {
        var q4 = Export("q4_0");
        PokeHalf(q4, DataOf(q4, "blk.1.ffn_down.weight") + 18 * 3, HalfNegInf); // block 3: −Inf × (q − 8): q = 8 gives NaN
        var quants = File.ReadAllBytes(q4).AsSpan((int)(DataOf(q4, "blk.1.ffn_down.weight") + 18 * 3 + 2), 16).ToArray()
            .SelectMany(b => new[] { (b & 0x0F) - 8, (b >> 4) - 8 }).ToArray();
        var r = CliRunner.Run("inspect", q4, "--check");
        Assert.Equal(1, r.ExitCode);
        Assert.Matches($@"q4_0\s+\[64, 32\]\s+1,152\s+{quants.Count(v => v == 0)}\s+{quants.Count(v => v < 0)}\s+{quants.Count(v => v > 0)}\s+no$", Row(r, "blk.1.ffn_down.weight"));

        var f16 = Export("f16");
        PokeHalf(f16, DataOf(f16, "blk.0.ffn_up.weight") + 2 * 5, HalfNegInf);
        PokeHalf(f16, DataOf(f16, "blk.0.ffn_up.weight") + 2 * 9, HalfNaN);
        r = CliRunner.Run("inspect", f16, "--check");
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"f16\s+\[32, 64\]\s+4,096\s+1\s+0\s+1\s+no$", Row(r, "blk.0.ffn_up.weight"));
    }

    [Fact]
    public void ACleanFileExitsZeroAndTypesThatAreNotDecodedAreNamed()
    {
        var gguf = Export("q8_0");
        var clean = CliRunner.Run("inspect", gguf, "--check");
        Assert.True(clean.ExitCode == 0, clean.Stderr);
        int tensors = GgufReader.Open(gguf).Tensors.Count;
        Assert.Contains($"check:        {tensors} tensors scanned, no NaN or Inf, 0 all-zero", clean.Stdout);

        // output_norm.weight ([32] float32, 128 bytes) relabelled Q4_1 (one 20-byte block of 32): a type ggml has and
        // this tool does not decode; the file stays well formed (tensor offsets are explicit).
        var bytes = File.ReadAllBytes(gguf);
        var name = Encoding.UTF8.GetBytes("output_norm.weight");
        int at = bytes.AsSpan().IndexOf(name) + name.Length;                     // then: n_dims u32, dims u64 × n, type u32
        int dims = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 4 + 8 * dims), (uint)GgmlType.Q4_1);
        File.WriteAllBytes(_d["relabelled.gguf"], bytes);
        var r = CliRunner.Run("inspect", _d["relabelled.gguf"], "--check");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Matches(@"q4_1\s+\[32\]\s+20\s+-\s+-\s+-\s+not read$", Row(r, "output_norm.weight"));
        Assert.Contains($"check:        {tensors - 1} tensors scanned, no NaN or Inf, 0 all-zero; 1 not read (1 q4_1: only float, Q8_0 and Q4_0 tensors are decoded)", r.Stdout);
        var j = JsonDocument.Parse(CliRunner.Run("inspect", _d["relabelled.gguf"], "--check", "--json").Stdout).RootElement;
        Assert.Equal(1, j.GetProperty("check").GetProperty("not_read").GetInt32());
        var row = j.GetProperty("tensors").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "output_norm.weight");
        Assert.Equal(JsonValueKind.Null, row.GetProperty("nan").ValueKind);
    }

    [Fact]
    public void EveryShardOfASplitFileIsInspectedAndChecked()
    {
        GgufExport.Synth(_d["m"], "llama");
        var r = CliRunner.Run("export-gguf", _d["m"], _d["s.gguf"], "--type", "f32", "--out-shard-size", "40KB", "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var shards = Directory.GetFiles(_d.Path, "s-*.gguf").Order(StringComparer.Ordinal).ToList();
        Assert.True(shards.Count >= 3, $"{shards.Count} shards");
        int scanned = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            var c = CliRunner.Run("inspect", shards[i], "--check");
            Assert.True(c.ExitCode == 0, c.Stderr);
            var line = c.Stdout.Split('\n').Single(l => l.StartsWith("check:", StringComparison.Ordinal));
            scanned += int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains(i == 0 ? "architecture: llama (read as LlamaForCausalLM)" : $"architecture: (shard {i + 1} of {shards.Count}: the model's metadata is in the first shard)", c.Stdout);
        }
        Assert.Equal(GgufExport.Run(_d["m"], _d["whole.gguf"], "--type", "f32").Tensors.Count, scanned);
    }

    [Fact]
    public void SplitKeysThatAreNotIntegersAreOneLineErrors()
    {
        // A shard without general.architecture whose split.no / split.count are strings: read with Convert.ToInt64,
        // they gave "internal error (FormatException)".
        var header = GgufHeader.Build([("split.no", GgufValue.Str("one")), ("split.count", GgufValue.Str("two"))],
            [new GgufTensorInfo("t", [32], GgmlType.F32)], 32, out _, out long dataLength);
        File.WriteAllBytes(_d["bad.gguf"], [.. header, .. new byte[dataLength]]);
        CliRunner.AssertOneLineError(CliRunner.Run("inspect", _d["bad.gguf"]), $"{_d["bad.gguf"]}: 'split.no' must be an integer, got one");
        CliRunner.AssertOneLineError(CliRunner.Run("inspect", _d["bad.gguf"], "--check"), $"{_d["bad.gguf"]}: 'split.no' must be an integer, got one");
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", _d["bad.gguf"], "--text", _d["bad.gguf"]), $"{_d["bad.gguf"]}: 'split.count' must be an integer, got two");
    }
}
