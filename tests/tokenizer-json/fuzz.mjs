// Differential fuzz cases for the tokenizer.json implementation: seeded random and tricky texts (many scripts and
// planes, astral emoji, combining marks, ZWJ, variation selectors, RTL marks, NUL/control chars, lone CR, CRLF,
// Unicode spaces, digit runs, apostrophe forms, URLs, code, whitespace runs, special tokens glued to text and cut
// short) encoded and decoded by the reference, @huggingface/tokenizers 0.2.0 (pinned in package.json), on the same
// tokenizer files as generate.mjs. Output has generate.mjs's shape; HfJsonFuzzTests compares every case.
//
// Run: cd tests/tokenizer-json && npm ci && node fuzz.mjs [casesPerTokenizer=200] [seed=11] [outFile]
// The committed tests/Mistral.Merge.Tests/Inference/Tokenizers/fuzz-ids.json is `node fuzz.mjs 200 11`: the fixed
// tricky cases first, then 200 random texts per tokenizer. A larger run
// (`node fuzz.mjs 5000 7 /tmp/fuzz.json`) is checked with MISTRAL_MERGE_FUZZ_IDS=/tmp/fuzz.json.
import fs from "node:fs";
import zlib from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";

const here = path.dirname(fileURLToPath(import.meta.url));
const tokDir = path.join(here, "..", "Mistral.Merge.Tests", "Inference", "Tokenizers");
const perTokenizer = Number(process.argv[2] ?? 200);
let seed = Number(process.argv[3] ?? 11);
const outFile = process.argv[4] ?? path.join(tokDir, "fuzz-ids.json");

// mulberry32: small deterministic PRNG so the committed file is reproducible
function rand() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const cp = (lo, hi) => String.fromCodePoint(lo + int(hi - lo + 1));

const ranges = [
  [0x41, 0x5a], [0x61, 0x7a], [0x30, 0x39], [0x21, 0x2f], [0xc0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x3040, 0x30ff],
  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x300, 0x36f], [0x2000, 0x206f], [0x20a0, 0x20cf], [0x2100, 0x27ff],
  [0xfe00, 0xfe0f], [0xff00, 0xffef], [0x1f300, 0x1faff], [0x1d400, 0x1d7ff], [0x20000, 0x2a6df], [0xe0020, 0xe007f],
  [0x10000, 0x1007f], [0x0, 0x1f], [0x7f, 0x9f], [0x1f1e6, 0x1f1ff], [0xe000, 0xe0ff],
];
const spaces = [" ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", " \n", "\u00a0", "\u2003", "\u3000", "\u2009", "\u202f", "\u200b", "\ufeff", "\u0085", "\u2028", "\u000b", "\f"];
const words = ["Hello", "world", "the", "THE", "café", "naïve", "don't", "DON'T", "it's", "IT'S", "I'm", "we'll", "they'd", "you've", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "’s", "'", "''", "x'S", "a'LL", "Ve", "123", "1234567", "3.14", "0x1F", "2024-03-15", "https://example.com/a?b=c&d=e#f", "foo_bar", "fooBar", "self.x", "==", "->", "/**", "*/", "{}", "[]", "()", "...", "!!", "??", "—", "–", "\u200d", "\u200e", "\u200f", "\u202e", "👨‍👩‍👧", "👍🏽", "❤️", "☃︎", "🇯🇵", "e\u0301", "\u0301", "Å", "ﬁ", "Ⅸ", "²", "①", "ǅ", "İ", "ß", "ς", "日本", "中文", "한국어", "Привет", "مرحبا", "שלום", "नमस्ते", "ไทย", "\u0000", "\u0007", "\u001b[0m", "\\n", "\\", "\"", "<", ">", "<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|im_sta", "<|endof", "<|", "|>", "<|reserved_special_token_0|>", "<|fim_prefix|>", "▁", "Ġ", "Ċ", "<0x0A>", "\t\tdef f(x):", "    return x", "  ", "   "];

function randomText() {
  const parts = [];
  const n = 1 + int(12);
  if (rand() < 0.3) parts.push(pick(spaces).repeat(1 + int(3)));
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.35) parts.push(pick(words));
    else if (r < 0.6) { const [lo, hi] = pick(ranges); let s = ""; for (let k = 1 + int(6); k > 0; k--) s += cp(lo, hi); parts.push(s); }
    else if (r < 0.75) parts.push(pick(spaces).repeat(1 + int(4)));
    else if (r < 0.82) parts.push("9".repeat(1 + int(3)) + String(int(1e9)).repeat(1 + int(3)));
    else if (r < 0.9) parts.push(" ".repeat(1 + int(9)) + pick(words));
    else parts.push(pick(words) + pick(words));
    if (rand() < 0.5) parts.push(" ");
  }
  if (rand() < 0.3) parts.push(pick(spaces).repeat(1 + int(5)));
  return parts.join("");
}

// Fixed tricky texts, tried on every tokenizer before the random ones.
const fixed = [
  "\r", "\r\n", "a\rb", "a\r\nb", " ", "  ", "\u00a0", "\u00a0\u00a0x", " \u00a0x", "x  ", "x \n", "\n\n\n", "\t\t\tx",
  "'s", "'S", "’s", "A'S B'Ll C'VE", "don’t", "x's'S", "''s", "1234567890123", "a1b22c333", "١٢٣٤٥", "①②③",
  "<|im_sta", "<|im_start|", "<|im_start|><|im_end|>", "x<|endoftext|>y", " <|endoftext|> ", "<s><s>", "</s></s>x",
  "[INST][/INST]", "<unk>x", "e\u0301\u0301\u0301", "\u200d", "👨‍👩‍👧‍👦", "🏳️‍🌈", "a\u0000b", "\u0000", "\ufeffBOM",
  "\u202eRTL\u202c", "  hello  world  ", "    def f():\n\t\treturn 1\n", "https://x.y/z?a=1&b=2", "ﬁﬂ Ⅻ ²³ ½",
  "İstanbul ǅ ß ẞ", "\u{10FFFD}", "\u{E0001}\u{E0041}", "\u{1D11E}", "𝕏𝕐", "\u3000x\u3000", "x\u2028y\u2029z",
];

const names = ["llama3", "qwen2_5", "gpt2", "llama2"];
const result = { generator: "tests/tokenizer-json/fuzz.mjs", reference: "@huggingface/tokenizers 0.2.0", perTokenizer, tokenizers: {} };
function run(name, jsonText, configText) {
  const tok = new Tokenizer(JSON.parse(jsonText), JSON.parse(configText));
  const out = [];
  // tokenizers.js runs ByteLevel's built-in split regex with ECMAScript \s (which has U+FEFF and lacks U+0085),
  // the Rust tokenizers with Oniguruma's (which has U+0085 and lacks U+FEFF); we follow Rust, so for a ByteLevel
  // pre-tokenizer with use_regex those two characters are left out here (HfJsonRustDeviationTests pins Rust's ids).
  const pre = JSON.stringify(JSON.parse(jsonText).pre_tokenizer ?? {});
  const jsRegexDiffers = /"type":"ByteLevel"[^}]*"use_regex":true/.test(pre);
  const keep = (t) => !(jsRegexDiffers && /[\u0085\ufeff]/.test(t));
  const texts = [...fixed.filter(keep), ...Array.from({ length: perTokenizer }, randomText).filter(keep)];
  texts.forEach((text, i) => {
    const plain = tok.encode(text, { add_special_tokens: false }).ids;
    const special = tok.encode(text, { add_special_tokens: true }).ids;
    const dec = (ids) => (ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
    out.push({ id: i < fixed.filter(keep).length ? `fixed-${i}` : `random-${i - fixed.filter(keep).length}`, text, ids: plain, ids_with_special: special, decoded: dec(plain), decoded_with_special: dec(special) });
  });
  // decode of random id sequences: lone byte tokens (invalid UTF-8), added/special tokens, spaces at the joins
  const vocabSize = tok.model.vocab.length ?? Object.keys(JSON.parse(jsonText).model.vocab).length;
  const added = JSON.parse(jsonText).added_tokens.map((t) => t.id);
  const byteFallback = JSON.stringify(JSON.parse(jsonText).decoder ?? {}).includes('"ByteFallback"');
  for (let i = 0; i < perTokenizer / 4; i++) {
    const ids = Array.from({ length: 1 + int(12) }, () => (rand() < 0.15 && added.length ? pick(added) : rand() < 0.3 ? int(Math.min(vocabSize, 300)) : int(vocabSize)));
    const decoded = tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    // tokenizers.js's ByteFallback decodes a run of byte tokens that is not valid UTF-8 with TextDecoder (one U+FFFD per
    // maximal bad subsequence); the Rust decoder gives one U+FFFD per byte, and we follow Rust (HfJsonRustDeviationTests)
    if (byteFallback && decoded.includes("\ufffd")) continue;
    out.push({ id: `decode-${i}`, text: null, ids, decoded });
  }
  result.tokenizers[name] = out;
}
for (const name of names) {
  const jsonText = zlib.gunzipSync(fs.readFileSync(path.join(tokDir, `${name}.tokenizer.json.gz`))).toString("utf8");
  run(name, jsonText, fs.readFileSync(path.join(tokDir, `${name}.tokenizer_config.json`), "utf8"));
}
const shared = path.join(here, "..", "..", "..", "shared", "fixtures", "mistral-7b-v0.1");
if (fs.existsSync(shared)) run("shared:mistral-7b-v0.1", fs.readFileSync(path.join(shared, "tokenizer.json"), "utf8"), fs.readFileSync(path.join(shared, "tokenizer_config.json"), "utf8"));
fs.writeFileSync(outFile, JSON.stringify(result).replace(/\},\{/g, "},\n{"));
console.log(outFile, Object.entries(result.tokenizers).map(([n, c]) => `${n}:${c.length}`).join(" "));
