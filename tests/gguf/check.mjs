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

const models = [["stories260k", "llama"], ["stories260k-moe4", "mixtral"]];
const types = ["f32", "f16", "bf16", "q8_0", "q4_0"];
const run = (args) => JSON.parse(execFileSync(cli, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const rows = [];
for (const [name, kind] of models) {
  const folder = join(fixtures, name);
  const oursGen = run(["generate", folder, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", String(NEW_TOKENS), "--device", "cpu", "--json", "--quiet"]);
  const oursPpl = run(["perplexity", folder, "--text", textPath, "--ctx", String(PPL_TOKENS), "--max-tokens", String(PPL_TOKENS), "--device", "cpu", "--json", "--quiet"]);
  for (const type of types) {
    const file = join(out, `${name}-${type}.gguf`);
    run(["export-gguf", folder, file, "--type", type, "--force", "--json", "--quiet"]);

    // 1. @huggingface/gguf
    const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
    const arch = metadata["general.architecture"];
    const tensorTypes = {};
    for (const t of tensorInfos) tensorTypes[t.dtype] = (tensorTypes[t.dtype] ?? 0) + 1;
    const exps = tensorInfos.find((t) => t.name === "blk.0.ffn_gate_exps.weight");

    // 2. llama.cpp
    const model = await llama.loadModel({ modelPath: file });
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

    rows.push({
      model: name, type, arch, tensors: tensorInfos.length, tensorTypes: JSON.stringify(tensorTypes),
      expsShape: exps ? exps.shape.map(Number).join("×") : "",
      promptSame: JSON.stringify(promptIds) === JSON.stringify(oursGen.prompt_ids),
      greedySame: JSON.stringify(genIds) === JSON.stringify(oursGen.ids.slice(0, genIds.length)) && genIds.length === oursGen.ids.length,
      firstDiff: genIds.findIndex((t, i) => t !== oursGen.ids[i]),
      text: model ? JSON.stringify(genIds.length ? "" : "") : "",
      llamaPpl: ppl, oursPpl: oursPpl.perplexity ?? oursPpl.ppl, tokens: textIds.length,
      llamaText: genIds,
    });
    console.error(`${name} ${type}: arch=${arch} tensors=${tensorInfos.length} greedy ${rows.at(-1).greedySame ? "same" : "differs at " + rows.at(-1).firstDiff} ppl llama.cpp ${ppl.toFixed(4)} ours ${rows.at(-1).oursPpl}`);
  }
}
console.log(JSON.stringify(rows, null, 1));
