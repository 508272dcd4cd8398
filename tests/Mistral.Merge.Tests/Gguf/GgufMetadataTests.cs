using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>The metadata of exported files: config.json's values under llama.cpp's keys, the vocabulary, the file facts.</summary>
public sealed class GgufMetadataTests : IDisposable
{
    private readonly TempDir _d = new();

    [FixtureFact]
    public void Stories260kHoldsItsConfigUnderLlamaCppsLlamaKeys()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["s.gguf"], "--type", "f32");
        Assert.Equal(3u, g.Version);
        // stories260k/config.json: MistralForCausalLM (convert_hf_to_gguf's LlamaModel → "llama"), 5 layers of 64, 8 heads
        // (4 kv) of 8, ffn 172, 512 positions and tokens, rope 10000, eps 1e-5; tied embeddings, no sliding window.
        var expected = new (string Key, object Value)[]
        {
            ("general.architecture", "llama"), ("general.type", "model"), ("general.name", "stories260k"),
            ("llama.block_count", 5u), ("llama.context_length", 512u), ("llama.embedding_length", 64u),
            ("llama.feed_forward_length", 172u), ("llama.attention.head_count", 8u), ("llama.attention.head_count_kv", 4u),
            ("llama.rope.freq_base", 10000f), ("llama.attention.layer_norm_rms_epsilon", 1e-5f),
            ("llama.attention.key_length", 8u), ("llama.attention.value_length", 8u), ("general.file_type", 0u),
            ("llama.vocab_size", 512u), ("llama.rope.dimension_count", 8u), ("general.quantization_version", 2u), ("general.alignment", 32u),
            ("tokenizer.ggml.model", "llama"), ("tokenizer.ggml.pre", "default"),
            ("tokenizer.ggml.bos_token_id", 1u), ("tokenizer.ggml.eos_token_id", 2u),
            ("tokenizer.ggml.add_bos_token", true), ("tokenizer.ggml.add_eos_token", false),
        };
        foreach (var (key, value) in expected) Assert.True(value.Equals(GgufExport.Value(g, key)), $"{key}: {g.Get(key)}");
        Assert.Equal(expected.Select(e => e.Key).Concat(["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"]).Order(),
            g.Metadata.Select(kv => kv.Key).Order());
        Assert.Null(g.Get("llama.attention.sliding_window"));
        Assert.Null(g.Get("tokenizer.ggml.unknown_token_id")); // no tokenizer.json to resolve "<unk>" and no unk_token_id in config.json
    }

    [FixtureFact]
    public void Stories260kVocabularyIsTheSentencepieceModelsPiecesScoresAndTypes()
    {
        var g = GgufExport.Run(SharedFixtures.PathOf("stories260k"), _d["s.gguf"], "--type", "f16");
        var tokens = (string[])GgufExport.Value(g, "tokenizer.ggml.tokens");
        var types = (int[])GgufExport.Value(g, "tokenizer.ggml.token_type");
        var scores = (float[])GgufExport.Value(g, "tokenizer.ggml.scores");
        // llama2.c's tok512 (byte_fallback): <unk> (UNKNOWN 2), <s> and </s> (CONTROL 3), 256 byte pieces (BYTE 6), 253 merges (NORMAL 1).
        Assert.Equal(512, tokens.Length);
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>", "<0x0A>"], new[] { tokens[0], tokens[1], tokens[2], tokens[3], tokens[13] });
        Assert.Equal([2, 3, 3], types[..3]);
        Assert.All(types[3..259], t => Assert.Equal(6, t));
        Assert.All(types[259..], t => Assert.Equal(1, t));
        Assert.All(scores[..259], s => Assert.Equal(0f, s));
        Assert.True(scores[259] > scores[511], "merge pieces are scored by their rank");
        Assert.Equal(1u, GgufExport.Value(g, "general.file_type"));
    }

    [Fact]
    public void SynthesizedMistralMixtralAndQwen2WriteTheirArchitectureKeys()
    {
        var mistral = GgufExport.Run(GgufExport.Synth(_d["mistral"], "mistral"), _d["mistral.gguf"], "--type", "bf16");
        Assert.Equal("llama", GgufExport.Value(mistral, "general.architecture"));
        Assert.Equal(4096u, GgufExport.Value(mistral, "llama.attention.sliding_window"));   // synth's Mistral default
        Assert.Equal(32u, GgufExport.Value(mistral, "general.file_type"));                  // MOSTLY_BF16
        Assert.Equal(8u, GgufExport.Value(mistral, "llama.rope.dimension_count"));          // 32 / 4 heads
        Assert.Null(mistral.Get("llama.expert_count"));

        var mixtral = GgufExport.Run(GgufExport.Synth(_d["mixtral"], "mixtral", "--experts", "4", "--experts-per-token", "2"), _d["mixtral.gguf"], "--type", "q8_0");
        Assert.Equal(4u, GgufExport.Value(mixtral, "llama.expert_count"));
        Assert.Equal(2u, GgufExport.Value(mixtral, "llama.expert_used_count"));
        Assert.Equal(1000000f, GgufExport.Value(mixtral, "llama.rope.freq_base"));
        Assert.Equal(7u, GgufExport.Value(mixtral, "general.file_type"));                   // MOSTLY_Q8_0
        Assert.Null(mixtral.Get("llama.attention.sliding_window"));                         // "sliding_window": null

        var qwen = GgufExport.Run(GgufExport.Synth(_d["qwen2"], "qwen2"), _d["qwen2.gguf"], "--type", "q4_0");
        Assert.Equal("qwen2", GgufExport.Value(qwen, "general.architecture"));
        Assert.Equal(2u, GgufExport.Value(qwen, "qwen2.block_count"));
        Assert.Null(qwen.Get("qwen2.attention.sliding_window"));                            // use_sliding_window: false
        Assert.Null(qwen.Get("qwen2.vocab_size"));                                          // a LlamaModel-only key
        Assert.Equal(2u, GgufExport.Value(qwen, "general.file_type"));                      // MOSTLY_Q4_0
        Assert.Equal(GgmlType.F32, qwen.Tensor("blk.1.attn_k.bias").Type);
    }

    [Fact]
    public void AMergeCardGivesTheNameLicenseTagsAndBaseModels()
    {
        var m = GgufExport.Synth(_d["m"], "llama");
        File.WriteAllText(Path.Combine(m, "README.md"), "---\nbase_model:\n- org/a\n- \"org/b\"\nlicense: apache-2.0\nlibrary_name: transformers\ntags:\n- mergekit\n- merge\n---\n\n# my-merge\n\nText.\n");
        var g = GgufExport.Run(m, _d["m.gguf"]);
        Assert.Equal("my-merge", GgufExport.Value(g, "general.name"));
        Assert.Equal("apache-2.0", GgufExport.Value(g, "general.license"));
        Assert.Equal(["mergekit", "merge"], (string[])GgufExport.Value(g, "general.tags"));
        Assert.Equal(2u, GgufExport.Value(g, "general.base_model.count"));
        Assert.Equal("org/b", GgufExport.Value(g, "general.base_model.1.name"));
        Assert.Equal("https://huggingface.co/org/a", GgufExport.Value(g, "general.base_model.0.repo_url"));
    }

    [Fact]
    public void AByteLevelBpeTokenizerJsonBecomesTheGpt2VocabularyWithMerges()
    {
        var m = GgufExport.Synth(_d["m"], "qwen2");
        File.Delete(Path.Combine(m, "tokenizer.model"));
        File.Delete(Path.Combine(m, "tokenizer_config.json"));
        const string pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        var tj = new System.Text.Json.Nodes.JsonObject
        {
            ["model"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = new System.Text.Json.Nodes.JsonObject { ["a"] = 0, ["b"] = 1, ["ab"] = 2, ["Ġ"] = 3 },
                ["merges"] = new System.Text.Json.Nodes.JsonArray("a b", new System.Text.Json.Nodes.JsonArray("Ġ", "ab")),
            },
            ["added_tokens"] = new System.Text.Json.Nodes.JsonArray(
                new System.Text.Json.Nodes.JsonObject { ["id"] = 4, ["content"] = "<|endoftext|>", ["special"] = true },
                new System.Text.Json.Nodes.JsonObject { ["id"] = 5, ["content"] = "▁user", ["special"] = false }),
            ["pre_tokenizer"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new System.Text.Json.Nodes.JsonArray(
                    new System.Text.Json.Nodes.JsonObject { ["type"] = "Split", ["pattern"] = new System.Text.Json.Nodes.JsonObject { ["Regex"] = pattern } },
                    new System.Text.Json.Nodes.JsonObject { ["type"] = "ByteLevel", ["use_regex"] = false }),
            },
        };
        File.WriteAllText(Path.Combine(m, "tokenizer.json"), tj.ToJsonString());
        File.WriteAllText(Path.Combine(m, "tokenizer_config.json"), """{"eos_token": "<|endoftext|>", "add_bos_token": false, "chat_template": "{{ messages }}"}""");
        var g = GgufExport.Run(m, _d["m.gguf"]);
        Assert.Equal("gpt2", GgufExport.Value(g, "tokenizer.ggml.model"));
        Assert.Equal("qwen2", GgufExport.Value(g, "tokenizer.ggml.pre"));
        var tokens = (string[])GgufExport.Value(g, "tokenizer.ggml.tokens");
        Assert.Equal(448, tokens.Length); // config.json's vocab_size: ids without a token are [PADn]
        Assert.Equal(["a", "b", "ab", "Ġ", "<|endoftext|>", " user", "[PAD6]"], tokens[..7]);
        Assert.Equal([1, 1, 1, 1, 3, 4, 5], ((int[])GgufExport.Value(g, "tokenizer.ggml.token_type"))[..7]);
        Assert.Equal(["a b", "Ġ ab"], (string[])GgufExport.Value(g, "tokenizer.ggml.merges"));
        Assert.Equal(4u, GgufExport.Value(g, "tokenizer.ggml.eos_token_id"));
        Assert.Equal(false, GgufExport.Value(g, "tokenizer.ggml.add_bos_token"));
        Assert.Equal("{{ messages }}", GgufExport.Value(g, "tokenizer.chat_template"));
        Assert.Null(g.Get("tokenizer.ggml.scores"));
    }

    public void Dispose() => _d.Dispose();
}
