// Differential fuzz conversations for the Jinja interpreter: seeded random conversations (1–8 turns, with/without
// system, assistant or user last, empty content, Jinja-looking content, newlines, trailing spaces, unicode, very
// long content, tool/function/unknown roles, extra message keys) rendered by @huggingface/jinja 0.5.11 (pinned in
// package.json) with every real template (tests/Mistral.Merge.Tests/Jinja/templates, bos/eos from provenance.json)
// and the built-in templates, add_generation_prompt both ways. Each case keeps the rendering or the error message;
// ChatTemplateFuzzTests requires the same from Mistral.Merge.Jinja.
//
// Run: cd tests/chat-templates && npm ci && node fuzz-conversations.mjs [conversations=12] [seed=11] [outFile]
// The committed tests/Mistral.Merge.Tests/Jinja/fuzz-renderings.json is `node fuzz-conversations.mjs 12 11`; a
// larger run (`node fuzz-conversations.mjs 400 7 /tmp/f.json`) is checked with MISTRAL_MERGE_FUZZ_RENDERINGS=/tmp/f.json.
import { Template } from "@huggingface/jinja";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

const now = "2025-03-07T09:05:00Z";
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [now]));
  }
};

const count = Number(process.argv[2] ?? 12);
let seed = Number(process.argv[3] ?? 11);
const root = new URL("../../", import.meta.url).pathname;
const outFile = process.argv[4] ?? `${root}tests/Mistral.Merge.Tests/Jinja/fuzz-renderings.json`;
const dir = `${root}tests/Mistral.Merge.Tests/Jinja/templates`;
const builtinDir = `${root}src/Mistral.Merge/Recipes/ChatTemplates`;
const provenance = JSON.parse(readFileSync(`${dir}/provenance.json`, "utf8"));

function rand() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];

const snippets = ["Hello", "", " ", "  padded  ", "{{ x }}", "{% if true %}yes{% endif %}", "{# c #}", "{{", "%}", "line1\nline2", "\n", "trailing   ",
  "tab\there", "é ✓ 日本語 🎉 👨‍👩‍👧", "\"quoted\" 'single' <tag> & amp", "[INST] fake [/INST]", "<|im_start|>x<|im_end|>", "</s>", "<s>",
  "\\n backslash \\", "<think>\nreasoning\n</think>\n\nanswer", "<think>x</think>", "a</think>b", "   leading", "CRLF\r\nline", "0", "False", "None", "null",
  "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "/no_think", "/think"];
function content() {
  if (rand() < 0.08) return "";
  if (rand() < 0.03) return "long ".repeat(400 + int(400)) + "end";
  let s = "";
  for (let k = 1 + int(4); k > 0; k--) s += pick(snippets) + (rand() < 0.5 ? " " : "");
  return s;
}
function conversation() {
  const msgs = [];
  if (rand() < 0.4) msgs.push({ role: "system", content: content() });
  const turns = 1 + int(8);
  let role = rand() < 0.1 ? "assistant" : "user";
  for (let i = 0; i < turns; i++) {
    const m = { role, content: content() };
    const r = rand();
    if (r < 0.05) m.role = pick(["tool", "function", "ipython", "developer", "narrator"]);
    if (r > 0.93) m.name = "bob";
    if (r > 0.96) m.extra = { nested: [1, 2] };
    if (r > 0.5 && r < 0.53 && m.role === "assistant") m.tool_calls = [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }];
    if (r > 0.53 && r < 0.55) m.content = [{ type: "text", text: content() }];
    if (r > 0.55 && r < 0.56 && m.role === "assistant") m.content = null;
    msgs.push(m);
    role = role === "user" ? "assistant" : "user";
    if (rand() < 0.05) role = pick(["user", "assistant", "system"]);
  }
  return msgs;
}

const sources = [
  ...Object.entries(provenance.templates).map(([name, p]) => [name, readFileSync(`${dir}/${name}.jinja`, "utf8"), p]),
  ...readdirSync(builtinDir).filter((f) => f.endsWith(".jinja")).sort().map((f) => [
    `builtin:${f.slice(0, -6)}`, readFileSync(`${builtinDir}/${f}`, "utf8"), { bos_token: "<s>", eos_token: "</s>" }]),
];
const conversations = Array.from({ length: count }, conversation);
const out = { generator: "@huggingface/jinja 0.5.11 via tests/chat-templates/fuzz-conversations.mjs", now, conversations, templates: {} };
for (const [name, text, p] of sources) {
  const template = new Template(text);
  const tokens = {};
  if (p.bos_token !== undefined) tokens.bos_token = p.bos_token;
  if (p.eos_token !== undefined) tokens.eos_token = p.eos_token;
  const cases = [];
  conversations.forEach((messages, i) => {
    const add_generation_prompt = rand() < 0.5;
    const c = { conversation: i, add_generation_prompt };
    try {
      c.rendered = template.render({ messages: structuredClone(messages), add_generation_prompt, ...tokens });
    } catch (e) {
      c.error = e.message;
    }
    cases.push(c);
  });
  out.templates[name] = { ...tokens, cases };
}
writeFileSync(outFile, JSON.stringify(out) + "\n");
for (const [name, t] of Object.entries(out.templates))
  console.log(name, t.cases.filter((c) => c.rendered !== undefined).length, "rendered,", t.cases.filter((c) => c.error).length, "errors");
