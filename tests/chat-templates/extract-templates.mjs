// Copies real chat templates of popular models, byte for byte, out of two files of the huggingface.js repository
// (https://github.com/huggingface/huggingface.js, commit fe42e68017ffc76d09922ea8f9b38a6964345710):
//   packages/jinja/test/e2e.test.js — templates named by Hub model id (TEST_CUSTOM_TEMPLATES) or model_type
//     (TEST_DEFAULT_TEMPLATES, transformers' former class defaults);
//   packages/ollama-utils/src/chat-template-automap.ts — the chat template stored in the GGUF of an ollama library
//     model (the `gguf` field, which llama.cpp's converter copies from the model's tokenizer_config.json).
// Writes tests/Mistral.Merge.Tests/Jinja/templates/<name>.jinja and templates/provenance.json (name → source, key,
// bos/eos as the model's tokenizer_config.json gives them, sha256). Run once; the files are committed:
//   git -C <huggingface.js> show <commit>:packages/jinja/test/e2e.test.js > /tmp/e2e.js
//   git -C <huggingface.js> show <commit>:packages/ollama-utils/src/chat-template-automap.ts > /tmp/automap.ts
//   node extract-templates.mjs /tmp/e2e.js /tmp/automap.ts
import { readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";

const [e2ePath, automapPath] = process.argv.slice(2);
const commit = "fe42e68017ffc76d09922ea8f9b38a6964345710";
const root = new URL("../../", import.meta.url).pathname;
const outDir = `${root}tests/Mistral.Merge.Tests/Jinja/templates`;

// The test file's constants are plain object literals: evaluate them without vitest.
const e2eSource = readFileSync(e2ePath, "utf8").replace(/^import .*$/gm, "").replace(/^describe\([\s\S]*$/m, "");
const e2e = new Function(`${e2eSource}; return { TEST_DEFAULT_TEMPLATES, TEST_CUSTOM_TEMPLATES };`)();
const automapSource = readFileSync(automapPath, "utf8")
  .replace(/^import .*$/gm, "")
  .replace("export const OLLAMA_CHAT_TEMPLATE_MAPPING: OllamaChatTemplateMapEntry[] =", "return");
const automap = new Function(automapSource)();

const e2eFile = "packages/jinja/test/e2e.test.js";
const ollamaFile = "packages/ollama-utils/src/chat-template-automap.ts";
const mistral = { bos_token: "<s>", eos_token: "</s>" };
// name → [file, key, template, tokens]; tokens are the model's bos_token/eos_token (absent when the model has none).
const picks = {
  "mistral-7b-instruct-v0.1": [e2eFile, "TheBloke/Mistral-7B-Instruct-v0.1-GPTQ", mistral],
  "mixtral-8x7b-instruct-v0.1": [e2eFile, "mistralai/Mixtral-8x7B-Instruct-v0.1", mistral],
  "mistral-7b-instruct-v0.3": [e2eFile, "mistralai/Mistral-7B-Instruct-v0.3 (JSON Schema)", mistral],
  "mistral-nemo-instruct-2407": [e2eFile, "mistralai/Mistral-Nemo-Instruct-2407", mistral],
  "llama-2-chat": [ollamaFile, "library/llama2:7b", mistral],
  "llama-2-default": [e2eFile, "llama", mistral],
  "llama-3-8b-instruct": [ollamaFile, "library/llama3:8b", { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" }],
  "llama-3.1-8b-instruct": [e2eFile, "meta-llama/Llama-3.1-8B-Instruct", { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" }],
  "dolphin-2.5-mixtral-8x7b": [e2eFile, "cognitivecomputations/dolphin-2.5-mixtral-8x7b", { bos_token: "<s>", eos_token: "<|im_end|>" }],
  "chatml-base": [e2eFile, "_base", {}],
  "zephyr-7b-beta": [e2eFile, "HuggingFaceH4/zephyr-7b-beta (add_generation_prompt=true)", mistral],
  "qwen2.5-7b-instruct": [e2eFile, "Qwen/Qwen2.5-7B-Instruct", { eos_token: "<|im_end|>" }],
  "qwen3-0.6b": [e2eFile, "Qwen/Qwen3-0.6B", { eos_token: "<|im_end|>" }],
  "gemma-2-2b-it": [ollamaFile, "library/gemma2:2b", { bos_token: "<bos>", eos_token: "<eos>" }],
  "phi-3-mini": [ollamaFile, "library/phi3:3.8b", { bos_token: "<s>", eos_token: "<|endoftext|>" }],
  "phi-3.5-mini": [ollamaFile, "library/phi3.5:3.8b", { bos_token: "<s>", eos_token: "<|endoftext|>" }],
  "deepseek-r1": [e2eFile, "deepseek-ai/DeepSeek-R1", { bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>" }],
  "smollm3-3b": [e2eFile, "HuggingFaceTB/SmolLM3-3B", { eos_token: "<|im_end|>" }],
  "hermes-2-pro-llama-3-8b": [e2eFile, "NousResearch/Hermes-2-Pro-Llama-3-8B (JSON Schema)", { bos_token: "<|begin_of_text|>", eos_token: "<|im_end|>" }],
};
const provenance = {
  source: `https://github.com/huggingface/huggingface.js at commit ${commit}`,
  extractor: "tests/chat-templates/extract-templates.mjs",
  templates: {},
};
for (const [name, [file, key, tokens]] of Object.entries(picks)) {
  let text;
  if (file === e2eFile) text = (e2e.TEST_CUSTOM_TEMPLATES[key] ?? e2e.TEST_DEFAULT_TEMPLATES[key])?.chat_template;
  else text = automap.find((e) => e.model === key)?.gguf;
  if (typeof text !== "string") throw new Error(`no template for ${key}`);
  writeFileSync(`${outDir}/${name}.jinja`, text);
  provenance.templates[name] = { file, key, ...tokens, sha256: createHash("sha256").update(text, "utf8").digest("hex") };
}
writeFileSync(`${outDir}/provenance.json`, JSON.stringify(provenance, null, 2) + "\n");
console.log(Object.keys(picks).length, "templates");
