"""Unit tests of the Oracle B glue (official_kernels.py) on hand-computed values.
Run: python3 test_official_kernels.py THIRD_PARTY_DIR  (needs torch >= 2.1 for float8, scipy)."""
import sys

import torch

import official_kernels as ok


def check(name, got, want, tol=0.0):
    got = torch.as_tensor(got, dtype=torch.float64).flatten()
    want = torch.as_tensor(want, dtype=torch.float64).flatten()
    err = (got - want).abs().max().item()
    assert got.shape == want.shape and err <= tol, f"{name}: got {got.tolist()[:8]} want {want.tolist()[:8]}"
    print(f"ok {name}")


def main(tp):
    ok.install(tp)
    # act_quant: amax 3 -> 3/448 = 2^-7.22 -> UE8M0 scale 2^-7; 3*128 = 384, 0.5*128 = 64, -1*128 = -128.
    x = torch.zeros(1, 128, dtype=torch.bfloat16)
    x[0, 0], x[0, 1], x[0, 2] = 3.0, 0.5, -1.0
    q, s = ok.act_quant(x, 128, "ue8m0")
    check("act_quant scale ue8m0", s, [2.0 ** -7])
    check("act_quant codes", q.float()[0, :3], [384.0, 64.0, -128.0])
    # Without ue8m0 the scale is amax/448 and the amax element maps to 448.
    q2, s2 = ok.act_quant(x, 128, None)
    check("act_quant scale plain", s2, [3.0 / 448.0], 1e-9)
    check("act_quant amax code", q2.float()[0, 0], [448.0])
    # 0.1 * 128 = 12.8 -> E4M3 grid at [8,16) has step 1 -> 13 (RNE).
    x3 = torch.zeros(1, 128, dtype=torch.bfloat16); x3[0, 0] = 3.0; x3[0, 5] = 0.1
    q3, _ = ok.act_quant(x3, 128, "ue8m0")
    check("act_quant rounding", q3.float()[0, 5], [13.0])
    # amax floor: all zeros -> amax 1e-4 -> 1e-4/448 = 2^-22.1 -> scale 2^-22 (FlashMLA's rule agrees).
    _, s4 = ok.act_quant(torch.zeros(2, 256, dtype=torch.bfloat16), 128, "ue8m0")
    check("act_quant zero floor", s4, [2.0 ** -22] * 4)
    fm = ok._tp["flashmla"]._cast_scale_inv_to_ue8m0(torch.tensor([3.0 / 448.0, 0.0]))
    check("flashmla ue8m0 cross-check", fm, [2.0 ** -7, 2.0 ** -13])  # clamp 1e-4 -> 2^ceil(-13.29)
    # fp8_gemm: K = 256 (two blocks). a = [1]*128 ++ [2]*128 with scales [0.5, 0.25];
    # b row 0 = [1]*256, scale [[2, 4]] -> 128*1*1*0.5*2 + 128*2*1*0.25*4 = 128 + 256 = 384.
    a = torch.cat([torch.ones(1, 128), 2 * torch.ones(1, 128)], 1).to(torch.float8_e4m3fn)
    b = torch.ones(1, 256).to(torch.float8_e4m3fn)
    torch.set_default_dtype(torch.bfloat16)
    c = ok.fp8_gemm(a, torch.tensor([[0.5, 0.25]]), b, torch.tensor([[2.0, 4.0]]))
    torch.set_default_dtype(torch.float32)
    assert c.dtype == torch.bfloat16
    check("fp8_gemm blocks", c.float(), [384.0])
    # fp8_index: q heads [1,..], [-1,..] (d=128), k = [1,..]: relu -> 128 and 0; weights [2, 5]; k_s 0.5 -> 128.
    qi = torch.stack([torch.ones(128), -torch.ones(128)]).view(1, 1, 2, 128).to(torch.float8_e4m3fn)
    ki = torch.ones(1, 1, 128).to(torch.float8_e4m3fn)
    sc = ok.fp8_index(qi, torch.tensor([2.0, 5.0]).view(1, 1, 2, 1), ki, torch.tensor([[[0.5]]]))
    check("fp8_index", sc, [128.0])
    # Hadamard: H e_0 = all ones; scale 128^-0.5 -> 0.08838834764 (BF16: 0.08837890625).
    e0 = torch.zeros(1, 128, dtype=torch.bfloat16); e0[0, 0] = 1
    y = ok.hadamard_transform(e0, 128 ** -0.5)
    check("hadamard e0", y.float(), [0.08837890625] * 128)
    # H e_1 alternates +-: Sylvester order.
    e1 = torch.zeros(1, 4); e1[0, 1] = 1
    check("hadamard order", ok.hadamard_transform(e1, 1.0), [1, -1, 1, -1])
    print("glue tests: 12 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
