// Renders the built-in chat templates (src/Mistral.Merge/Recipes/ChatTemplates/*.jinja) with an independent Jinja
// implementation, @huggingface/jinja (the one transformers.js uses), and writes the renderings with the sha256 of
// each template to tests/Mistral.Merge.Tests/Recipes/chat-template-renderings.json. The .NET suite checks that the
// hashes match the shipped templates (so the renderings stay those of the shipped text) and the rendered strings
// against the formats' conventions. Regenerate:
//   cd tests/chat-templates && npm install && node render.mjs
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";

const root = new URL("../../", import.meta.url).pathname;
const dir = `${root}src/Mistral.Merge/Recipes/ChatTemplates`;
const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi!" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "Name a colour." },
];
const out = { generator: "@huggingface/jinja 0.5.11 via tests/chat-templates/render.mjs", messages, templates: {} };
for (const name of ["alpaca", "chatml", "exaone", "llama3", "mistral"]) {
  const text = readFileSync(`${dir}/${name}.jinja`, "utf8");
  const t = new Template(text);
  out.templates[name] = {
    sha256: createHash("sha256").update(text, "utf8").digest("hex"),
    rendered: t.render({ messages, add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" }),
  };
}
writeFileSync(`${root}tests/Mistral.Merge.Tests/Recipes/chat-template-renderings.json`, JSON.stringify(out, null, 2) + "\n");
console.log(JSON.stringify(out.templates, null, 2));
