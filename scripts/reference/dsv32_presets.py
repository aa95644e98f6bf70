#!/usr/bin/env python3
"""D25 presets built with the same counter-based generator as `deepserve make-model`.

Pure Python 3 (no numpy needed; stdlib math calls glibc's log/sqrt/cos/sin exactly like the C++
generator), so the tensors are bit-identical to make-model's (docs/make_model.md "Generator").
Never imported by the engine; used by the oracle scripts and to write the per-tensor sha256 list
that `tests/model/test_oracle_presets.cpp` checks against make-model's output.

Usage:
  dsv32_presets.py PRESET OUT_DIR [--index-topk N]   write config.json + shards + index
  dsv32_presets.py PRESET --sha256 OUT.json [--index-topk N]   per-tensor sha256 only
"""
import argparse
import hashlib
import json
import math
import os
import struct
from multiprocessing import Pool

M64 = (1 << 64) - 1

# ---- presets (src/tools/make_model_presets.cpp; spec/model.md 10.1) -------------------------

def _tiny_a():
    return {
        "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32",
        "vocab_size": 1024, "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 128,
        "num_hidden_layers": 3, "first_k_dense_replace": 1, "num_nextn_predict_layers": 1,
        "moe_layer_freq": 1, "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 128,
        "kv_lora_rank": 128, "qk_nope_head_dim": 64, "qk_rope_head_dim": 64, "v_head_dim": 64,
        "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2,
        "topk_group": 1, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "norm_topk_prob": True, "index_n_heads": 4, "index_head_dim": 128,
        "index_topk": 16, "rope_theta": 10000, "max_position_embeddings": 163840,
        "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        "rms_norm_eps": 1e-6, "hidden_act": "silu", "attention_bias": False, "bos_token_id": 0,
        "eos_token_id": 1, "tie_word_embeddings": False,
        "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                "weight_block_size": [128, 128], "scale_fmt": "ue8m0"},
    }


def preset(name, index_topk=0):
    """Returns (config dict, seed) of a make-model preset; raises ValueError for an unknown name."""
    c = _tiny_a()
    if name == "tiny-a":
        seed = 1
    elif name == "tiny":
        seed = 2
        c["vocab_size"] = 129280
    elif name == "real-geometry":
        seed = 3
        c.update(hidden_size=512, intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=2,
                 first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=4, q_lora_rank=256,
                 kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
                 index_n_heads=64, index_head_dim=128, index_topk=128)
    else:
        raise ValueError(f"unknown preset '{name}' (known: tiny, tiny-a, real-geometry)")
    if index_topk > 0:
        c["index_topk"] = index_topk
    return c, seed

# ---- generator (docs/make_model.md "Generator") ----------------------------------------------

def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def _splitmix(key, i):
    z = (key + (i + 1) * 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


_F32 = struct.Struct("<f")


def _f32(x):
    return _F32.unpack(_F32.pack(x))[0]


def normals(key, n, mean, std):
    """n float32 values mean + std * BoxMuller(splitmix64 uniforms), as Python floats."""
    out = []
    two53 = 2.0 ** -53
    for k in range((n + 1) // 2):
        u1 = (_splitmix(key, 2 * k) >> 11) * two53
        u2 = (_splitmix(key, 2 * k + 1) >> 11) * two53
        r = math.sqrt(-2.0 * math.log(1.0 - u1))
        t = 6.283185307179586 * u2
        out.append(_f32(mean + std * (r * math.cos(t))))
        out.append(_f32(mean + std * (r * math.sin(t))))
    return out[:n]


def bf16_bits(x):
    """float32 value -> BF16 bits, round to nearest even."""
    u = struct.unpack("<I", _F32.pack(x))[0]
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def fp8_e4m3_byte(x):
    """float32 value -> E4M3 "fn" byte, round to nearest even, saturating at +-448 (NaN -> 0x7f)."""
    if math.isnan(x):
        return 0x7F
    s = 0x80 if math.copysign(1.0, x) < 0 else 0
    a = abs(x)
    if a >= 448.0:
        return s | 0x7E
    if a < 2.0 ** -6:
        return s | int(round(a * 512.0))
    e = math.frexp(a)[1] - 1
    q = round(math.ldexp(a, 3 - e))
    if q >= 16:
        q, e = 8, e + 1
    if e > 8 or (e == 8 and q > 14):
        return s | 0x7E
    return s | ((e + 7) << 3) | (q - 8)


def tensor_list(c):
    """expected_tensors(cfg) of src/model/tensor_names.cpp: [(name, shape, 'fp8'|'bf16'|'f32')]."""
    d, h, V = c["hidden_size"], c["num_attention_heads"], c["vocab_size"]
    out = []

    def plain(n, shape, k="bf16"):
        out.append((n, shape, k))

    def mat(n, r, k):
        out.append((n, [r, k], "fp8"))

    def ffn(p, inter):
        mat(p + "gate_proj.weight", inter, d)
        mat(p + "up_proj.weight", inter, d)
        mat(p + "down_proj.weight", d, inter)

    def layer(i, moe):
        P = f"model.layers.{i}."
        A, I, Mp = P + "self_attn.", P + "self_attn.indexer.", P + "mlp."
        qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
        plain(P + "input_layernorm.weight", [d])
        plain(P + "post_attention_layernorm.weight", [d])
        mat(A + "q_a_proj.weight", c["q_lora_rank"], d)
        plain(A + "q_a_layernorm.weight", [c["q_lora_rank"]])
        mat(A + "q_b_proj.weight", h * qk, c["q_lora_rank"])
        mat(A + "kv_a_proj_with_mqa.weight", c["kv_lora_rank"] + c["qk_rope_head_dim"], d)
        plain(A + "kv_a_layernorm.weight", [c["kv_lora_rank"]])
        mat(A + "kv_b_proj.weight", h * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"])
        mat(A + "o_proj.weight", d, h * c["v_head_dim"])
        mat(I + "wq_b.weight", c["index_n_heads"] * c["index_head_dim"], c["q_lora_rank"])
        mat(I + "wk.weight", c["index_head_dim"], d)
        plain(I + "k_norm.weight", [c["index_head_dim"]])
        plain(I + "k_norm.bias", [c["index_head_dim"]])
        plain(I + "weights_proj.weight", [c["index_n_heads"], d])
        if not moe:
            ffn(Mp, c["intermediate_size"])
            return
        plain(Mp + "gate.weight", [c["n_routed_experts"], d])
        plain(Mp + "gate.e_score_correction_bias", [c["n_routed_experts"]], "f32")
        for j in range(c["n_routed_experts"]):
            ffn(Mp + f"experts.{j}.", c["moe_intermediate_size"])
        if c.get("n_shared_experts", 0) > 0:
            ffn(Mp + "shared_experts.", c["n_shared_experts"] * c["moe_intermediate_size"])

    plain("model.embed_tokens.weight", [V, d])
    plain("model.norm.weight", [d])
    plain("lm_head.weight", [V, d])
    L, fk, fq = c["num_hidden_layers"], c.get("first_k_dense_replace", 0), c.get("moe_layer_freq", 1)
    for i in range(L):
        layer(i, i >= fk and i % fq == 0)
    for k in range(c.get("num_nextn_predict_layers", 0)):
        P = f"model.layers.{L + k}."
        plain(P + "embed_tokens.weight", [V, d])
        plain(P + "enorm.weight", [d])
        plain(P + "hnorm.weight", [d])
        plain(P + "eh_proj.weight", [d, 2 * d])
        plain(P + "shared_head.norm.weight", [d])
        plain(P + "shared_head.head.weight", [V, d])
        layer(L + k, True)
    return out


def _init(name, L):
    stream = {f"model.layers.{L}.embed_tokens.weight": "model.embed_tokens.weight",
              f"model.layers.{L}.shared_head.head.weight": "lm_head.weight"}.get(name, name)
    for suffix, mean, std in (("k_norm.bias", 0.0, 0.1), ("e_score_correction_bias", 0.0, 0.5),
                              ("weights_proj.weight", 0.0, 0.05), ("norm.weight", 1.0, 0.1)):
        if name.endswith(suffix):
            return stream, mean, std
    return stream, 0.0, 0.02


def generate(args):
    """(name, shape, kind, cfg, seed) -> [(name, dtype, shape, bytes)] (FP8 weight then its scale)."""
    name, shape, kind, c, seed = args
    stream, mean, std = _init(name, c["num_hidden_layers"])
    n = math.prod(shape)
    v = normals(fnv1a64(stream) ^ seed, n, mean, std)
    if kind == "bf16":
        return [(name, "BF16", shape, struct.pack(f"<{n}H", *map(bf16_bits, v)))]
    if kind == "f32":
        return [(name, "F32", shape, struct.pack(f"<{n}f", *v))]
    R, C = shape
    sr, sc = -(-R // 128), -(-C // 128)
    q = bytearray(n)
    scales = []
    for br in range(sr):
        for bc in range(sc):
            r0, r1, c0, c1 = br * 128, min(R, br * 128 + 128), bc * 128, min(C, bc * 128 + 128)
            amax = max(abs(v[r * C + k]) for r in range(r0, r1) for k in range(c0, c1))
            s = 1.0 if amax == 0.0 else _f32(amax / 448.0)
            scales.append(s)
            for r in range(r0, r1):
                for k in range(c0, c1):
                    q[r * C + k] = fp8_e4m3_byte(_f32(v[r * C + k] / s))
    return [(name, "F8_E4M3", shape, bytes(q)),
            (name + "_scale_inv", "F32", [sr, sc], struct.pack(f"<{sr * sc}f", *scales))]


def build(name, index_topk=0, processes=None):
    """All tensors of a preset in file order: (config, seed, [(name, dtype, shape, bytes)])."""
    c, seed = preset(name, index_topk)
    jobs = [(n, s, k, c, seed) for (n, s, k) in tensor_list(c)]
    with Pool(processes or os.cpu_count()) as pool:
        parts = pool.map(generate, jobs, chunksize=1)
    return c, seed, [t for p in parts for t in p]


def sha256_list(tensors):
    """{tensor name: sha256 hex of its raw little-endian bytes}."""
    return {n: hashlib.sha256(b).hexdigest() for (n, _, _, b) in tensors}


def write_checkpoint(c, tensors, out):
    """Writes config.json, one shard per layer (make-model's layout) and the index."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(json.dumps(c, indent=2) + "\n")
    nshards = c["num_hidden_layers"] + c.get("num_nextn_predict_layers", 0) + 1

    def shard_of(n):
        return int(n.split(".")[2]) + 1 if n.startswith("model.layers.") else 0

    weight_map, total = {}, 0
    for s in range(nshards):
        ts = [t for t in tensors if shard_of(t[0]) == s]
        fname = f"model-{s + 1:05d}-of-{nshards:05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for n, dt, shape, data in ts:
            header[n] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
            off += len(data)
            weight_map[n] = fname
            total += len(data)
        h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in ts))
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2,
                           sort_keys=True) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--index-topk", type=int, default=0)
    ap.add_argument("--sha256", help="write {name: sha256} JSON here")
    a = ap.parse_args()
    c, seed, tensors = build(a.preset, a.index_topk)
    if a.out_dir:
        write_checkpoint(c, tensors, a.out_dir)
    if a.sha256:
        with open(a.sha256, "w") as f:
            json.dump({"preset": a.preset, "seed": seed, "sha256": sha256_list(tensors)}, f, indent=1,
                      sort_keys=True)


if __name__ == "__main__":
    main()
