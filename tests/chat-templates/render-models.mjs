// Renders small one-feature templates (features.mjs) and the real model chat templates (tests/Mistral.Merge.Tests/Jinja/templates/*.jinja, see provenance.json and
// extract-templates.mjs) and the built-in recipe templates with @huggingface/jinja 0.5.11, the Jinja implementation
// transformers.js uses, on several conversations (with and without a system message, add_generation_prompt true and
// false, bos_token/eos_token as the model's tokenizer_config.json gives them, absent when it has none), and writes
// every rendering, or the error message where the template raises, to
// tests/Mistral.Merge.Tests/Jinja/model-renderings.json. The .NET suite requires byte-identical output from
// Mistral.Merge.Jinja. Regenerate:
//   cd tests/chat-templates && npm install && node render-models.mjs
import { Template } from "@huggingface/jinja";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { context, features } from "./features.mjs";

// strftime_now reads the clock: pin it (UTC) so the renderings are reproducible; the .NET tests pass the same instant.
const now = "2025-03-07T09:05:00Z";
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [now]));
  }
};

const root = new URL("../../", import.meta.url).pathname;
const dir = `${root}tests/Mistral.Merge.Tests/Jinja/templates`;
const builtinDir = `${root}src/Mistral.Merge/Recipes/ChatTemplates`;
const provenance = JSON.parse(readFileSync(`${dir}/provenance.json`, "utf8"));

const system = { role: "system", content: "You are a helpful assistant. Answer in one line." };
const conversations = {
  "user": [{ role: "user", content: "Hello, how are you?" }],
  "system-user": [system, { role: "user", content: "What is 2+2?" }],
  "multi-turn": [
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "  Hello there.  " },
    { role: "user", content: "Name a colour, \"quoted\", with é and ✓.\nThen stop." },
  ],
  "system-multi-turn": [
    system,
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "Hello." },
    { role: "user", content: "Tell me a {joke} about <tags> & 'quotes'." },
  ],
  "assistant-first": [{ role: "assistant", content: "I start." }, { role: "user", content: "Fine." }],
};

const sha = (text) => createHash("sha256").update(text, "utf8").digest("hex");
const out = {
  generator: "@huggingface/jinja 0.5.11 via tests/chat-templates/render-models.mjs",
  now,
  conversations,
  templates: {},
};
const sources = [
  ...Object.entries(provenance.templates).map(([name, p]) => [name, readFileSync(`${dir}/${name}.jinja`, "utf8"), p]),
  ...readdirSync(builtinDir).filter((f) => f.endsWith(".jinja")).sort().map((f) => [
    `builtin:${f.slice(0, -6)}`, readFileSync(`${builtinDir}/${f}`, "utf8"), { bos_token: "<s>", eos_token: "</s>" }]),
];
for (const [name, text, p] of sources) {
  if (p.sha256 && p.sha256 !== sha(text)) throw new Error(`${name}: template changed since extraction`);
  const template = new Template(text);
  const tokens = {};
  if (p.bos_token !== undefined) tokens.bos_token = p.bos_token;
  if (p.eos_token !== undefined) tokens.eos_token = p.eos_token;
  const cases = [];
  for (const [conversation, messages] of Object.entries(conversations))
    for (const add_generation_prompt of [true, false]) {
      const c = { conversation, add_generation_prompt };
      try {
        c.rendered = template.render({ messages, add_generation_prompt, ...tokens });
      } catch (e) {
        c.error = e.message;
      }
      cases.push(c);
    }
  out.templates[name] = { sha256: sha(text), ...tokens, cases };
}
out.features = { context, cases: {} };
for (const [name, text] of Object.entries(features)) {
  const c = { template: text };
  try {
    c.rendered = new Template(text).render(context);
  } catch (e) {
    c.error = e.message;
  }
  out.features.cases[name] = c;
}
writeFileSync(`${root}tests/Mistral.Merge.Tests/Jinja/model-renderings.json`, JSON.stringify(out, null, 2) + "\n");
for (const [name, t] of Object.entries(out.templates))
  console.log(name, t.cases.filter((c) => c.rendered !== undefined).length, "rendered,", t.cases.filter((c) => c.error).length, "errors");
for (const [name, c] of Object.entries(out.features.cases)) console.log(name, JSON.stringify(c.rendered ?? c.error));
