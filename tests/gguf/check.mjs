// Independent check of `mistral-merge export-gguf` (not part of the .NET suite; needs Node 20 and `npm ci` here).
//
// For each fixture (stories260k: Llama layout; stories260k-moe4: Mixtral, 4 experts) and each --type, it exports
// the model with the built CLI, then
//   1. parses the file with @huggingface/gguf (metadata + tensor infos: architecture keys, tensor names/types/shapes),
//   2. loads it with node-llama-cpp (prebuilt llama.cpp for linux-x64, CPU) and compares
//      - llama.cpp's greedy continuation of PROMPT with `mistral-merge generate --temperature 0 --json`,
//      - llama.cpp's perplexity over the first PPL_TOKENS tokens of the eval text (BOS + text, one window, from the
//        full next-token distributions of controlledEvaluate) with `mistral-merge perplexity --json`.
// Prints a markdown table; results.md holds the figures of the last run with the versions.
//
// Usage: node check.mjs [path/to/mistral-merge]   (default: ../../src/Mistral.Merge.Cli/bin/Release/net10.0/mistral-merge)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gguf } from "@huggingface/gguf";
import { getLlama } from "node-llama-cpp";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cli = process.argv[2] ?? join(repo, "src/Mistral.Merge.Cli/bin/Release/net10.0/mistral-merge");
const fixtures = resolve(repo, "../shared/fixtures");
const out = join(here, "out");
mkdirSync(out, { recursive: true });

const PROMPT = "Once upon a time";
const NEW_TOKENS = 40;
const PPL_TOKENS = 256;
const textPath = join(out, "ppl.txt");
writeFileSync(textPath, readFileSync(join(fixtures, "eval/tinystories_valid_head.txt"), "utf8"));

const synth = (name, arch) => {
  const dir = join(out, name);
  execFileSync(cli, ["synth", dir, "--arch", arch, "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
    "--vocab", "448", "--dtype", "float32", "--tokenizer", "byte-level", "--seed", "3", "--force", "--quiet"]);
  return dir;
};
// [label, folder]: the two fixtures, and synthesized (random-weight) Mistral and Qwen2 models with the byte-level tokenizer.
const models = [
  ["stories260k", join(fixtures, "stories260k")],
  ["stories260k-moe4", join(fixtures, "stories260k-moe4")],
  ["stories260k-moe4-identity", join(fixtures, "stories260k-moe4-identity")],
  ["synth-mistral", synth("synth-mistral", "mistral")],
  ["synth-qwen2", synth("synth-qwen2", "qwen2")],
];
const types = ["f32", "f16", "bf16", "q8_0", "q4_0"];
const run = (args) => JSON.parse(execFileSync(cli, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const rows = [];
for (const [name, folder] of models) {
  const oursGen = run(["generate", folder, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", String(NEW_TOKENS), "--device", "cpu", "--json", "--quiet"]);
  const oursPpl = run(["perplexity", folder, "--text", textPath, "--ctx", String(PPL_TOKENS), "--max-tokens", String(PPL_TOKENS), "--device", "cpu", "--json", "--quiet"]);
  const variants = types.map((type) => [type, []]);
  if (name === "stories260k") variants.push(["f32", ["--out-shard-size", "300KB"]]);
  for (const [type, extra] of variants) {
    const file = join(out, `${name}-${type}${extra.length ? "-split" : ""}.gguf`);
    const exported = run(["export-gguf", folder, file, "--type", type, "--force", "--json", "--quiet", ...extra]);
    const first = exported.files[0];

    // 1. @huggingface/gguf
    const { metadata, tensorInfos } = await gguf(first, { allowLocalFile: true });
    const arch = metadata["general.architecture"];
    const tensorTypes = {};
    const typeNames = { 0: "f32", 1: "f16", 2: "q4_0", 8: "q8_0", 30: "bf16" };
    for (const t of tensorInfos) tensorTypes[typeNames[t.dtype] ?? t.dtype] = (tensorTypes[typeNames[t.dtype] ?? t.dtype] ?? 0) + 1;
    const exps = tensorInfos.find((t) => t.name === "blk.0.ffn_gate_exps.weight");

    // 2. llama.cpp
    const model = await llama.loadModel({ modelPath: first });
    const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: 2 });
    const seq = context.getSequence();
    const promptIds = [model.tokens.bos, ...model.tokenize(PROMPT)];
    const genIds = [];
    for await (const t of seq.evaluate(promptIds, { temperature: 0 })) {
      if (t === model.tokens.eos || genIds.length >= NEW_TOKENS) break;
      genIds.push(t);
    }
    seq.clearHistory?.();
    await seq.eraseContextTokenRanges([{ start: 0, end: seq.nextTokenIndex }]);
    const textIds = [model.tokens.bos, ...model.tokenize(readFileSync(textPath, "utf8"))].slice(0, PPL_TOKENS);
    const evals = await seq.controlledEvaluate(textIds.map((t, i) => (i < textIds.length - 1 ? [t, { generateNext: { probabilities: true } }] : t)));
    let nll = 0;
    for (let i = 0; i < textIds.length - 1; i++) nll -= Math.log(evals[i].next.probabilities.get(textIds[i + 1]));
    const ppl = Math.exp(nll / (textIds.length - 1));
    await context.dispose();
    await model.dispose();

    const firstDiff = genIds.findIndex((t, i) => t !== oursGen.ids[i]);
    const greedy = firstDiff < 0 && genIds.length === oursGen.ids.length ? `same ${genIds.length} tokens` : `first differs at token ${firstDiff < 0 ? genIds.length : firstDiff}`;
    rows.push({
      model: name, type: type + (extra.length ? ` (${exported.files.length} split files)` : ""), arch,
      tensors: `${tensorInfos.length}${extra.length ? " in file 1" : ""}: ${Object.entries(tensorTypes).map(([k, v]) => `${v} ${k}`).join(", ")}`,
      exps: exps ? exps.shape.map(Number).join("×") : "",
      prompt: JSON.stringify(promptIds) === JSON.stringify(oursGen.prompt_ids) ? "same" : "differs",
      greedy, llamaPpl: ppl.toFixed(4), oursPpl: oursPpl.perplexity.toFixed(4), tokens: textIds.length,
    });
    console.error(JSON.stringify(rows.at(-1)));
  }
}
const header = ["model", "--type", "general.architecture", "tensors (@huggingface/gguf)", "blk.0.ffn_gate_exps", "prompt ids", `greedy ${NEW_TOKENS} tokens vs ours`, "PPL llama.cpp", "PPL ours (unquantized)", "tokens"];
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => " --- ").join("|")}|`);
for (const r of rows) console.log(`| ${[r.model, r.type, r.arch, r.tensors, r.exps, r.prompt, r.greedy, r.llamaPpl, r.oursPpl, r.tokens].join(" | ")} |`);
