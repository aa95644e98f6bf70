#!/bin/bash
# Regenerates tests/fixtures/oracle/* on a GPU machine (PyTorch >= 2.1, transformers 5.17, SciPy).
# Usage: scripts/reference/run_oracles.sh OUT_DIR THIRD_PARTY_DIR   (see scripts/reference/README.md)
#        scripts/reference/run_oracles.sh OUT_DIR --topk2048   (only the index_topk 2048 real-geometry run)
#        scripts/reference/run_oracles.sh OUT_DIR --mtp        (only the MTP composition fixture, tiny-a)
#        scripts/reference/run_oracles.sh OUT_DIR --dump THIRD_PARTY_DIR  (only oracle B's per-op dump, real-geometry)
set -u -o pipefail
OUT=$1; TP=$2
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
if [ "$TP" = "--topk2048" ]; then
  RG=/tmp/ckpt_real_geometry_2048
  python3 dsv32_presets.py real-geometry $RG --index-topk 2048 || exit 1
  python3 oracle_hf_real_geometry.py $RG "$OUT" --topk2048 2>&1 | tail -20
  ls -la "$OUT"
  exit 0
fi
if [ "$TP" = "--dump" ]; then
  TP=$3
  RG=/tmp/ckpt_real_geometry   # index_topk 128 (the preset's default)
  python3 -c "import torch; print('torch', torch.__version__)"
  python3 dsv32_presets.py real-geometry $RG || exit 1
  python3 oracle_official_dump.py $RG "$OUT" "$TP" 2>&1 | tee "$OUT/dump.log" | tail -70
  ls -la "$OUT"
  exit 0
fi
if [ "$TP" = "--mtp" ]; then
  CK=/tmp/ckpt_tiny_a
  python3 dsv32_presets.py tiny-a $CK || exit 1
  python3 oracle_mtp.py $CK tiny-a "$OUT" 2>&1 | tail -20
  ls -la "$OUT"
  exit 0
fi
python3 -c "import torch, transformers, scipy; print('torch', torch.__version__, 'transformers', transformers.__version__, 'scipy', scipy.__version__)"
python3 test_official_kernels.py "$TP" 2>&1 | tee "$OUT/glue_tests.log"
CK=/tmp/ckpt_tiny_a
python3 dsv32_presets.py tiny-a $CK --sha256 "$OUT/presets_sha256_tiny-a.json" || exit 1
python3 oracle_hf.py $CK tiny-a "$OUT" 2>&1 | tail -40
python3 oracle_official.py $CK tiny-a "$OUT" "$TP" 2>&1 | tail -40
python3 oracle_mtp.py $CK tiny-a "$OUT" 2>&1 | tail -20
RG=/tmp/ckpt_real_geometry   # index_topk 128 (the preset's default)
python3 dsv32_presets.py real-geometry $RG --sha256 "$OUT/presets_sha256_real-geometry.json" || exit 1
python3 oracle_hf_real_geometry.py $RG "$OUT" 2>&1 | tail -20
python3 oracle_official.py $RG real-geometry "$OUT" "$TP" 2>&1 | tail -20
ls -la "$OUT"
