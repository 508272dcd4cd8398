// Small hand-written tokenizer.json files, one per group of branches (normalizers, pre-tokenizers, decoders,
// post-processors, added-token options) that the real tokenizers do not all reach. Only options that
// @huggingface/tokenizers implements as tokenizers (Rust) does are used here; the rest (Split behaviours
// other than Isolated/Removed, Metaspace split=true, single_word) are covered by hand-derived xunit tests.
const bytes = [...Array(256).keys()];
const byteChar = (() => {
  const map = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.push(String.fromCharCode(printable ? b : 256 + n++));
  }
  return map;
})();
const letters = "abcdefghijklmnopqrstuvwxyz".split("");
const added = (id, content, special, extra = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special, ...extra });

function spVocab(withBytes) {
  const v = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  if (withBytes) for (const b of bytes) v[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = Object.keys(v).length;
  for (const p of ["\u2581", ...letters, ..."0123456789".split(""), "\u2581t", "he", "\u2581the", "\u2581a", "in", "\u2581in", "er", "\u2581c", "at", "\u2581cat"])
    v[p] = Object.keys(v).length;
  return v;
}
const spMerges = [["\u2581", "t"], ["h", "e"], ["\u2581t", "he"], ["\u2581", "a"], ["i", "n"], ["\u2581", "in"], ["e", "r"], ["\u2581", "c"], ["a", "t"], ["\u2581c", "at"]];

function byteLevelVocab() {
  const v = {};
  for (const c of byteChar) v[c] = Object.keys(v).length;
  for (const p of ["Ġt", "he", "Ġthe", "in", "Ġa", "Ġin", "Ġabc"]) v[p] = Object.keys(v).length;
  v["<|bos|>"] = Object.keys(v).length;
  return v;
}

export const synthetic = {
  // Metaspace (prepend_scheme first, no split), byte fallback with fused unk, TemplateProcessing BOS+EOS, Metaspace decoder, pairs as merges.
  "sp-metaspace-first": {
    json: {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true), added(300, "[INST]", true), added(301, "[/INST]", true)],
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
        pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
      },
      decoder: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
      model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: spVocab(true), merges: spMerges },
    },
    config: { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", tokenizer_class: "PreTrainedTokenizerFast" },
  },
  // Normalizer Sequence (NFD, Lowercase, Prepend, Replace string and regex), no pre-tokenizer, unk without byte
  // fallback, normalized/rstrip and lstrip added tokens, EOS-only template, Replace/ByteFallback/Fuse/Strip decoder.
  "sp-prepend-nfd": {
    json: {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true), added(60, "<tool>", false, { rstrip: true }), added(61, "[B]", true, { lstrip: true })],
      normalizer: { type: "Sequence", normalizers: [
        { type: "NFD" }, { type: "Lowercase" }, { type: "Prepend", prepend: "\u2581" },
        { type: "Replace", pattern: { String: " " }, content: "\u2581" },
        { type: "Replace", pattern: { Regex: "\u2581{2,}" }, content: "\u2581" }] },
      pre_tokenizer: null,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
        pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
      },
      decoder: { type: "Sequence", decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
      model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: spVocab(false), merges: spMerges.map((m) => m.join(" ")) },
    },
    config: { bos_token: "<s>", eos_token: "</s>", tokenizer_class: "PreTrainedTokenizerFast" },
  },
  // Sequence of Digits (individual) and ByteLevel with add_prefix_space and GPT-2's regex; ignore_merges; a
  // special and a non-special lstrip/rstrip added token; TemplateProcessing BOS; ByteLevel decoder.
  "bytelevel-digits": {
    json: {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [added(263, "<|bos|>", true), added(264, "<|x|>", true), added(265, "<|y|>", false, { lstrip: true, rstrip: true, normalized: false })],
      normalizer: null,
      pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true }] },
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|bos|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "<|bos|>": { id: "<|bos|>", ids: [263], tokens: ["<|bos|>"] } },
      },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true,
        vocab: byteLevelVocab(), merges: ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "Ġ in"] },
    },
    config: { bos_token: "<|bos|>", tokenizer_class: "PreTrainedTokenizerFast" },
  },
  // Digits (runs) and Split with Removed behaviour in a Sequence; char-level BPE with unk; no decoder (tokens joined by spaces); no post-processor.
  "digits-split-removed": {
    json: {
      version: "1.0", truncation: null, padding: null, added_tokens: [added(0, "<unk>", true)],
      normalizer: null,
      pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: "\\s+" }, behavior: "Removed", invert: false }, { type: "Digits", individual_digits: false }] },
      post_processor: null, decoder: null,
      model: { type: "BPE", dropout: null, unk_token: "<unk>", fuse_unk: false, byte_fallback: false,
        vocab: Object.fromEntries(["<unk>", ...letters, ..."0123456789".split(""), "12", "123", "th", "the"].map((t, i) => [t, i])),
        merges: ["1 2", "12 3", "t h", "th e"] },
    },
    config: { unk_token: "<unk>", tokenizer_class: "PreTrainedTokenizerFast" },
  },
};

export const syntheticCases = [
  ["empty", ""],
  ["words", "the cat in the hat"],
  ["spaces", " the  in   a "],
  ["upper-digits", "The INN 123 4567 89"],
  ["whitespace", "a\tb\nc\r\nd"],
  ["rstrip-token", "x<tool>   the"],
  ["lstrip-token", "the   [B] in"],
  ["inst", "[INST]the cat[/INST] at"],
  ["specials", "<s>the</s> <unk> in"],
  ["accents", "Ünïcödé Café naïve"],
  ["emoji", "emoji 🎉 ok 👩‍👩‍👧"],
  ["leading", "   leading"],
  ["trailing", "trailing   "],
  ["astral", "𝔘x 𠀀 in"],
  ["digits", "digits 12345 and 1 2 3 x9y"],
  ["bytelevel-tokens", "<|x|>the <|y|> in<|y|>a<|bos|>"],
  ["abc", "abc abcd Ġabc"],
  ["unknown", "#$%^&*"],
];
