#!/usr/bin/env python3
"""Oracle A (D23 exact mode): transformers' DeepseekV32ForCausalLM in FP32 on a D25 preset.

FP32 weights W = fp8 * scale_inv (dequantized here, HF's FP8 path never runs), eager attention,
eager experts, no TF32. Writes oracle_hf_<preset>.{bin,json} (see oracle_common.Fixture).
Usage: oracle_hf.py CKPT_DIR PRESET OUT_DIR
"""
import json
import sys
import time

import torch

import oracle_common as oc

# Tolerances, derived before the run (D24). Both sides compute in FP32 (u = 2^-24 = 6e-8) with
# different reduction orders and algebraically equal but differently ordered formulas (HF: expanded
# MHA, half-split interleave permutation, weights @ relu(q.k * d^-0.5); engine: absorbed MQA, fixed
# 16-lane sums). A length-n FP32 dot has a typical relative error ~ sqrt(n) u (n <= 512: 1.4e-6);
# ~10 chained GEMM/norm steps per layer x 3 layers add as a random walk (x sqrt(30) -> 8e-6) and a
# random tiny network may amplify by ~10 (softmax, SwiGLU, norms): ~1e-4 normwise for hidden states
# and logits. Indexer boundary: a score gap below EPS_GAP (relative to the row's largest |score|)
# can flip at FP32 noise (1e-6 rel per score, x 100 margin); those rows get the oracle's indices.
TOL_HIDDEN = 1e-4
TOL_LOGITS = 1e-4
EPS_GAP = 1e-4
PROMPT_LENGTHS = [5, 16, 40, 100]
CHUNK = {"prompt": 2, "split": 24}   # prompt 2 (40 tokens): prefill 24, then 16 at start_pos 24
GREEDY = {"prompts": [0, 2], "steps": 16}


def hf_state_dict(ck, c):
    """Official names -> transformers 5.17 names (fused experts gate_up_proj [E, 2I, D], down_proj [E, D, I])."""
    sd = {}
    L = c["num_hidden_layers"]
    for n, t in ck.items():
        if n.endswith("_scale_inv") or n.startswith(f"model.layers.{L}."):
            continue
        if ".mlp.experts." in n:
            continue
        w = oc.dequantize(t, ck[n + "_scale_inv"]) if t.dtype == torch.float8_e4m3fn else t.float()
        sd[n] = w
    for i in range(L):
        p = f"model.layers.{i}.mlp.experts."
        if p + "0.gate_proj.weight" not in ck:
            continue
        E = c["n_routed_experts"]
        deq = lambda j, w: oc.dequantize(ck[f"{p}{j}.{w}.weight"], ck[f"{p}{j}.{w}.weight_scale_inv"])
        sd[p + "gate_up_proj"] = torch.stack([torch.cat([deq(j, "gate_proj"), deq(j, "up_proj")], 0) for j in range(E)])
        sd[p + "down_proj"] = torch.stack([deq(j, "down_proj") for j in range(E)])
    return sd


class IndexerRecorder:
    """Wraps DeepseekV32Indexer.forward: records the scores given to topk and the returned indices."""

    def __init__(self, model):
        self.calls = []
        for layer_idx, layer in enumerate(model.model.layers):
            mod = layer.self_attn.indexer
            orig = mod.forward

            def wrapped(*a, _orig=orig, _l=layer_idx, **k):
                seen = []
                real_topk = torch.Tensor.topk

                def rec_topk(self_t, *ta, **tk):
                    seen.append(self_t.detach().clone())
                    return real_topk(self_t, *ta, **tk)
                torch.Tensor.topk = rec_topk
                try:
                    idx = _orig(*a, **k)
                finally:
                    torch.Tensor.topk = real_topk
                self.calls.append((_l, seen[-1][0], idx[0].detach().clone()))
                return idx
            mod.forward = wrapped

    def take(self):
        c, self.calls = self.calls, []
        return c


def index_records(calls, start_pos, topk):
    """Per layer: rows with > topk causal keys -> (positions, sorted index sets, relative gaps)."""
    out = {}
    for layer, scores, idx in calls:
        pos, sets, gaps = [], [], []
        for r in range(scores.shape[0]):
            p = start_pos + r
            if p + 1 <= topk:
                continue
            row = scores[r, :p + 1].double()
            s = torch.sort(row, descending=True).values
            gaps.append(((s[topk - 1] - s[topk]) / row.abs().max()).item())
            pos.append(p)
            sets.append(sorted(idx[r].tolist()))
        out[layer] = (pos, sets, gaps)
    return out


def load_model(ckpt):
    """(model, config dict, device): FP32 eager DeepseekV32ForCausalLM with the preset's dequantized weights."""
    return build_model(json.load(open(f"{ckpt}/config.json")), oc.read_checkpoint(ckpt))


def build_model(c, ck):
    """(model, c, device) from a config.json dict and a {name: tensor} checkpoint (official names)."""
    from transformers import DeepseekV32Config, DeepseekV32ForCausalLM
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    hc = dict(c)
    hc.pop("quantization_config")
    config = DeepseekV32Config(**hc)
    for k in ("_attn_implementation", "_experts_implementation"):
        try:
            setattr(config, k, "eager")
        except Exception as e:  # noqa: BLE001
            print("config", k, e)
    torch.set_default_dtype(torch.float32)
    model = DeepseekV32ForCausalLM(config)
    try:
        model.set_attn_implementation("eager")
    except Exception as e:  # noqa: BLE001
        print("set_attn_implementation:", e)
    try:
        model.set_experts_implementation("eager")
    except Exception as e:  # noqa: BLE001
        print("set_experts_implementation:", e)
    sd = hf_state_dict(ck, c)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "rotary" not in m and "inv_freq" not in m]
    print("missing:", missing, "unexpected:", unexpected)
    assert not missing and not unexpected, (missing, unexpected)
    model = model.to(dev).float().eval()
    print("attn:", config._attn_implementation, "experts:", getattr(model.config, "_experts_implementation", None))
    return model, c, dev


def main(ckpt, preset, out_dir):
    import transformers
    model, c, dev = load_model(ckpt)
    config = model.config
    V, topk = c["vocab_size"], c["index_topk"]
    rec = IndexerRecorder(model)
    hidden = {}
    for i, layer in enumerate(model.model.layers):
        layer.register_forward_hook(lambda m, a, o, _i=i: hidden.__setitem__(_i, (o[0] if isinstance(o, tuple) else o)[0].detach().clone()))

    fx = oc.Fixture()
    meta = fx.meta
    meta.update(oracle="transformers DeepseekV32ForCausalLM", transformers=transformers.__version__,
                torch=torch.__version__, device=torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                preset=preset, mode="exact", dtype="float32", attn_implementation="eager",
                experts_implementation="eager", tf32=False, weights="fp8 * scale_inv dequantized to FP32 at load",
                tol_hidden=TOL_HIDDEN, tol_logits=TOL_LOGITS, eps_gap=EPS_GAP, index_topk=topk,
                tolerance_reason=__doc__.split("\n")[0] + "; see TOL_* comment in oracle_hf.py",
                prompts=[], chunked={}, greedy=[])
    with torch.no_grad():
        for pi, n in enumerate(PROMPT_LENGTHS):
            toks = oc.prompt_tokens(pi, n, V)
            ids = torch.tensor([toks], device=dev)
            rec.take(); hidden.clear()
            logits = model(ids, use_cache=False, logits_to_keep=0).logits[0]
            fx.add(f"p{pi}.logits", logits)
            for l in range(c["num_hidden_layers"]):
                fx.add(f"p{pi}.hidden.{l}", hidden[l])
            recs = index_records(rec.take(), 0, topk)
            ent = {"tokens": toks, "index": {}}
            for l, (pos, sets, gaps) in recs.items():
                ent["index"][str(l)] = {"pos": pos, "sets": sets, "gaps": gaps}
            meta["prompts"].append(ent)
        # Chunked prefill / start_pos > 0 through HF's cache.
        toks = meta["prompts"][CHUNK["prompt"]]["tokens"]
        a = CHUNK["split"]
        out1 = model(torch.tensor([toks[:a]], device=dev), use_cache=True, logits_to_keep=0)
        rec.take()
        out2 = model(torch.tensor([toks[a:]], device=dev), past_key_values=out1.past_key_values,
                     use_cache=True, logits_to_keep=0)
        recs = index_records(rec.take(), a, topk)
        fx.add("chunk.logits", out2.logits[0])
        meta["chunked"] = {"prompt": CHUNK["prompt"], "split": a,
                           "index": {str(l): {"pos": p, "sets": s, "gaps": g} for l, (p, s, g) in recs.items()}}
        # Greedy continuations (D24), full recompute per step.
        for pi in GREEDY["prompts"]:
            seq = list(meta["prompts"][pi]["tokens"])
            steps = []
            for _ in range(GREEDY["steps"]):
                lg = model(torch.tensor([seq], device=dev), use_cache=False, logits_to_keep=1).logits[0, -1]
                top2 = torch.topk(lg, 2)
                steps.append({"token": int(top2.indices[0]), "margin": float(top2.values[0] - top2.values[1]),
                              "rms": float(lg.double().pow(2).mean().sqrt())})
                seq.append(int(top2.indices[0]))
            meta["greedy"].append({"prompt": pi, "steps": steps})
        rec.take()
    fx.write(out_dir, f"oracle_hf_{preset}")
    print("oracle A written", time.time())


if __name__ == "__main__":
    main(*sys.argv[1:4])
