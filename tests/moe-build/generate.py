#!/usr/bin/env python3
"""Reference router rows ("gate vectors") of mergekit-moe for the example config examples/moe/stories260k-build.yml.

Provenance: an independent reading of mergekit/moe/router.py (get_gate_params, get_hidden_states,
get_cheap_embedding, tokenize_prompts; arcee-ai/mergekit) on a hand-written float64 Llama/Mistral forward pass in
PyTorch (HF semantics: RMSNorm, rotate_half RoPE, grouped-query causal attention, SwiGLU), reading the fixture's
model.safetensors directly. transformers is not used (not installed); tokens come from sentencepiece
(tokenizer.model) as [BOS] + EncodeAsIds(prompt), which is what mergekit's tokenizer("<s>" + prompt,
add_special_tokens=False) gives for these Llama tokenizers.

Modes written: hidden (last token of each layer's input hidden state = HF hidden_states[:-1]), hidden_avg (mean
over the prompt's tokens; one prompt per forward, no padding), cheap_embed, and hidden with negative prompts
(expert e's negatives = expert (e+1) % E's positives). Each: mean over prompts, minus negatives, L2-normalised
(norm clamped at 1e-8). Output: expected-gates.json, [mode][layer][expert][hidden] rounded to 9 digits.

Run: /usr/bin/python3 tests/moe-build/generate.py   (Debian: apt-get install -y python3-torch python3-sentencepiece python3-yaml)
"""
import json
import math
import os
import struct

import sentencepiece
import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "examples", "moe", "stories260k-build.yml")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info["shape"]).double()
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def layer_inputs(w, cfg, ids):
    """HF hidden_states[:-1]: the input of every decoder layer, [layers][tokens, hidden]."""
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    T = len(ids)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    states = []
    for l in range(L):
        states.append(x.clone())
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, nh, hd).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1) @ v
        x = x + att.transpose(0, 1).reshape(T, nh * hd) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    return states


def normalize(x):
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)


def main():
    with open(CONFIG, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    base = os.path.normpath(os.path.join(os.path.dirname(CONFIG), config["base_model"]))
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    w = load_safetensors(os.path.join(base, "model.safetensors"))
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(base, "tokenizer.model"))
    tok = lambda prompts: [[sp.bos_id()] + sp.encode(p) for p in prompts]

    def hidden(prompts, average):
        rows = []
        for ids in tok(prompts):
            s = torch.stack(layer_inputs(w, cfg, ids))  # [layers, tokens, hidden]
            rows.append(s.mean(dim=1) if average else s[:, -1, :])
        return torch.stack(rows).mean(dim=0)  # [layers, hidden]

    def cheap(prompts):
        e = w["model.embed_tokens.weight"]
        s = sum(e[torch.tensor(ids)].sum(dim=0) for ids in tok(prompts))
        return normalize(s).repeat(cfg["num_hidden_layers"], 1)

    experts = config["experts"]
    pos = [x["positive_prompts"] for x in experts]
    E = len(experts)
    modes = {
        "hidden": lambda e: hidden(pos[e], False),
        "hidden_avg": lambda e: hidden(pos[e], True),
        "cheap_embed": lambda e: cheap(pos[e]),
        "hidden_negative": lambda e: hidden(pos[e], False) - hidden(pos[(e + 1) % E], False),
        "cheap_embed_negative": lambda e: cheap(pos[e]) - cheap(pos[(e + 1) % E]),
    }
    out = {"config": "examples/moe/stories260k-build.yml", "generator": "tests/moe-build/generate.py", "torch": torch.__version__}
    for name, f in modes.items():
        g = torch.stack([normalize(f(e)) for e in range(E)]).permute(1, 0, 2)  # [layers, experts, hidden]
        out[name] = [[[round(float(v), 9) for v in row] for row in layer] for layer in g]
    with open(os.path.join(HERE, "expected-gates.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
