#!/usr/bin/env python3
"""MTP by composition (issue 3; spec/model.md 7.1; D23 exact mode) on a D25 preset.

No oracle implements DeepSeek's MTP module (spec/oracles.md D19), so it is composed here from code
nobody on the project wrote: transformers' DeepseekV32ForCausalLM built with ONE decoder layer
(first_k_dense_replace 0, so it is the MoE variant) that is loaded with the MTP layer's weights
(model.layers.<L>.{self_attn,mlp,input_layernorm,post_attention_layernorm} -> model.layers.0),
its final norm = shared_head.norm and its lm_head = shared_head.head; so transformers runs the
decoder layer (MLA + indexer + MoE, its own mask, RoPE and position handling), the shared-head norm
and the head. Only the MTP input is plain PyTorch (FP32):
    u = eh_proj([RMSNorm(embed(x)) * enorm ; RMSNorm(h) * hnorm])   (embedding first, spec 7.1)
fed as inputs_embeds. h = the main model's (transformers', FP32) final hidden states, captured by
a hook on model.norm: both wirings are recorded, "post_norm" (model.norm output: SGLang/vLLM) and
"pre_norm" (its input). Row p pairs (x_{p+1}, H_p) at position p, as the engine's mtp_forward;
the last row's token is the main model's greedy next token. Weights: FP8 * scale_inv dequantized to
FP32 (oracle_hf.hf_state_dict), eager attention and experts, no TF32.
Writes oracle_mtp_<preset>.{bin,json} (oracle_common.Fixture); read by tests/model/test_oracle_mtp.cpp.
Usage: oracle_mtp.py CKPT_DIR PRESET OUT_DIR
"""
import sys
import time

import torch

import oracle_common as oc
import oracle_hf

# Tolerances, derived before the run (D24), with oracle_hf.py's argument: FP32 on both sides
# (u = 6e-8), different reduction orders and formula arrangements; ~10 chained GEMM/norm steps per
# layer as a random walk; here the main model's 3 layers + eh_proj + the MTP layer + shared head
# (~45 steps -> sqrt(45) * sqrt(512) u ~ 1e-5), x ~10 amplification of a random tiny network:
# 1e-4 normwise for the main hidden states, the MTP hidden states and the draft logits (the same
# bar as Oracle A; oracle A measured 6e-7 at 3 layers, so a failure here is a real difference).
# Indexer boundary (the MTP layer has its own indexer; index_topk 16 < 40): the engine cannot be
# fed the oracle's indices in the MTP layer, so every row's relative top-k score gap is recorded
# and the test requires it >= EPS_GAP (FP32 noise ~1e-6 relative per score, x 100 margin).
TOL_HIDDEN = 1e-4
TOL_LOGITS = 1e-4
EPS_GAP = 1e-4
PROMPT_LENGTHS = [5, 16, 40]   # oracle_hf's prompts 0..2 (same tokens): shorter and longer than index_topk
WIRINGS = ["post_norm", "pre_norm"]
MTP_LAYER_PARTS = ("self_attn.", "mlp.", "input_layernorm.", "post_attention_layernorm.")


def mtp_checkpoint(ck, c):
    """(config dict, checkpoint dict, extra) of a one-layer model whose layer 0 is the MTP layer;
    extra = the MTP module's own tensors (enorm, hnorm, eh_proj, embed_tokens, shared_head.*)."""
    L = c["num_hidden_layers"]
    P = f"model.layers.{L}."
    c1 = dict(c, num_hidden_layers=1, first_k_dense_replace=0)
    ck1, extra = {}, {}
    for n, t in ck.items():
        if not n.startswith(P):
            continue
        rest = n[len(P):]
        if rest.startswith(MTP_LAYER_PARTS):
            ck1["model.layers.0." + rest] = t
        else:
            extra[rest] = t
    ck1["model.embed_tokens.weight"] = extra["embed_tokens.weight"]  # unused (inputs_embeds), loaded for strictness
    ck1["model.norm.weight"] = extra["shared_head.norm.weight"]
    ck1["lm_head.weight"] = extra["shared_head.head.weight"]
    return c1, ck1, extra


def f32(extra, name, dev):
    """An MTP tensor as FP32 on dev (FP8 + scale_inv dequantized, spec/oracles.md 3.9)."""
    t = extra[name]
    if t.dtype == torch.float8_e4m3fn:
        t = oc.dequantize(t, extra[name + "_scale_inv"])
    return t.float().to(dev)


def rmsnorm(x, w, eps):
    """transformers' DeepseekV32RMSNorm in FP32: x * rsqrt(mean(x^2) + eps) * w."""
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def main(ckpt, preset, out_dir):
    import transformers
    model, c, dev = oracle_hf.load_model(ckpt)
    c1, ck1, extra = mtp_checkpoint(oc.read_checkpoint(ckpt), c)
    mtp, _, _ = oracle_hf.build_model(c1, ck1)
    assert len(mtp.model.layers) == 1
    print("MTP layer mlp:", type(mtp.model.layers[0].mlp).__name__)
    eps, V, topk = c["rms_norm_eps"], c["vocab_size"], c["index_topk"]
    embed, enorm, hnorm = f32(extra, "embed_tokens.weight", dev), f32(extra, "enorm.weight", dev), f32(extra, "hnorm.weight", dev)
    eh_proj = f32(extra, "eh_proj.weight", dev)  # [D, 2D]
    seen = {}
    model.model.norm.register_forward_hook(
        lambda m, a, o: seen.update(pre=a[0][0].detach().clone(), post=o[0].detach().clone()))
    mtp.model.norm.register_forward_hook(lambda m, a, o: seen.update(mtp=o[0].detach().clone()))
    rec = oracle_hf.IndexerRecorder(mtp)

    fx = oc.Fixture()
    meta = fx.meta
    meta.update(oracle="MTP by composition: transformers DeepseekV32ForCausalLM (1 layer = MTP layer weights, "
                       "norm = shared_head.norm, lm_head = shared_head.head) on inputs_embeds = "
                       "eh_proj([enorm(embed(x)); hnorm(h)]) in PyTorch",
                transformers=transformers.__version__, torch=torch.__version__,
                device=torch.cuda.get_device_name() if dev == "cuda" else "cpu", preset=preset, mode="exact",
                dtype="float32", attn_implementation="eager", experts_implementation="eager", tf32=False,
                weights="fp8 * scale_inv dequantized to FP32 at load", tol_hidden=TOL_HIDDEN,
                tol_logits=TOL_LOGITS, eps_gap=EPS_GAP, index_topk=topk, wirings=WIRINGS,
                positions="row p: token x_{p+1}, hidden H_p, position p; last row's token = main greedy next",
                tolerance_reason=__doc__.split("\n")[0] + "; see TOL_* comment in oracle_mtp.py", prompts=[])
    with torch.no_grad():
        for pi, n in enumerate(PROMPT_LENGTHS):
            toks = oc.prompt_tokens(pi, n, V)
            seen.clear()
            logits = model(torch.tensor([toks], device=dev), use_cache=False, logits_to_keep=0).logits[0]
            pre, post = seen["pre"], seen["post"]
            assert pre.shape == (n, c["hidden_size"]), pre.shape
            nxt = int(logits[-1].argmax())
            mtp_tokens = toks[1:] + [nxt]
            fx.add(f"p{pi}.pre_norm", pre)
            fx.add(f"p{pi}.post_norm", post)
            e = rmsnorm(embed[torch.tensor(mtp_tokens, device=dev)], enorm, eps)
            ent = {"tokens": toks, "mtp_tokens": mtp_tokens, "index": {}}
            for wiring in WIRINGS:
                h = post if wiring == "post_norm" else pre
                u = torch.cat([e, rmsnorm(h, hnorm, eps)], -1) @ eh_proj.T
                rec.take()
                seen.pop("mtp", None)
                pos = torch.arange(n, device=dev)[None]
                draft = mtp(inputs_embeds=u[None], position_ids=pos, use_cache=False, logits_to_keep=0).logits[0]
                fx.add(f"p{pi}.{wiring}.draft_logits", draft)
                fx.add(f"p{pi}.{wiring}.mtp_hidden", seen["mtp"])
                recs = oracle_hf.index_records(rec.take(), 0, topk)
                p, s, g = recs.get(0, ([], [], []))
                ent["index"][wiring] = {"pos": p, "sets": s, "gaps": g}
            meta["prompts"].append(ent)
    fx.write(out_dir, f"oracle_mtp_{preset}")
    print("MTP composition fixture written", time.time())


if __name__ == "__main__":
    main(*sys.argv[1:4])
