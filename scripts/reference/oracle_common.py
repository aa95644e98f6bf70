"""Shared helpers of the oracle scripts: checkpoint reading, prompts, fixture writing, error norms.
Fixture format (read by tests/model/test_oracle_common.h): NAME.bin = little-endian FP32 arrays back
to back; NAME.json = {"arrays": {key: {"offset": floats, "shape": [...]}}, ...metadata}."""
import json
import math
import os
import struct

import torch

import dsv32_presets as presets

_DT = {"BF16": torch.bfloat16, "F32": torch.float32, "F8_E4M3": torch.float8_e4m3fn}


def read_checkpoint(d):
    """{name: tensor} of every safetensors shard in d (raw dtypes)."""
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".safetensors"):
            continue
        data = open(os.path.join(d, f), "rb").read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        base = 8 + n
        for name, e in header.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            t = torch.frombuffer(bytearray(data[base + a:base + b]), dtype=_DT[e["dtype"]])
            out[name] = t.view(e["shape"])
    return out


def dequantize(w, s):
    """W = fp8 * scale_inv expanded per 128 x 128 block (edge blocks partial), FP32."""
    R, C = w.shape
    S = s.float().repeat_interleave(128, 0)[:R].repeat_interleave(128, 1)[:, :C]
    return w.float() * S


def prompt_tokens(i, n, vocab):
    """Deterministic prompt i of length n: ids in [2, vocab) from splitmix64(FNV('oracle-prompt-i'))."""
    key = presets.fnv1a64(f"oracle-prompt-{i}")
    return [2 + presets._splitmix(key, j) % (vocab - 2) for j in range(n)]


def normwise(a, b):
    """||a - b|| / ||b|| in float64."""
    a, b = a.double().flatten(), b.double().flatten()
    return ((a - b).norm() / b.norm()).item()


class Fixture:
    """Collects FP32 arrays + metadata; write() makes NAME.bin and NAME.json in out_dir."""

    def __init__(self):
        self.blobs, self.arrays, self.offset, self.meta = [], {}, 0, {}

    def add(self, key, t):
        t = torch.as_tensor(t).detach().to("cpu", torch.float32).contiguous()
        self.arrays[key] = {"offset": self.offset, "shape": list(t.shape)}
        self.blobs.append(t.numpy().tobytes() if hasattr(t, "numpy") else bytes(t.untyped_storage()))
        self.offset += t.numel()

    def write(self, out_dir, name):
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            for b in self.blobs:
                f.write(b)
        m = dict(self.meta)
        m["arrays"] = self.arrays
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(m, f, indent=1, sort_keys=True)
