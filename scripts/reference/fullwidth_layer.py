#!/usr/bin/env python3
"""One full-width DeepSeek-V3.2 MoE decoder layer, random FP8 weights, run by transformers (issue 8).

Writes OUT_DIR/ckpt/ (config.json, safetensors shards, model.safetensors.index.json in the official
Hugging Face layout: the names, shapes and dtypes of src/model/tensor_names.cpp, mirrored by
dsv32_presets.tensor_list) with the real DeepSeek-V3.2 sizes (hidden 7168, 128 heads, q_lora 1536,
kv_lora 512, 256 routed experts top-8 + 1 shared, moe_inter 2048, indexer 64 x 128 top-2048) but ONE
decoder layer, which is MoE (first_k_dense_replace 0, num_hidden_layers 1, no MTP layer), and a
vocabulary of VOCAB = 4096 instead of 129280. Then runs transformers' DeepseekV32ForCausalLM on that
file (FP32, eager attention and experts, no TF32, FP8 weights dequantized W = fp8 * scale_inv; GPU)
over the prompts and writes OUT_DIR/oracle_hf_fullwidth.{bin,json} (oracle_common.Fixture format):
per prompt the logits of every position, the residual stream after the layer (what the engine's
ForwardTrace::hidden holds), and the indexer's top-k sets with relative boundary gaps for every row
that has more than index_topk causal keys. tests/gpu/gpu_fullwidth.cpp compares against it (the
tolerances and their derivation live there, next to the comparisons).

Why the small vocabulary is fine: the vocabulary only sizes the embedding gather and lm_head, a
plain BF16 matrix times the final-norm output with K = 7168 (the real reduction width); no layer
math depends on it. At 129280 lm_head would add 1.85 GB BF16 (7.4 GB FP32 in transformers) and
1.1 GB of FP32 logits per 2100-token prompt per side, and the CPU engine's lm_head over every row
would dominate the check's time. gemm_dense at [129280, 7168] has its own driver (gpu_gemm_dense).

Weights: per tensor a torch CUDA generator seeded with FNV-1a(name) ^ SEED; N(mean, std) values
(std 0.02 for matrices and embeddings, norms 1 +- 0.1, k_norm bias 0.1, weights_proj 0.05, router
bias 0.05 so that both the sigmoid scores and the bias decide the routing), FP8 E4M3 with a F32
scale_inv = amax / 448 per 128 x 128 block (dsv32_presets' rule). The file is the source of truth:
transformers reads it back from disk.

Usage: fullwidth_layer.py OUT_DIR [--lengths 64,2100] [--seed 1]
"""
import argparse
import json
import math
import mmap
import os
import struct
import time

import torch

import dsv32_presets as presets
import oracle_common as oc

VOCAB = 4096
SEED = 1
EXPERTS_PER_SHARD = 32
_DT = {"BF16": torch.bfloat16, "F32": torch.float32, "F8_E4M3": torch.float8_e4m3fn}
_SIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1}


def config():
    """config.json of the one-layer full-width model (the real DeepSeek-V3.2 values, spec/model.md 2)."""
    c, _ = presets.preset("tiny-a")
    c.update(vocab_size=VOCAB, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
             num_hidden_layers=1, first_k_dense_replace=0, num_nextn_predict_layers=0, moe_layer_freq=1,
             num_attention_heads=128, num_key_value_heads=128, q_lora_rank=1536, kv_lora_rank=512,
             qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, n_routed_experts=256,
             n_shared_experts=1, num_experts_per_tok=8, n_group=8, topk_group=4, index_n_heads=64,
             index_head_dim=128, index_topk=2048)
    return c


def entries(c):
    """[(name, dtype, shape)] in file order: each FP8 matrix followed by its scale_inv."""
    out = []
    for name, shape, kind in presets.tensor_list(c):
        if kind == "fp8":
            out.append((name, "F8_E4M3", shape))
            out.append((name + "_scale_inv", "F32", [-(-shape[0] // 128), -(-shape[1] // 128)]))
        else:
            out.append((name, "BF16" if kind == "bf16" else "F32", shape))
    return out


def shard_of(name):
    """0: embedding/norm/lm_head; 1: the layer without routed experts; 2..: 32 routed experts each."""
    if not name.startswith("model.layers."):
        return 0
    if ".mlp.experts." in name:
        return 2 + int(name.split(".")[5]) // EXPERTS_PER_SHARD
    return 1


def init_of(name):
    """(mean, std) of a tensor (dsv32_presets._init, with a smaller router bias)."""
    if name.endswith("e_score_correction_bias"):
        return 0.0, 0.05
    _, mean, std = presets._init(name, 1)
    return mean, std


def generate(name, dtype, shape, seed, dev):
    """Tensors of one entry on the host: [weight] or, for FP8, [codes, scale_inv] (names in order)."""
    g = torch.Generator(device=dev)
    g.manual_seed((presets.fnv1a64(name) ^ seed) & ((1 << 63) - 1))
    mean, std = init_of(name)
    v = torch.randn(*shape, generator=g, device=dev, dtype=torch.float32) * std + mean
    if dtype != "F8_E4M3":
        return [v.to(_DT[dtype]).cpu()]
    R, C = shape
    sr, sc = -(-R // 128), -(-C // 128)
    p = torch.zeros(sr * 128, sc * 128, device=dev)
    p[:R, :C] = v
    amax = p.view(sr, 128, sc, 128).abs().amax(dim=(1, 3))
    s = torch.where(amax == 0, torch.ones_like(amax), amax / 448.0)
    S = s.repeat_interleave(128, 0)[:R].repeat_interleave(128, 1)[:, :C]
    q = (v / S).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
    return [q.cpu(), s.cpu()]


def write_checkpoint(c, out, seed, dev):
    """Writes config.json, the shards and the index; returns the total tensor bytes."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(json.dumps(c, indent=2) + "\n")
    ents = entries(c)
    nshards = 2 + -(-c["n_routed_experts"] // EXPERTS_PER_SHARD)
    weight_map, total = {}, 0
    for s in range(nshards):
        es = [e for e in ents if shard_of(e[0].removesuffix("_scale_inv")) == s]
        fname = f"model-{s + 1:05d}-of-{nshards:05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for n, dt, shape in es:
            nb = math.prod(shape) * _SIZE[dt]
            header[n] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nb]}
            off += nb
            weight_map[n] = fname
        total += off
        h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for n, dt, shape in es:
                if n.endswith("_scale_inv"):
                    continue  # written right after its weight
                for t in generate(n, dt, shape, seed, dev):
                    f.write(t.contiguous().view(torch.uint8).numpy().tobytes())
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2,
                           sort_keys=True) + "\n")
    return total


def read_tensors(d, dev):
    """Yields (name, tensor on dev) for every tensor of every shard in d, read through mmap."""
    for fname in sorted(os.listdir(d)):
        if not fname.endswith(".safetensors"):
            continue
        with open(os.path.join(d, fname), "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        (n,) = struct.unpack("<Q", mm[:8])
        header = json.loads(mm[8:8 + n])
        for name, e in header.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            host = torch.frombuffer(mm, dtype=torch.uint8, count=b - a, offset=8 + n + a)
            raw = host.to(dev)
            del host
            yield name, raw.view(_DT[e["dtype"]]).view(e["shape"])
        try:
            mm.close()
        except BufferError:  # a view still alive; the mapping goes with it
            pass


def build_model(c, ckpt, dev):
    """transformers DeepseekV32ForCausalLM (FP32, eager) on dev with every weight taken from ckpt."""
    from transformers import DeepseekV32Config, DeepseekV32ForCausalLM
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.set_default_dtype(torch.float32)
    hc = dict(c)
    hc.pop("quantization_config")
    hc["mlp_layer_types"] = ["sparse"]  # explicit: the one layer is MoE whatever the config's default rule
    config = DeepseekV32Config(**hc)
    for k in ("_attn_implementation", "_experts_implementation"):
        try:
            setattr(config, k, "eager")
        except Exception as e:  # noqa: BLE001 (as oracle_hf.build_model)
            print("config", k, e)
    with torch.device(dev):
        model = DeepseekV32ForCausalLM(config)
    for f in ("set_attn_implementation", "set_experts_implementation"):
        try:
            getattr(model, f)("eager")
        except Exception as e:  # noqa: BLE001
            print(f, e)
    model = model.float().eval()
    assert "MoE" in type(model.model.layers[0].mlp).__name__, type(model.model.layers[0].mlp)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr(), "lm_head tied"
    sd = model.state_dict()
    I = c["moe_intermediate_size"]
    filled, pending = set(), {}
    for name, t in read_tensors(ckpt, dev):
        pending[name] = t
        base = name.removesuffix("_scale_inv")
        w, s = pending.get(base), pending.get(base + "_scale_inv")
        if w is None or (w.dtype == torch.float8_e4m3fn and s is None):
            continue  # a scale before its weight, or an FP8 weight waiting for its scale
        pending.pop(base)
        pending.pop(base + "_scale_inv", None)
        x = oc.dequantize(w, s) if w.dtype == torch.float8_e4m3fn else w.float()
        if ".mlp.experts." in base:
            p = base.split(".")
            j, proj = int(p[5]), p[6]
            pre = ".".join(p[:5]) + "."
            if proj == "down_proj":
                key, dst = pre + "down_proj", sd[pre + "down_proj"][j]
            else:
                key = pre + "gate_up_proj"
                dst = sd[key][j, :I] if proj == "gate_proj" else sd[key][j, I:]
        else:
            key, dst = base, sd[base]
        assert dst.shape == x.shape, (base, tuple(dst.shape), tuple(x.shape))
        dst.copy_(x)
        filled.add(key)
    assert not pending, sorted(pending)[:5]
    missing = [k for k in sd if k not in filled and "rotary" not in k and "inv_freq" not in k]
    assert not missing, missing
    print("attn:", config._attn_implementation, "experts:", getattr(model.config, "_experts_implementation", None))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--lengths", default="64,2100")
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args()
    import transformers
    from oracle_hf import IndexerRecorder, index_records
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    c = config()
    ckpt = os.path.join(a.out_dir, "ckpt")
    t0 = time.time()
    total = write_checkpoint(c, ckpt, a.seed, dev)
    t1 = time.time()
    print(f"checkpoint {ckpt}: {total / 1e9:.2f} GB in {t1 - t0:.1f} s", flush=True)
    model = build_model(c, ckpt, dev)
    t2 = time.time()
    print(f"transformers model loaded from the file in {t2 - t1:.1f} s", flush=True)
    V, topk = c["vocab_size"], c["index_topk"]
    rec = IndexerRecorder(model)
    hidden = {}
    model.model.layers[0].register_forward_hook(
        lambda m, i, o: hidden.__setitem__(0, (o[0] if isinstance(o, tuple) else o)[0].detach().clone()))
    fx = oc.Fixture()
    fx.meta.update(oracle="transformers DeepseekV32ForCausalLM", transformers=transformers.__version__,
                   torch=torch.__version__, device=torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                   model="fullwidth one MoE layer, vocab 4096", mode="exact", dtype="float32",
                   attn_implementation="eager", experts_implementation="eager", tf32=False,
                   weights="fp8 * scale_inv dequantized to FP32, read back from the checkpoint file",
                   seed=a.seed, index_topk=topk, checkpoint_bytes=total, prompts=[])
    with torch.no_grad():
        for pi, n in enumerate(int(x) for x in a.lengths.split(",")):
            toks = oc.prompt_tokens(pi, n, V)
            rec.take()
            hidden.clear()
            ts = time.time()
            logits = model(torch.tensor([toks], device=dev), use_cache=False, logits_to_keep=0).logits[0]
            if dev == "cuda":
                torch.cuda.synchronize()
            fx.add(f"p{pi}.logits", logits)
            fx.add(f"p{pi}.hidden", hidden[0])
            pos, sets, gaps = index_records(rec.take(), 0, topk).get(0, ([], [], []))
            if sets:
                fx.add(f"p{pi}.index", torch.tensor(sets, dtype=torch.float32))
            fx.meta["prompts"].append({"tokens": toks, "index_pos": pos, "index_gaps": gaps})
            print(f"prompt {pi}: {n} tokens in {time.time() - ts:.2f} s, {len(pos)} sparse rows, "
                  f"min boundary gap {min(gaps) if gaps else float('nan'):.3g}", flush=True)
    fx.write(a.out_dir, "oracle_hf_fullwidth")
    print(f"oracle written to {a.out_dir}/oracle_hf_fullwidth.{{bin,json}} ({time.time() - t0:.1f} s total)")


if __name__ == "__main__":
    main()
