using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// Reading GGUF for evaluation on synthesized models (no ../shared needed): each file is written by export-gguf in
/// process and read back; the source folder's forward pass is the independent reference.
/// </summary>
public sealed unsafe class GgufReadTests : IDisposable
{
    private readonly TempDir _d = new();

    public void Dispose() => _d.Dispose();

    private (string Folder, string Gguf) Export(string arch, string type, params string[] synth)
    {
        var folder = GgufExport.Synth(_d[arch], arch, synth);
        var gguf = _d[$"{arch}-{type}.gguf"];
        GgufExport.Run(folder, gguf, "--type", type);
        return (folder, gguf);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("mixtral")]
    public void AnF32ExportGivesExactlyTheSourceLogitsBatchedAndStepwise(string arch)
    {
        var (folder, gguf) = arch == "mixtral" ? Export(arch, "f32", "--experts", "4", "--experts-per-token", "2") : Export(arch, "f32");
        foreach (var stepwise in new[] { false, true })
            Assert.Equal(GgufEval.Logits(folder, GgufEval.Tokens, stepwise), GgufEval.Logits(gguf, GgufEval.Tokens, stepwise));
    }

    [Fact]
    public void AnF16ExportDiffersFromTheSourceOnlyByF16Rounding()
    {
        var (folder, gguf) = Export("llama", "f16");
        var want = GgufEval.Logits(folder, GgufEval.Tokens, false);
        var got = GgufEval.Logits(gguf, GgufEval.Tokens, false);
        Assert.NotEqual(want, got);
        Assert.True(GgufEval.MaxAbsDiff(want, got) < 1e-2, $"max |Δlogit| {GgufEval.MaxAbsDiff(want, got)}");
    }

    [Theory]
    [InlineData("q8_0", 0.05f)]
    [InlineData("q4_0", 0.5f)]
    public void QuantizedExportsStayCloseToTheSourceLogits(string type, float tolerance)
    {
        var (folder, gguf) = Export("mistral", type);
        var want = GgufEval.Logits(folder, GgufEval.Tokens, false);
        var batched = GgufEval.Logits(gguf, GgufEval.Tokens, false);
        var stepwise = GgufEval.Logits(gguf, GgufEval.Tokens, true);
        Assert.True(GgufEval.MaxAbsDiff(want, batched) < tolerance, $"max |Δlogit| {GgufEval.MaxAbsDiff(want, batched)}");
        // The GEMV dots the blocks, the GEMM dequantizes tiles: the same weights, summed in another order — and for
        // q8_0 the GEMV quantizes x to Q8_0 too (llama.cpp's q8_0 dot), so it stays within the type's tolerance.
        Assert.True(GgufEval.MaxAbsDiff(want, stepwise) < tolerance, $"max |Δlogit| stepwise {GgufEval.MaxAbsDiff(want, stepwise)}");
        if (type != "q8_0")
            Assert.True(GgufEval.MaxAbsDiff(batched, stepwise) < 1e-4, $"GEMV vs GEMM {GgufEval.MaxAbsDiff(batched, stepwise)}");
    }

    [Theory]
    [InlineData("q8_0", BlockQuant.Q8_0)]
    [InlineData("q4_0", BlockQuant.Q4_0)]
    public void AQuantizedModelHoldsOnlyItsBlocksNoFloatCopy(string type, BlockQuant quant)
    {
        var (_, gguf) = Export("mixtral", type, "--experts", "4", "--experts-per-token", "2");
        var g = GgufReader.Open(gguf);
        using var m = TransformerModel.Load(gguf);
        Assert.True(m.IsGguf);
        var layer = m.Layers[1];
        foreach (var w in new[] { layer.Q, layer.K, layer.V, layer.O, layer.ExpertGate[3], layer.ExpertUp[0], layer.ExpertDown[2], m.LmHead })
        {
            Assert.Equal(quant, w.Quant);
            Assert.Equal(w.Rows * (w.Cols / 32) * (quant == BlockQuant.Q8_0 ? 34 : 18), w.ByteLength);
        }
        Assert.Equal(BlockQuant.None, layer.Router!.Value.Quant); // ffn_gate_inp stays f32, as convert writes it
        // Experts are views into the stacked tensor: expert e starts e·rows·rowBytes into it.
        Assert.Equal((nint)(layer.ExpertGate[0].Data + 3 * layer.ExpertGate[0].ByteLength), (nint)layer.ExpertGate[3].Data);
        // Streamed weight bytes are the file's tensor bytes, less the embedding lookup and the norms.
        long file = g.Tensors.Where(t => t.Name != "token_embd.weight" && t.Dims.Length > 1).Sum(t => t.ByteLength);
        Assert.Equal(file, m.WeightBytes);
    }

    [Fact]
    public void TheTokenizerFromGgufMetadataEncodesAndDecodesAsTokenizerModel()
    {
        var (folder, gguf) = Export("llama", "q8_0");
        var want = TokenizerLoader.LoadSentencePiece(folder);
        var got = TokenizerLoader.LoadSentencePiece(gguf);
        const string text = "Hello world!  Two  spaces, tabs\tand ünïcödé bytes 🙂 end.";
        Assert.Equal(want.Encode(text, addBos: true), got.Encode(text, addBos: true));
        Assert.Equal((want.BosId, want.EosId, want.UnkId, want.AddBosByDefault), (got.BosId, got.EosId, got.UnkId, got.AddBosByDefault));
        var ids = want.Encode(text, addBos: false);
        Assert.Equal(want.Decode(ids), got.Decode(ids));
    }

    [Fact]
    public void PerplexityAndCompareAcceptGgufFiles()
    {
        var (folder, gguf) = Export("mistral", "f32");
        File.WriteAllText(_d["t.txt"], string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 20)));
        var a = CliRunner.Run("perplexity", folder, "--text", _d["t.txt"], "--device", "cpu", "--json", "--quiet");
        var b = CliRunner.Run("perplexity", gguf, "--text", _d["t.txt"], "--device", "cpu", "--json", "--quiet");
        Assert.True(a.ExitCode == 0 && b.ExitCode == 0, a.Stderr + b.Stderr);
        double Ppl(string json) => System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("perplexity").GetDouble();
        Assert.Equal(Ppl(a.Stdout), Ppl(b.Stdout));
        var c = CliRunner.Run("compare", gguf, folder, "--text", _d["t.txt"], "--device", "cpu", "--json", "--quiet");
        Assert.True(c.ExitCode == 0, c.Stderr);
        var cj = System.Text.Json.JsonDocument.Parse(c.Stdout).RootElement;
        Assert.Equal((0.0, 1.0), (cj.GetProperty("kl_max").GetDouble(), cj.GetProperty("top1_agreement").GetDouble()));
        var gen = CliRunner.Run("generate", gguf, "--prompt", "The quick", "--max-new-tokens", "8", "--temperature", "0", "--device", "cpu", "--quiet");
        var genRef = CliRunner.Run("generate", folder, "--prompt", "The quick", "--max-new-tokens", "8", "--temperature", "0", "--device", "cpu", "--quiet");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        Assert.Equal(genRef.Stdout, gen.Stdout);
    }

    [Fact]
    public void GenerateTakesTheChatTemplateFromGgufMetadata()
    {
        var folder = GgufExport.Synth(_d["m"], "mistral");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"chat_template": "{{ '[INST] ' + messages[0]['content'] + ' [/INST]' }}"}""");
        GgufExport.Run(folder, _d["m.gguf"]);
        var r = CliRunner.Run("generate", _d["m.gguf"], "--prompt", "hi", "--max-new-tokens", "2", "--temperature", "0", "--device", "cpu", "--json", "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var doc = System.Text.Json.JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(("auto", _d["m.gguf"], "[INST] hi [/INST]"),
            (doc.GetProperty("chat_template").GetString(), doc.GetProperty("chat_template_source").GetString(), doc.GetProperty("prompt").GetString()));
    }

    [Fact]
    public void InspectShowsTheMetadataAndTheTensorTable()
    {
        var (_, gguf) = Export("llama", "q4_0");
        var r = CliRunner.Run("inspect", gguf);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("architecture: llama (read as LlamaForCausalLM)", r.Stdout);
        Assert.Contains("  llama.block_count = 2", r.Stdout);
        Assert.Contains("  tokenizer.ggml.tokens = [448 string]", r.Stdout);
        Assert.Matches(@"blk\.1\.attn_q\.weight\s+q4_0\s+\[32, 32\]\s+576", r.Stdout);
        var j = CliRunner.Run("inspect", gguf, "--json");
        var doc = System.Text.Json.JsonDocument.Parse(j.Stdout).RootElement;
        Assert.Equal("gguf", doc.GetProperty("format").GetString());
        Assert.Equal(2, doc.GetProperty("metadata").GetProperty("llama.block_count").GetInt32());
    }

    [Fact]
    public void BadGgufFilesAreOneLineErrorsNamingTheFile()
    {
        File.WriteAllText(_d["x.gguf"], "not a gguf at all");
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", _d["x.gguf"], "--text", _d["x.gguf"], "--device", "cpu"), $"{_d["x.gguf"]}: not a GGUF file (bad magic)");
        var (_, gguf) = Export("llama", "q8_0");
        var bytes = File.ReadAllBytes(gguf);
        File.WriteAllBytes(_d["cut.gguf"], bytes[..(bytes.Length - 100)]);
        CliRunner.AssertOneLineError(CliRunner.Run("generate", _d["cut.gguf"], "--prompt", "a", "--device", "cpu"), $"{_d["cut.gguf"]}: tensor 'output.weight' ends past the end of the file");
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", gguf, "--text", _d["x.gguf"], "--device", "cuda"), $"{gguf}: GGUF files are evaluated on the CPU");
        Assert.Equal($"{_d["missing.gguf"]}: file not found", Assert.Throws<MergeException>(() => TransformerModel.Load(_d["missing.gguf"])).Message);
    }

    /// <summary>The byte offset just past the first occurrence of <paramref name="text"/> in <paramref name="bytes"/>.</summary>
    private static int After(byte[] bytes, string text)
    {
        var t = System.Text.Encoding.UTF8.GetBytes(text);
        return bytes.AsSpan().IndexOf(t) + t.Length;
    }

    [Fact]
    public void AnUnsupportedTensorTypeOrVocabularyIsAOneLineErrorNamingIt()
    {
        var (_, gguf) = Export("llama", "q8_0");
        var bytes = File.ReadAllBytes(gguf);
        // The tensor info of token_embd.weight: name, n_dims (u32), 2 dims (u64), then the ggml type (u32): q8_0 → q4_1.
        int type = After(bytes, "token_embd.weight") + 4 + 16;
        Assert.Equal((byte)GgmlType.Q8_0, bytes[type]);
        bytes[type] = (byte)GgmlType.Q4_1;
        File.WriteAllBytes(_d["q41.gguf"], bytes);
        Assert.Equal($"{_d["q41.gguf"]}: tensor 'token_embd.weight' has type q4_1; the forward pass reads f32, f16, bf16, q8_0 and q4_0",
            Assert.Throws<MergeException>(() => TransformerModel.Load(_d["q41.gguf"])).Message);
        // tokenizer.ggml.model: type (u32), length (u64), "llama" → "gpt2x" (a vocabulary this reader does not build).
        bytes = File.ReadAllBytes(gguf);
        int model = After(bytes, "tokenizer.ggml.model") + 12;
        System.Text.Encoding.ASCII.GetBytes("gpt2x").CopyTo(bytes, model);
        File.WriteAllBytes(_d["gpt2.gguf"], bytes);
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", _d["gpt2.gguf"], "--text", _d["gpt2.gguf"], "--device", "cpu"),
            $"{_d["gpt2.gguf"]}: tokenizer.ggml.model 'gpt2x' is not supported (the sentencepiece 'llama' and byte-level BPE 'gpt2' vocabularies are read from GGUF)");
    }

    [Fact]
    public void TruncationsAndByteFlipsLoadOrFailWithAMergeException()
    {
        var (_, gguf) = Export("mixtral", "q4_0", "--experts", "2", "--experts-per-token", "1");
        var bytes = File.ReadAllBytes(gguf);
        var r = new Random(12);
        var cases = new List<byte[]>();
        foreach (var cut in new[] { 0, 3, 4, 8, 16, 24, 40, 100, 1000, bytes.Length / 2, bytes.Length - 1 }) cases.Add(bytes[..cut]);
        long header = GgufReader.Open(gguf).DataOffset;
        for (int i = 0; i < 150; i++)
        {
            var b = (byte[])bytes.Clone();
            int at = r.Next((int)header); // the header: the data section is any bytes
            b[at] = (byte)(i % 3 == 0 ? 0xFF : b[at] ^ (1 << r.Next(8)));
            cases.Add(b);
        }
        int loaded = 0;
        foreach (var c in cases)
        {
            File.WriteAllBytes(_d["f.gguf"], c);
            try
            {
                using var m = TransformerModel.Load(_d["f.gguf"]);
                loaded++;
            }
            catch (MergeException e) { Assert.DoesNotContain('\n', e.Message); Assert.StartsWith(_d["f.gguf"], e.Message); }
            try { GgufTokenizer.Load(_d["f.gguf"]); }
            catch (MergeException e) { Assert.DoesNotContain('\n', e.Message); }
        }
        Assert.True(loaded > 0);
    }
}
