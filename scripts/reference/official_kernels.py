"""Glue: the tilelang kernels of DeepSeek's demo `inference/kernel.py` rebuilt from third-party code (D28).

The demo's `model.py` does `from kernel import act_quant, fp8_gemm, fp8_index` and
`from fast_hadamard_transform import hadamard_transform`. `install(third_party_dir)` registers modules
of those names whose functions are built from:
  - DeepGEMM `deep_gemm/utils/math.py` `per_token_cast_to_fp8(x, use_ue8m0)` (per-token 1x128 E4M3
    cast with UE8M0 power-of-two scales, amax clamped to 1e-4) -> `act_quant`;
  - FlashMLA `tests/quant.py` `_cast_scale_inv_to_ue8m0` (cross-check of the UE8M0 rule, tests);
  - `scipy.linalg.hadamard` (Sylvester order) -> `hadamard_transform`.
Only the glue below is ours (never imported by the engine). The numerics follow the demo's kernels
(spec/model.md 9.2, 5.2.10; oracles.md 1.3 items 17, 19, 46): per-128-K-block FP32 partial sums
times (a_scale * b_scale), FP32 accumulation, output in the default dtype (BF16).
"""
import importlib.util
import os
import sys
import types

import torch

_tp = {}
RECORD = {"index_score": []}  # fp8_index outputs, for the boundary-gap fixture


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def act_quant(x, block_size=128, scale_fmt=None):
    """x [..., K] (BF16) -> (E4M3 [..., K], FP32 scales [..., K/block_size]); UE8M0 iff scale_fmt."""
    assert x.size(-1) % block_size == 0
    dg = _tp["deepgemm"]
    x2 = x.reshape(-1, x.size(-1))
    q, s = dg.per_token_cast_to_fp8(x2, use_ue8m0=scale_fmt is not None, gran_k=block_size)
    return q.view(x.shape), s.view(*x.shape[:-1], x.size(-1) // block_size)


def fp8_gemm(a, a_s, b, b_s):
    """a E4M3 [..., K] with a_s [..., K/128]; b E4M3 [N, K] with b_s [ceil(N/128), K/128].
    C = sum over K blocks j of (a_j . b_j, FP32) * (a_s[:, j] * b_s[n/128, j]); returned in the default dtype."""
    K = a.size(-1)
    a2 = a.reshape(-1, K).float()
    as2 = a_s.reshape(-1, a_s.size(-1)).float()
    N = b.size(0)
    bf = b.float()
    bs = b_s.float().repeat_interleave(128, dim=0)[:N]  # [N, K/128]
    acc = torch.zeros(a2.size(0), N, dtype=torch.float32, device=a.device)
    for j in range(K // 128):
        part = a2[:, j * 128:(j + 1) * 128] @ bf[:, j * 128:(j + 1) * 128].t()
        acc += part * (as2[:, j:j + 1] * bs[:, j][None, :])
    return acc.to(torch.get_default_dtype()).view(*a.shape[:-1], N)


def fp8_index(q, weights, k, k_s):
    """q E4M3 [b, s, h, d]; weights FP32 [b, s, h, 1] (= w * h^-0.5 * q_scale * d^-0.5);
    k E4M3 [b, t, d]; k_s FP32 [b, t, 1] -> FP32 [b, s, t] = k_s[t] * sum_h relu(q_h . k_t) * weights_h."""
    logits = torch.einsum("bshd,btd->bsht", q.float(), k.float())
    score = (logits.clamp_min(0) * weights.float()).sum(dim=2)
    out = score * k_s.float().view(k_s.size(0), 1, -1)
    RECORD["index_score"].append(out.detach().clone())
    return out


_H = {}


def hadamard_transform(x, scale=1.0):
    """y = scale * H_n x over the last dim (Sylvester H from scipy), FP32 inside, x.dtype out."""
    n = x.size(-1)
    if n not in _H:
        import scipy.linalg
        _H[n] = torch.tensor(scipy.linalg.hadamard(n), dtype=torch.float32)
    H = _H[n].to(x.device)
    return ((x.float() @ H.t()) * scale).to(x.dtype)


def install(third_party_dir):
    """Loads the fetched third-party files and registers `kernel` and `fast_hadamard_transform`."""
    _tp["deepgemm"] = _load(os.path.join(third_party_dir, "deepgemm_math.py"), "tp_deepgemm_math")
    _tp["flashmla"] = _load(os.path.join(third_party_dir, "flashmla_quant.py"), "tp_flashmla_quant")
    k = types.ModuleType("kernel")
    k.act_quant, k.fp8_gemm, k.fp8_index = act_quant, fp8_gemm, fp8_index
    sys.modules["kernel"] = k
    h = types.ModuleType("fast_hadamard_transform")
    h.hadamard_transform = hadamard_transform
    sys.modules["fast_hadamard_transform"] = h
