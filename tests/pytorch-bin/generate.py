#!/usr/bin/env python3
"""Generates the PyTorch .bin fixtures of tests/Mistral.Merge.Tests/IO/PytorchBin/ (run once; outputs are committed).

Provenance: written with real PyTorch, Debian bookworm's python3-torch 1.13.1+dfsg-4 (torch.__version__ 1.13.0a0),
Python 3.11.2: `apt-get install -y python3-torch && /usr/bin/python3 tests/pytorch-bin/generate.py`.
Every .bin file is a torch.save output (zip format, the default since torch 1.6, or the legacy format with
_use_new_zipfile_serialization=False); the hostile ones are torch.save outputs of objects whose __reduce__ names
a dangerous callable, exactly what a malicious checkpoint contains. The reference model.safetensors files are
written by this script from the same tensors (the safetensors layout: 8-byte header length, JSON header, data),
so the .NET tests compare the .bin readers against an independent, already-validated reader, byte for byte.
Hostile payloads would create /tmp/mistral-merge-pickle-pwned-* marker files; the tests assert they never appear.
"""
import collections
import json
import os
import struct
import subprocess
import sys

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Mistral.Merge.Tests", "IO", "PytorchBin")
ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.float64: "F64"}


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_safetensors(file, tensors):
    """A minimal safetensors writer (names in the dict's order, data 8-byte aligned like the reference writer)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Norm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))


class Attention(nn.Module):
    def __init__(self, h, heads, kv):
        super().__init__()
        d = h // heads
        self.q_proj = nn.Linear(h, heads * d, bias=False)
        self.k_proj = nn.Linear(h, kv * d, bias=False)
        self.v_proj = nn.Linear(h, kv * d, bias=False)
        self.o_proj = nn.Linear(heads * d, h, bias=False)
        # old transformers stored this buffer in every layer of a Llama .bin (the reader ignores it)
        self.rotary_emb = nn.Module()
        self.rotary_emb.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d)))


class Mlp(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)


class Layer(nn.Module):
    def __init__(self, h, i, heads, kv):
        super().__init__()
        self.self_attn = Attention(h, heads, kv)
        self.mlp = Mlp(h, i)
        self.input_layernorm = Norm(h)
        self.post_attention_layernorm = Norm(h)


class Inner(nn.Module):
    def __init__(self, v, h, i, heads, kv, layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(v, h)
        self.layers = nn.ModuleList([Layer(h, i, heads, kv) for _ in range(layers)])
        self.norm = Norm(h)


class LlamaForCausalLM(nn.Module):
    """The module tree (and so the state_dict names) of transformers' LlamaForCausalLM, with tied embeddings."""

    def __init__(self, v, h, i, heads, kv, layers):
        super().__init__()
        self.model = Inner(v, h, i, heads, kv, layers)
        self.lm_head = nn.Linear(h, v, bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied: one storage, two state_dict entries


LLAMA = dict(v=448, h=4, i=8, heads=2, kv=1, layers=1)
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": LLAMA["h"], "intermediate_size": LLAMA["i"], "max_position_embeddings": 64, "model_type": "llama",
    "num_attention_heads": LLAMA["heads"], "num_hidden_layers": LLAMA["layers"], "num_key_value_heads": LLAMA["kv"],
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "vocab_size": LLAMA["v"],
}


def llama_state_dict():
    torch.manual_seed(20261129)
    m = LlamaForCausalLM(**LLAMA)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.randn(p.shape) * (0.1 if "norm" in name else 0.7) + (1.0 if "norm" in name else 0.0))
    m = m.to(torch.bfloat16)
    m.model.layers[0].self_attn.rotary_emb.inv_freq = m.model.layers[0].self_attn.rotary_emb.inv_freq.float()
    sd = m.state_dict()
    assert sd["lm_head.weight"].storage().data_ptr() == sd["model.embed_tokens.weight"].storage().data_ptr()
    return sd


def write_config(folder):
    with open(path(folder, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")


def llama_fixtures():
    sd = llama_state_dict()
    for folder, new_zip in (("llama-zip", True), ("llama-legacy", False)):
        torch.save(sd, path(folder, "pytorch_model.bin"), _use_new_zipfile_serialization=new_zip)
        write_config(folder)
    write_safetensors(path("llama-reference", "model.safetensors"), sd)
    write_config("llama-reference")
    # sharded like save_pretrained(max_shard_size=...): the layer in shard 1, the rest in shard 2, with the index
    names = list(sd.keys())
    first = [n for n in names if ".layers." in n]
    second = [n for n in names if n not in first]
    index = {"metadata": {"total_size": sum(sd[n].numel() * sd[n].element_size() for n in names)}, "weight_map": {}}
    for k, part in enumerate((first, second), 1):
        shard = f"pytorch_model-{k:05d}-of-00002.bin"
        torch.save(collections.OrderedDict((n, sd[n]) for n in part), path("llama-sharded", shard))
        for n in part:
            index["weight_map"][n] = shard
    with open(path("llama-sharded", "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    write_config("llama-sharded")


def dtype_fixtures():
    """Each dtype, a tensor tied to another (one storage), views with a storage offset, a scalar, an empty tensor."""
    base = torch.arange(-12, 12, dtype=torch.float32) / 8  # exact in F16 and BF16 too
    shared = torch.arange(40, dtype=torch.float32).reshape(5, 8) / 4 - 3
    d = collections.OrderedDict()
    d["f32"] = base.reshape(4, 6).clone()
    d["f16"] = base.to(torch.float16).reshape(2, 3, 4)
    d["bf16"] = base.to(torch.bfloat16).reshape(6, 4)
    d["f64"] = base.to(torch.float64)[:5].clone()
    d["i64"] = torch.tensor([[-3, 0], [7, 1 << 40]], dtype=torch.int64)
    d["tied_a"] = shared
    d["tied_b"] = shared  # the same tensor twice: one storage
    d["rows_2_to_4"] = shared[2:4]  # a contiguous view: storage offset 16
    d["row_3"] = shared[3]
    d["scalar"] = torch.tensor(2.5)
    d["empty"] = torch.zeros(0, 3)
    for name, new_zip in (("dtypes-zip.bin", True), ("dtypes-legacy.bin", False)):
        torch.save(d, path(name), _use_new_zipfile_serialization=new_zip)
    write_safetensors(path("dtypes-reference.safetensors"), d)
    # refused views: a transpose (non-contiguous strides)
    for name, new_zip in (("transposed-zip.bin", True), ("transposed-legacy.bin", False)):
        torch.save({"transposed": shared.t()}, path(name), _use_new_zipfile_serialization=new_zip)


MARK = "/tmp/mistral-merge-pickle-pwned-"


class Reduce:
    """An object whose pickle is `callable(*args)`: what a malicious checkpoint carries."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class Unknown:
    """An instance of a class of this script's __main__ module: a GLOBAL to a module the loader cannot know."""


def hostile_fixtures():
    payloads = {
        "os-system": Reduce(os.system, (f"touch {MARK}os-system",)),  # pickled as posix.system on Linux
        "builtins-eval": Reduce(eval, (f"open('{MARK}builtins-eval', 'w')",)),
        "builtins-exec": Reduce(exec, (f"open('{MARK}builtins-exec', 'w')",)),
        "subprocess-popen": Reduce(subprocess.Popen, (["touch", f"{MARK}subprocess-popen"],)),
        "unknown-module": Unknown(),
    }
    for name, payload in payloads.items():
        # the payload next to a real tensor, as a poisoned checkpoint would hide it
        obj = collections.OrderedDict([("model.embed_tokens.weight", torch.ones(2, 2)), ("x", payload)])
        torch.save(obj, path("hostile", f"{name}-zip.bin"))
        torch.save(obj, path("hostile", f"{name}-legacy.bin"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    assert sys.byteorder == "little"
    llama_fixtures()
    dtype_fixtures()
    hostile_fixtures()
    print("torch", torch.__version__, "wrote", OUT)
