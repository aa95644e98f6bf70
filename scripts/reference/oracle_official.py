#!/usr/bin/env python3
"""Oracle B (D28, official numerics): DeepSeek's Nov-2025 demo `inference/model.py` in plain PyTorch
with its tilelang kernels replaced by official_kernels.py (third-party casts, SciPy Hadamard).
Patches: Gate bias condition `dim == 7168` -> always (tiny models have e_score_correction_bias);
`dist.broadcast` -> no-op (single process). BF16 default dtype as in the demo's generate.py;
max_seq_len 8192 (> 4096, so YaRN and mscale are on, oracles.md 3.2).
Usage: oracle_official.py CKPT_DIR PRESET OUT_DIR THIRD_PARTY_DIR
"""
import hashlib
import json
import os
import sys
import types

import torch

import oracle_common as oc
import official_kernels as ok

# Tolerances, derived before the run (D24). Both sides round to BF16 / FP8 at the same points
# (docs/numerics.md mode map) except attention: the demo's prefill runs the expanded MHA form with
# BF16 einsums and a BF16 softmax; the engine runs the absorbed form with FP32 scores/softmax
# (documented deviations 1-2). That changes attention outputs by ~1 BF16 ulp (2^-8 relative,
# normwise ~2^-9 = 2e-3). An input difference of relative size d flips an E4M3 rounding with
# probability ~ d / 2^-3 per element, each flip worth 2^-4 relative on average: normwise
# sqrt(2e-3 / 0.125) * 2^-4 = 8e-3 on the o_proj input, diluted by the residual stream (attention
# adds ~1/2 of the update). Over 3 layers plus identical-rounding noise: ~1e-2 normwise for hidden
# states and logits. Indexer gaps below EPS_GAP (relative) may flip under that noise.
# Note (numdbg, after the run): this derivation missed that every FP8 quantizer amplifies an input
# change d to sqrt(d * q) (q the E4M3 step), so the ~4e-3 attention difference decorrelates the
# two sides' FP8 roundings within ~2 layers; the CI tests no longer use TOL_LOGITS/TOL_HIDDEN for
# the shipped mode (tests/model/test_oracle_layers.cpp, docs/numerics.md "Oracle parity").
TOL_HIDDEN = 2e-2
TOL_LOGITS = 2e-2
EPS_GAP = 2e-2
PROMPT_LENGTHS = [5, 16, 40, 100]
GREEDY = {"prompts": [0, 2], "steps": 16}
# real-geometry (index_topk 128): one prompt below and one above index_topk, so the demo's sparse
# selection (top-128 of up to 300 keys) is exercised; same tolerance derivation as above.
PROMPT_LENGTHS_RG = [40, 300]
GREEDY_RG = {"prompts": [0, 1], "steps": 8}
LAST_RG = 8   # real-geometry keeps the logits of the last 8 positions and hidden states at a few
              # positions (hidden_pos in the metadata), so the fixture stays small

NAMES = [("model.embed_tokens", "embed"), ("model.norm", "norm"), ("lm_head", "head"),
         ("model.layers.", "layers."), (".self_attn.", ".attn."), (".mlp.", ".ffn."),
         ("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
         ("q_a_proj", "wq_a"), ("q_a_layernorm", "q_norm"), ("q_b_proj", "wq_b"),
         ("kv_a_proj_with_mqa", "wkv_a"), ("kv_a_layernorm", "kv_norm"), ("kv_b_proj", "wkv_b"),
         ("o_proj", "wo"), ("gate_proj", "w1"), ("down_proj", "w2"), ("up_proj", "w3"),
         ("e_score_correction_bias", "bias"), ("weight_scale_inv", "scale")]


def demo_name(n):
    """Official HF tensor name -> demo parameter name (DeepSeek's convert.py mapping)."""
    for a, b in NAMES:
        n = n.replace(a, b)
    return n


def load_demo(tp, transform=None):
    """Registers the glue kernels, patches and executes the demo's model.py from `tp`; `transform`
    (optional) rewrites its source first (oracle_official_dump.py adds dump calls). -> (module, sha256
    of the unpatched source)."""
    ok.install(tp)
    path = os.path.join(tp, "model.py")
    src = open(path).read()
    sha = hashlib.sha256(src.encode()).hexdigest()
    assert src.count("if self.dim == 7168 else None") == 1
    src = src.replace("if self.dim == 7168 else None", "if True else None")
    if transform is not None:
        src = transform(src)
    demo = types.ModuleType("dsv32_demo_model")
    exec(compile(src, path, "exec"), demo.__dict__)
    demo.dist.broadcast = lambda *a, **k: None
    return demo, sha


def build_model(demo, ckpt):
    """The demo's Transformer for checkpoint `ckpt` on the GPU (CPU without one), BF16 default dtype,
    every parameter loaded from the checkpoint. -> (model, config.json dict, device)."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    ckpt_tensors = oc.read_checkpoint(ckpt)
    torch.backends.cuda.matmul.allow_tf32 = False
    # cuBLAS may otherwise reduce BF16 GEMM partial sums in BF16 (split-K): a GPU-library artifact,
    # not the model's numerics. Seen on real-geometry (first run, 2026-11-29): the 300-token
    # prompt's attention einsum over 300 keys differed from FP32 accumulation by ~1 BF16 ulp at
    # random, 2e-2 normwise at layer 0 after the FP8 quantizers, while the 40-token prompt was
    # bit-identical to the engine's emulation of the demo.
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.set_default_dtype(torch.bfloat16)
    torch.set_default_device(dev)
    c = json.load(open(f"{ckpt}/config.json"))
    args = demo.ModelArgs(
        max_batch_size=1, max_seq_len=8192, dtype="fp8", scale_fmt=c["quantization_config"]["scale_fmt"],
        vocab_size=c["vocab_size"], dim=c["hidden_size"], inter_dim=c["intermediate_size"],
        moe_inter_dim=c["moe_intermediate_size"], n_layers=c["num_hidden_layers"],
        n_dense_layers=c["first_k_dense_replace"], n_heads=c["num_attention_heads"],
        n_routed_experts=c["n_routed_experts"], n_shared_experts=c["n_shared_experts"],
        n_activated_experts=c["num_experts_per_tok"], n_expert_groups=c["n_group"],
        n_limited_groups=c["topk_group"], score_func=c["scoring_func"], route_scale=c["routed_scaling_factor"],
        q_lora_rank=c["q_lora_rank"], kv_lora_rank=c["kv_lora_rank"], qk_nope_head_dim=c["qk_nope_head_dim"],
        qk_rope_head_dim=c["qk_rope_head_dim"], v_head_dim=c["v_head_dim"],
        original_seq_len=c["rope_scaling"]["original_max_position_embeddings"], rope_theta=float(c["rope_theta"]),
        rope_factor=c["rope_scaling"]["factor"], beta_fast=c["rope_scaling"]["beta_fast"],
        beta_slow=c["rope_scaling"]["beta_slow"], mscale=c["rope_scaling"]["mscale"],
        index_n_heads=c["index_n_heads"], index_head_dim=c["index_head_dim"], index_topk=c["index_topk"])
    model = demo.Transformer(args)
    params = dict(model.named_parameters())
    L = c["num_hidden_layers"]
    loaded = set()
    with torch.no_grad():
        for n, t in ckpt_tensors.items():
            if n.startswith(f"model.layers.{L}."):
                continue
            d = demo_name(n)
            assert d in params, f"{n} -> {d} not a demo parameter"
            p = params[d]
            assert tuple(p.shape) == tuple(t.shape), (d, p.shape, t.shape)
            p.copy_(t.to(dev).to(p.dtype) if t.dtype != torch.float8_e4m3fn else t.to(dev))
            loaded.add(d)
    missing = sorted(set(params) - loaded)
    assert not missing, missing
    return model, c, dev


def main(ckpt, preset, out_dir, tp):
    prompt_lengths = PROMPT_LENGTHS_RG if preset == "real-geometry" else PROMPT_LENGTHS
    greedy = GREEDY_RG if preset == "real-geometry" else GREEDY
    demo, sha = load_demo(tp)
    model, c, dev = build_model(demo, ckpt)
    L = c["num_hidden_layers"]
    V, topk = c["vocab_size"], c["index_topk"]
    hidden, normed = {}, {}
    for i, blk in enumerate(model.layers):
        blk.register_forward_hook(lambda m, a, o, _i=i: hidden.__setitem__(_i, (o[0].float() + o[1].float())[0].clone()))
    model.norm.register_forward_hook(lambda m, a, o: normed.__setitem__("h", o[0] if isinstance(o, tuple) else o))
    idx_out = []
    for blk in model.layers:
        blk.attn.indexer.register_forward_hook(lambda m, a, o: idx_out.append(o[0].clone()))

    fx = oc.Fixture()
    meta = fx.meta
    meta.update(oracle="DeepSeek-V3.2 demo inference/model.py (Nov 2025, transformers deepseek_files copy)",
                model_py_sha256=sha, patches=["Gate bias: 'dim == 7168' -> always", "dist.broadcast -> no-op"],
                kernels="official_kernels.py: DeepGEMM per_token_cast_to_fp8(use_ue8m0), per-128-K-block FP32 fp8_gemm, fp8_index in FP32, scipy Hadamard",
                third_party=open(os.path.join(tp, "SOURCES")).read(), torch=torch.__version__,
                device=torch.cuda.get_device_name() if dev == "cuda" else "cpu", preset=preset, mode="official",
                default_dtype="bfloat16", max_seq_len=8192, bf16_reduced_precision_reduction=False, tol_hidden=TOL_HIDDEN, tol_logits=TOL_LOGITS,
                eps_gap=EPS_GAP, index_topk=topk, prompts=[], greedy=[],
                last=LAST_RG if preset == "real-geometry" else None)
    with torch.inference_mode():
        for pi, n in enumerate(prompt_lengths):
            toks = oc.prompt_tokens(pi, n, V)
            ok.RECORD["index_score"].clear(); idx_out.clear()
            model(torch.tensor([toks]), 0)
            h = normed["h"][0]
            ent = {"tokens": toks, "index": {}}
            if preset == "real-geometry":
                hp = sorted({0, n // 2, min(n - 1, topk - 1), n - 1})
                ent["hidden_pos"] = hp
                fx.add(f"p{pi}.logits_last", model.head(h[-LAST_RG:].float()))
                for l in range(L):
                    fx.add(f"p{pi}.hidden.{l}", hidden[l][hp])
            else:
                fx.add(f"p{pi}.logits", model.head(h.float()))
                for l in range(L):
                    fx.add(f"p{pi}.hidden.{l}", hidden[l])
            if n > 1:
                mask = torch.full((n, n), float("-inf")).triu_(1).float()
                for l in range(L):
                    sc = ok.RECORD["index_score"][l][0].float() + mask
                    pos, sets, gaps = [], [], []
                    for r in range(topk, n):
                        row = sc[r, :r + 1].double()
                        s = torch.sort(row, descending=True).values
                        gaps.append(((s[topk - 1] - s[topk]) / row.abs().max()).item())
                        pos.append(r)
                        sets.append(sorted(idx_out[l][r].tolist()))
                    ent["index"][str(l)] = {"pos": pos, "sets": sets, "gaps": gaps}
            meta["prompts"].append(ent)
        # Greedy (D24): the demo's own generate loop shape: prefill, then one-token decode steps (MQA form).
        for pi in greedy["prompts"]:
            seq = list(meta["prompts"][pi]["tokens"])
            steps = []
            lg = model(torch.tensor([seq]), 0)[0]
            for s in range(greedy["steps"]):
                top2 = torch.topk(lg.float(), 2)
                steps.append({"token": int(top2.indices[0]), "margin": float(top2.values[0] - top2.values[1]),
                              "rms": float(lg.double().pow(2).mean().sqrt())})
                seq.append(int(top2.indices[0]))
                lg = model(torch.tensor([seq[-1:]]), len(seq) - 1)[0]
            meta["greedy"].append({"prompt": pi, "steps": steps})
    fx.write(out_dir, f"oracle_official_{preset}")
    print("oracle B written")


if __name__ == "__main__":
    main(*sys.argv[1:5])
