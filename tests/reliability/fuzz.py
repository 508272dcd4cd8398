#!/usr/bin/env python3
"""Mutation fuzzing of mistral-merge's inputs (not part of `dotnet test`; Python 3 standard library only).

Synthesizes a tiny model (and GGUF exports of it), then runs seeded random mutations of
  model   — the safetensors header (dtypes, shapes, offsets, names, raw bytes, the length prefix), truncated
            or non-finite data, config.json values and keys, tokenizer.model bytes:  inspect --check, perplexity, generate
  gguf    — bytes of the metadata and tensor table, big counts and lengths, bad type ids, truncation, data:
            inspect --check, perplexity, generate
  sharded — a three-shard copy of the model: model.safetensors.index.json's values, keys and file names changed (also
            to "../", absolute, missing and duplicate shards), or a shard removed or truncated:  inspect --check, perplexity
  template — the model's chat template (tokenizer_config.json), one of the 19 real templates of the Jinja tests with
            random spans deleted, repeated or swapped and Jinja fragments inserted (half the cases: only well-formed
            statements and expressions inserted after a tag, so it still parses and the runtime is exercised):  generate --messages (three plain turns, or
            a system message and a tool call)
  tokenizer — a tokenizer.json (the four synthetic ones of the tokenizer tests) with values, keys and types changed,
            in place of tokenizer.model:  tokenize, perplexity
  lora    — a PEFT adapter of the model (up_proj and o_proj of layer 0, a saved lm_head) with adapter_config.json's
            values and keys changed, or its safetensors mutated as the model's are:  merge of MODEL+ADAPTER
  moe     — a synthesized 4-expert Mixtral: moe_to_dense (five strategies) and moe_prune (drop, group) recipes, and
            mergekit-moe configs over the dense models (gate modes hidden, cheap_embed, random), values and keys changed:
            merge, moe-build
  recipe  — values, keys and methods of mergekit recipes (written as JSON, which is YAML):  merge (each of the
            ten templates — linear, slerp, ties, dare_ties, task_arithmetic, passthrough, della, model_stock, karcher,
            nearswap — must first merge as written)
and checks every run the way tests/reliability/inputs.sh does: exit 0, 1 or 2; a failure says why in exactly one
line starting "error:" (a recipe may list its problems above it); never "internal error", an exception or a stack
trace; no run longer than the time limit; a failed merge leaves neither OUT nor a partial folder beside it.

Usage: tests/reliability/fuzz.py [--cases N] [--seed S] [--only model,gguf,sharded,template,tokenizer,lora,moe,recipe] [--keep]
Prints a table (target | runs | ok | failures | exit codes) and each failure with its reproducer (the work folder,
with the failing inputs, is then kept); exits 1 on any failure.
MM=path/to/mistral-merge overrides the binary (default: the Release build, built first).
"""
import argparse, copy, json, os, random, shutil, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 60
WEIRD = [0, -1, 1, 2, 10**30, -(2**63), 2**64, 1e300, -1e300, 0.5, "x", "", None, [], {}, True, [0, 1], [[1]],
         {"filter": "mlp"}, "0.5", [0.1] * 40, [{"value": 0.3}], "NaN", ".inf"]


def weird(rng, more=()):
    """A copy of a hostile JSON value (a copy, so that no two places share one list and no mutation makes a cycle)."""
    return copy.deepcopy(rng.choice(WEIRD + list(more)))


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class Checker:
    def __init__(self, mm, log):
        self.mm, self.log = mm, log
        self.rows = {}
        self.exits = {}  # target -> {exit code: count}

    def case(self, target, case, commands, inputs, keep, note=""):
        """Runs the commands of one mutated input; the input is removed afterwards unless a run failed (or keep)."""
        failures = len(self.log)
        for args in commands:
            self.run(target, case, args, note=note)
        if not keep and len(self.log) == failures:
            discard(inputs)

    def run(self, target, case, args, out=None, note="", must_pass=False):
        """Runs one command and records whether it behaved; returns the process (None on a hang)."""
        runs, ok, bad = self.rows.get(target, (0, 0, 0))
        problem, p = None, None
        try:
            p = sh(self.mm + args, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            problem = f"no exit within {TIMEOUT} s"
        if p is not None:
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            errors = [l for l in lines if l.startswith("error:")]
            if must_pass and p.returncode != 0:
                problem = f"exit {p.returncode}, want 0"
            elif p.returncode not in (0, 1, 2):
                problem = f"exit {p.returncode}"
            elif "internal error" in p.stderr or "Unhandled" in p.stderr or any(l.lstrip().startswith("at ") for l in lines):
                problem = "internal error / stack trace"
            elif p.returncode != 0 and len(errors) != 1:
                problem = f"exit {p.returncode} with {len(errors)} 'error:' lines"
            elif out is not None:
                parent, name = os.path.dirname(out), os.path.basename(out)
                partial = [f for f in os.listdir(parent) if f.startswith("." + name + ".")]
                if partial:
                    problem = f"left {partial} beside OUT"
                elif p.returncode != 0 and os.path.exists(out):
                    problem = "failed but OUT exists"
                elif p.returncode == 0 and not os.path.exists(os.path.join(out, "config.json")):
                    problem = "exit 0 but OUT has no config.json"
        if p is not None:
            codes = self.exits.setdefault(target, {})
            codes[p.returncode] = codes.get(p.returncode, 0) + 1
        if problem:
            tail = "\n    ".join((p.stderr if p else "").splitlines()[-6:])
            self.log.append(f"[{target} case {case}] {problem}: mistral-merge {' '.join(args)} {note}\n    {tail}")
        self.rows[target] = (runs + 1, ok + (problem is None), bad + (problem is not None))
        return p


def discard(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data, raw=None):
    h = raw if raw is not None else json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def mutate_model(rng, d):
    """One random change to the model folder d; returns its kind."""
    try:
        read_st(os.path.join(d, "model.safetensors"))
        kind = rng.choice(["safetensors"] * 6 + ["config", "config", "tokenizer"])
    except Exception:  # an earlier change already broke the header
        kind = rng.choice(["config", "tokenizer"])
    if kind == "safetensors":
        return mutate_safetensors(rng, os.path.join(d, "model.safetensors"))
    if kind == "config":
        cp = os.path.join(d, "config.json")
        c = json.load(open(cp))
        k = rng.choice(list(c))
        if rng.random() < .2:
            c.pop(k)
        else:
            c[k] = weird(rng, ([c[k] * 2, c[k] + 1] if isinstance(c[k], int) and not isinstance(c[k], bool) else []))
        json.dump(c, open(cp, "w"))
        return kind
    tp = os.path.join(d, "tokenizer.model")
    b = bytearray(open(tp, "rb").read())
    if rng.random() < .5:
        b = b[:rng.randrange(len(b))]
    else:
        for _ in range(rng.randrange(1, 10)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    open(tp, "wb").write(bytes(b))
    return kind


def mutate_safetensors(rng, st):
    """One random change to a well-formed safetensors file; returns its kind."""
    hdr, data = read_st(st)
    kind = rng.choice(["field", "drop", "truncate", "header-bytes", "length", "nonfinite"])
    names = [k for k in hdr if k != "__metadata__"]
    if kind == "field":
        t = hdr[rng.choice(names)]
        f = rng.choice(["dtype", "shape", "data_offsets"])
        if f == "dtype":
            t[f] = rng.choice(["F32", "F16", "BF16", "I8", "U8", "F64", "I64", "BOOL", "F8_E4M3", "Q", "", None, 5])
        elif f == "shape":
            sh = list(t["shape"])
            if sh and rng.random() < .7:
                sh[rng.randrange(len(sh))] = weird(rng, [sh[0] * 2, sh[0] + 1])
            else:
                sh = rng.choice([[], [0], [1, 1, 1, 1, 1], None, "x", [2**40, 2**40]])
            t[f] = sh
        else:
            o = list(t["data_offsets"])
            o[rng.randrange(2)] = weird(rng, [o[0] + 2, o[1] - 2])
            t[f] = o
        write_st(st, hdr, data)
    elif kind == "drop":
        v = hdr.pop(rng.choice(names))
        if rng.random() < .5:
            hdr[rng.choice(names) + rng.choice(["x", ".weight", "_"])] = v
        write_st(st, hdr, data)
    elif kind == "truncate":
        write_st(st, hdr, data[:rng.randrange(len(data))])
    elif kind == "header-bytes":
        h = bytearray(json.dumps(hdr).encode())
        for _ in range(rng.randrange(1, 5)):
            h[rng.randrange(len(h))] = rng.randrange(256)
        write_st(st, None, data, bytes(h))
    elif kind == "length":
        b = open(st, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        open(st, "wb").write(struct.pack("<Q", rng.choice([0, 1, 7, len(b), 2**63, 2**64 - 1, n + rng.randrange(-20, 20)])) + b[8:])
    else:
        b = bytearray(data)
        for _ in range(50):
            b[rng.randrange(len(b))] = 0xFF
        write_st(st, hdr, bytes(b))
    return kind


def mutate_gguf(rng, b):
    b = bytearray(b)
    kind = rng.choice(["head-bytes", "truncate", "u64", "u32", "data"])
    head = min(len(b), 24000)
    if kind == "head-bytes":
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(head)] = rng.randrange(256)
    elif kind == "truncate":
        b = b[:rng.randrange(len(b))]
    elif kind == "u64":
        o = rng.randrange(8, head - 8)
        b[o:o + 8] = struct.pack("<Q", rng.choice([2**63, 2**64 - 1, 2**32, 2**31 - 1, 0, 1 << 40]))
    elif kind == "u32":
        o = rng.randrange(8, head - 4)
        b[o:o + 4] = struct.pack("<I", rng.choice([0, 1, 9, 12, 13, 30, 2**31, 2**32 - 1]))
    else:
        for _ in range(200):
            b[rng.randrange(len(b) // 5, len(b))] = 0xFF
    return kind, bytes(b)


FRAGMENTS = ["{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", "|", ".", ",", "'", '"', "~", " + ", " * ", " if ", " else ",
             "{% for x in messages %}", "{% endfor %}", "{% if true %}", "{% endif %}", "{% set ns = namespace(a=1) %}", "{{ ns.a }}",
             "{% macro m(a) %}{{ a }}{{ m(a) }}{% endmacro %}", "{{ m(1) }}", "{{ range(10**7) }}", "{{ messages[999] }}",
             "{{ messages|tojson(indent=2) }}", "{{ raise_exception('x') }}", "{{ 'a'|replace('', 'bb') }}", "{{ x.y.z }}",
             "{% break %}", "{% continue %}", "{{ loop.index }}", "{% filter upper %}", "{% endfilter %}", "{{ (1,2)[5:1:-1] }}",
             "{% call m(1) %}x{% endcall %}", "{{ strftime_now('%Y') }}", "{{ 1/0 }}", "{{ -1 % 0 }}", "{{ '%s'|format(1,2,3) }}"]


WELL_FORMED = [f for f in FRAGMENTS if f.startswith("{{") and f.endswith("}}") or f.startswith("{% ") and "end" in f]
WELL_FORMED += ["{% for x in messages %}{{ x.content[::-1] }}{% endfor %}", "{% if messages|length > 1 %}{{ messages[-1].role|upper }}{% endif %}",
                "{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s ~ m.role %}{% endfor %}{{ ns.s }}",
                "{{ messages|map(attribute='role')|join(',') }}", "{{ messages|selectattr('role', 'equalto', 'tool')|list|length }}",
                "{{ (messages|last).content|default('none')|trim }}", "{{ {'a': [1, 2]}|tojson }}", "{{ messages[0]['tool_calls'][0]['function']['arguments']|tojson }}"]


def mutate_template(rng, text):
    if rng.random() < .5:  # runtime paths: well-formed pieces inserted after a tag, so the template still parses
        ends = [m + 2 for m in range(len(text) - 1) if text[m:m + 2] in ("%}", "}}")] or [len(text)]
        for _ in range(rng.randrange(1, 3)):
            k = rng.choice(ends)
            text = text[:k] + rng.choice(WELL_FORMED) + text[k:]
        return text
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(4)
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        j = min(j, i + 200)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = text[:j] + text[i:j] * rng.randrange(1, 4) + text[j:]
        elif kind == 2:
            k = rng.randrange(len(text) + 1)
            text = text[:i] + text[k:k + (j - i)] + text[j:]
        else:
            text = text[:i] + rng.choice(FRAGMENTS) + text[i:]
    return text


def write_adapter(d, rng):
    """A PEFT LoRA adapter for the fuzzer's model (hidden 64, intermediate 128, vocab 448): r = 2."""
    os.makedirs(d, exist_ok=True)
    json.dump({"r": 2, "lora_alpha": 4, "target_modules": ["up_proj", "o_proj"], "modules_to_save": ["lm_head"]},
              open(os.path.join(d, "adapter_config.json"), "w"))
    p = "base_model.model.model.layers.0."
    shapes = {p + "mlp.up_proj.lora_A.weight": [2, 64], p + "mlp.up_proj.lora_B.weight": [128, 2],
              p + "self_attn.o_proj.lora_A.weight": [2, 64], p + "self_attn.o_proj.lora_B.weight": [64, 2],
              "base_model.model.lm_head.weight": [448, 64]}
    header, data = {}, b""
    for name, shape in shapes.items():
        n = shape[0] * shape[1]
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += struct.pack(f"<{n}f", *(rng.uniform(-0.1, 0.1) for _ in range(n)))
    write_st(os.path.join(d, "adapter_model.safetensors"), header, data)


def mutate_adapter(rng, d):
    if rng.random() < .5:
        cp = os.path.join(d, "adapter_config.json")
        config = mutate_recipe(rng, json.load(open(cp)))
        open(cp, "w").write(json.dumps(config, allow_nan=True))
        return "adapter_config.json"
    return "adapter_model.safetensors " + mutate_safetensors(rng, os.path.join(d, "adapter_model.safetensors"))


def recipe_cases(chk, rng, work, cases, target, templates, command):
    """Each template must run as written (command(j): merge or moe-build), then `cases` mutations of them."""
    def run(name, case, j, recipe, must_pass=False):
        rp, out = os.path.join(work, f"{name}.yml"), os.path.join(work, f"{name}-out")
        open(rp, "w").write(recipe)
        p = chk.run(target + (" as written" if must_pass else ""), case, [command(j), rp, out, "-q"], out=out,
                    note=f"(recipe {rp}:\n{recipe})", must_pass=must_pass)
        if p is not None and p.returncode == 0:
            shutil.rmtree(out)
    for j, r in enumerate(templates):
        run(f"{target}-t{j}", j, j, json.dumps(r, indent=1), must_pass=True)
    for i in range(cases):
        j = rng.randrange(len(templates))
        try:
            recipe = json.dumps(mutate_recipe(rng, copy.deepcopy(templates[j])), indent=1, allow_nan=True)
        except ValueError:  # a NaN/inf key or similar that JSON cannot write
            continue
        run(f"{target}{i}", i, j, recipe)


def recipes(a, b, c):
    return [
        {"merge_method": "linear", "models": [{"model": a, "parameters": {"weight": 0.6}}, {"model": b, "parameters": {"weight": 0.4}}], "dtype": "float32"},
        {"merge_method": "slerp", "base_model": a, "models": [{"model": a}, {"model": b}],
         "parameters": {"t": [{"filter": "self_attn", "value": [0, 0.5, 1]}, {"filter": "mlp", "value": [1, 0.5, 0]}, {"value": 0.5}]}, "dtype": "bfloat16"},
        {"merge_method": "ties", "base_model": a, "models": [{"model": b, "parameters": {"density": 0.5, "weight": 0.5}}, {"model": c, "parameters": {"density": 0.7, "weight": 0.5}}],
         "parameters": {"normalize": True}, "dtype": "float16"},
        {"merge_method": "dare_ties", "base_model": a, "models": [{"model": b, "parameters": {"density": 0.6, "weight": 0.5}}, {"model": c, "parameters": {"density": 0.4, "weight": 0.5}}],
         "parameters": {"int8_mask": True}, "dtype": "float32"},
        {"merge_method": "task_arithmetic", "base_model": a, "models": [{"model": b, "parameters": {"weight": 0.7}}, {"model": c, "parameters": {"weight": 0.3}}], "dtype": "float32"},
        {"slices": [{"sources": [{"model": a, "layer_range": [0, 2]}]}, {"sources": [{"model": b, "layer_range": [1, 2]}]}], "merge_method": "passthrough", "dtype": "float32"},
        {"merge_method": "della", "base_model": a, "models": [{"model": b, "parameters": {"density": 0.5, "weight": 0.5, "epsilon": 0.1}}, {"model": c, "parameters": {"density": 0.5, "weight": 0.5}}],
         "parameters": {"lambda": 1.0}, "dtype": "float32"},
        {"merge_method": "model_stock", "base_model": a, "models": [{"model": b}, {"model": c}], "dtype": "float32"},
        {"merge_method": "karcher", "models": [{"model": a}, {"model": b}, {"model": c}], "parameters": {"max_iter": 10, "tol": 1e-5}, "dtype": "float32"},
        {"merge_method": "nearswap", "base_model": a, "models": [{"model": a}, {"model": b}], "parameters": {"t": 0.001}, "dtype": "float32"},
    ]


METHODS = ["linear", "slerp", "nuslerp", "task_arithmetic", "ties", "dare_linear", "dare_ties", "breadcrumbs", "breadcrumbs_ties", "della",
           "della_linear", "model_stock", "passthrough", "sce", "multislerp", "karcher", "nearswap", "arcee_fusion", "ram", "ramplus_tl", "bogus"]
PARAMS = ["weight", "density", "t", "epsilon", "lambda", "normalize", "gamma", "select_topk", "layer_range", "int8_mask", "unknown_key"]


def paths(o, pre=()):
    yield pre
    if isinstance(o, dict):
        for k, v in o.items():
            yield from paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from paths(v, pre + (i,))


def mutate_recipe(rng, r):
    for _ in range(rng.randrange(1, 3)):
        p = rng.choice([p for p in paths(r) if p])
        parent = r
        for k in p[:-1]:
            parent = parent[k]
        roll = rng.random()
        if p[-1] == "merge_method" and roll < .5:
            parent[p[-1]] = rng.choice(METHODS)
        elif isinstance(parent, dict) and roll < .15:
            del parent[p[-1]]
        elif isinstance(parent, dict) and roll < .3:
            parent[rng.choice(PARAMS)] = weird(rng)
        else:
            parent[p[-1]] = weird(rng)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=40, help="mutated inputs per target (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="model,gguf,sharded,template,tokenizer,lora,moe,recipe")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    if os.environ.get("MM"):
        mm = [os.environ["MM"]]
    else:
        print("building the CLI...", file=sys.stderr)
        if sh(["dotnet", "build", "-c", "Release", os.path.join(ROOT, "src", "Mistral.Merge.Cli"), "-v", "q", "-nologo"]).returncode:
            sys.exit("build failed")
        mm = [os.path.join(ROOT, "src", "Mistral.Merge.Cli", "bin", "Release", "net10.0", "mistral-merge")]
    work = tempfile.mkdtemp(prefix="mm-fuzz-")
    rng = random.Random(a.seed)
    log = []
    chk = Checker(mm, log)
    try:
        shape = ["--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
                 "--vocab", "448", "--tokenizer", "byte-level", "-q"]
        models = []
        for s in range(3):
            m = os.path.join(work, f"m{s}")
            p = sh(mm + ["synth", m, "--seed", str(s)] + shape)
            if p.returncode:
                sys.exit("synth failed: " + p.stderr)
            models.append(m)
        text = os.path.join(work, "t.txt")
        open(text, "w").write("Once upon a time there was a little girl who liked to play outside in the sun.\n")
        model_runs = lambda path: (["inspect", path, "--check"], ["perplexity", path, "--text", text, "--ctx", "16"],
                                   ["generate", path, "--prompt", "Once", "--max-new-tokens", "4", "--temperature", "0"])
        targets = a.only.split(",")
        if "model" in targets:
            for args in model_runs(models[0]):  # every command works on the model as written
                chk.run("model as written", 0, args, must_pass=True)
            for i in range(a.cases):
                d = os.path.join(work, f"model{i}")
                shutil.copytree(models[0], d)
                kinds = [mutate_model(rng, d) for _ in range(rng.randrange(1, 3))]
                chk.case("model", i, model_runs(d), d, a.keep, note=f"(mutations: {kinds}; seed {a.seed})")
        if "gguf" in targets:
            for t in ("f16", "q8_0"):
                g = os.path.join(work, f"m.{t}.gguf")
                if sh(mm + ["export-gguf", models[0], g, "--type", t, "-q"]).returncode:
                    sys.exit("export-gguf failed")
                for args in model_runs(g):
                    chk.run("gguf as written", 0, args, must_pass=True)
            for i in range(a.cases):
                src = os.path.join(work, f"m.{rng.choice(['f16', 'q8_0'])}.gguf")
                kind, b = mutate_gguf(rng, open(src, "rb").read())
                g = os.path.join(work, f"g{i}.gguf")
                open(g, "wb").write(b)
                chk.case("gguf", i, model_runs(g), g, a.keep, note=f"(from {os.path.basename(src)}, {kind}; seed {a.seed})")
        if "sharded" in targets:
            sharded = os.path.join(work, "sharded")
            if sh(mm + ["convert", models[0], sharded, "--out-shard-size", "100KB", "-q"]).returncode:
                sys.exit("convert failed")
            shards = sorted(f for f in os.listdir(sharded) if f.endswith(".safetensors"))
            for args in model_runs(sharded)[:2]:
                chk.run("sharded as written", 0, args, must_pass=True)
            for i in range(a.cases):
                d = os.path.join(work, f"sharded{i}")
                shutil.copytree(sharded, d)
                index = os.path.join(d, "model.safetensors.index.json")
                kind = rng.choice(["json", "json", "file", "remove", "truncate"])
                if kind == "json":
                    doc = mutate_recipe(rng, json.load(open(index)))
                    open(index, "w").write(json.dumps(doc, allow_nan=True))
                elif kind == "file":
                    doc = json.load(open(index))
                    name = rng.choice(list(doc["weight_map"]))
                    doc["weight_map"][name] = rng.choice(["../" + shards[0], "/etc/passwd", os.path.join(d, shards[0]), "missing.safetensors",
                                                          shards[rng.randrange(len(shards))], "", ".", "config.json", "model.safetensors.index.json"])
                    json.dump(doc, open(index, "w"))
                elif kind == "remove":
                    os.remove(os.path.join(d, rng.choice(shards)))
                else:
                    f = os.path.join(d, rng.choice(shards))
                    b = open(f, "rb").read()
                    open(f, "wb").write(b[:rng.randrange(len(b))])
                chk.case("sharded", i, model_runs(d)[:2], d, a.keep, note=f"({kind}; seed {a.seed})")
        if "template" in targets:
            folder = os.path.join(ROOT, "tests", "Mistral.Merge.Tests", "Jinja", "templates")
            sources = sorted(f for f in os.listdir(folder) if f.endswith(".jinja"))
            conversations = [os.path.join(work, "plain.json"), os.path.join(work, "tools.json")]
            json.dump([{"role": "user", "content": "Hi {{ there }}"}, {"role": "assistant", "content": "Hello."},
                       {"role": "user", "content": "ok"}], open(conversations[0], "w"))
            json.dump([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "", "tool_calls": [{"id": "abcdefghi", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
                       {"role": "tool", "content": "42", "tool_call_id": "abcdefghi"}, {"role": "user", "content": "ok"}], open(conversations[1], "w"))
            d = os.path.join(work, "tm")
            shutil.copytree(models[0], d)
            for i in range(a.cases):
                src = rng.choice(sources)
                template = mutate_template(rng, open(os.path.join(folder, src), encoding="utf-8").read())
                json.dump({"bos_token": "<s>", "eos_token": "</s>", "chat_template": template}, open(os.path.join(d, "tokenizer_config.json"), "w"))
                kept = os.path.join(work, f"template{i}.json")
                shutil.copy(os.path.join(d, "tokenizer_config.json"), kept)
                chk.case("template", i, [["generate", d, "--messages", rng.choice(conversations), "--max-new-tokens", "2", "--temperature", "0"]],
                         kept, a.keep, note=f"(a mutation of {src}: {kept})")
        if "tokenizer" in targets:
            folder = os.path.join(ROOT, "tests", "Mistral.Merge.Tests", "Inference", "Tokenizers", "synthetic")
            sources = sorted(f for f in os.listdir(folder) if f.endswith(".tokenizer.json"))
            d = os.path.join(work, "tk")
            shutil.copytree(models[0], d)
            os.remove(os.path.join(d, "tokenizer.model"))
            for i in range(a.cases):
                src = rng.choice(sources)
                tok = mutate_recipe(rng, json.load(open(os.path.join(folder, src), encoding="utf-8")))
                config = os.path.join(folder, src.replace(".tokenizer.json", ".tokenizer_config.json"))
                kept = os.path.join(work, f"tokenizer{i}.json")
                try:
                    open(kept, "w").write(json.dumps(tok, allow_nan=True))
                except ValueError:
                    continue
                shutil.copy(kept, os.path.join(d, "tokenizer.json"))
                shutil.copy(config, os.path.join(d, "tokenizer_config.json"))
                chk.case("tokenizer", i, [["tokenize", d, "Hello world 123 the cat"], ["perplexity", d, "--text", text, "--ctx", "16"]],
                         kept, a.keep, note=f"(a mutation of {src}: {kept})")
        if "lora" in targets:
            base = models[0]
            good = os.path.join(work, "adapter")
            write_adapter(good, random.Random(a.seed))
            recipe = os.path.join(work, "lora.yml")
            for i in range(-1, a.cases):
                d = os.path.join(work, f"adapter{i}")
                shutil.copytree(good, d)
                kind = mutate_adapter(rng, d) if i >= 0 else "as written"
                json.dump({"merge_method": "linear", "models": [{"model": f"{base}+{d}", "parameters": {"weight": 1.0}}], "dtype": "float32"},
                          open(recipe, "w"))
                out = os.path.join(work, f"lout{i}")
                failures = len(log)
                chk.run("lora as written" if i < 0 else "lora", i, ["merge", recipe, out, "-q"], out=out, note=f"({kind}; adapter {d})", must_pass=i < 0)
                shutil.rmtree(out, ignore_errors=True)
                if not a.keep and len(log) == failures:
                    shutil.rmtree(d)
        if "moe" in targets:
            moe = os.path.join(work, "moe")
            if sh(mm + ["synth", moe, "--arch", "mixtral", "--experts", "4", "--experts-per-token", "2"] + shape[2:]).returncode:
                sys.exit("synth mixtral failed")
            surgeries = [{"merge_method": "moe_to_dense", "base_model": moe, "parameters": {"strategy": st, "calibration": text, "calibration_tokens": 64}, "dtype": "float32"}
                         for st in ("expert", "mean", "frequency", "aligned_mean", "concat")]
            surgeries[0]["parameters"]["expert"] = 1
            surgeries += [{"merge_method": "moe_prune", "base_model": moe, "parameters": {"num_experts": 2, "group": True, "calibration": text, "calibration_tokens": 64}},
                          {"merge_method": "moe_prune", "base_model": moe, "parameters": {"num_experts": 3, "criterion": "frequency", "calibration": text, "calibration_tokens": 64}}]
            builds = [{"base_model": models[0], "gate_mode": mode, "dtype": "float32", "experts_per_token": 2,
                       "experts": [{"source_model": models[1], "positive_prompts": ["Once upon a time"]},
                                   {"source_model": models[2], "positive_prompts": ["def f(x):"], "negative_prompts": ["The cat"]}]}
                      for mode in ("hidden", "cheap_embed", "random")]
            recipe_cases(chk, rng, work, a.cases, "moe", surgeries + builds, lambda j: "merge" if j < len(surgeries) else "moe-build")
        if "recipe" in targets:
            recipe_cases(chk, rng, work, a.cases, "recipe", recipes(*models), lambda j: "merge")
    finally:
        if a.keep or log:  # a failure keeps its inputs for the reproducer
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("| target | runs | ok | failures | exit 0 / 1 / 2 |\n|---|---|---|---|---|")
    for t, (runs, ok, bad) in chk.rows.items():
        codes = chk.exits.get(t, {})
        print(f"| {t} | {runs} | {ok} | {bad} | {' / '.join(str(codes.get(c, 0)) for c in (0, 1, 2))} |")
    for line in log:
        print(line)
    sys.exit(1 if log else 0)


if __name__ == "__main__":
    main()
