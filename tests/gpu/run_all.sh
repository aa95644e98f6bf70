#!/usr/bin/env bash
# Every GPU test, in one device call (docs/cuda.md). Run from the repository root on the device
# machine, with build/cuda/gpu carried (built on the CPU machine: cmake -B build/cuda, target all):
#   DS_COMMIT=<commit> tests/gpu/run_all.sh [--no-smoke]
# BIN=<dir> takes the drivers from another build directory; DRIVERS="gpu_a gpu_b" runs only those.
# BENCH=1 also runs the first numbers of issue 8 (gpu_bench_model, bench_serve.sh; docs/cuda.md
# "Benchmarks") after the tests; BENCH=only runs just those (with --no-smoke: nothing else).
# Runs the D31 smoke test (unless --no-smoke) and each tests/gpu driver, keeps logs under $OUT,
# and prints one summary table last. Exit status 0 iff everything passed.
# MEMCHECK=1 adds compute-sanitizer memcheck on gpu_model (tiny-a; MEMCHECK_LEAKS=full|no, default no).
# FULLWIDTH=1 adds one full-width MoE layer vs transformers (scripts/reference/fullwidth_layer.py, then
# gpu_fullwidth; needs torch + transformers there and ~12 GB in FW_DIR=/tmp/ds_fullwidth). DRIVERS=" "
# runs no driver (e.g. DRIVERS=" " FULLWIDTH=1 tests/gpu/run_all.sh --no-smoke).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/cuda/gpu}
OUT=${OUT:-/tmp/ds_gpu}
mkdir -p "$OUT"
# gpu_model and deepserve link Debian shared libraries: tests/gpu/collect_libs.sh put them in $BIN/lib,
# with the tokenizer.json that make-model needs. Only our binaries get that library path (the
# machine's own curl breaks against Debian's libcurl).
DS_LIBS="$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[[ -f "$BIN/tokenizer.json" ]] && export DEEPSERVE_TOKENIZER_JSON="$PWD/$BIN/tokenizer.json"
declare -a SUMMARY
status=0
if [[ "${1:-}" != "--no-smoke" ]]; then
  tests/gpu/smoke.sh "$BIN" > "$OUT/smoke.md" 2>&1
  sed -n '/^device:/,$p' "$OUT/smoke.md"
  if grep -q "| FAIL" "$OUT/smoke.md"; then SUMMARY+=("| smoke | FAIL |"); status=1; else SUMMARY+=("| smoke | PASS |"); fi
fi
# Sources each driver measures (D33: recorded with a sha256 in every committed table).
declare -A SOURCES=(
  [gpu_gemm_fp8]="src/kernels/cuda_check.h src/kernels/gemm_fp8_small_m.cu src/kernels/gemm_fp8_small_m.h tests/gpu/gpu_gemm_fp8.cpp"
  [gpu_rmsnorm]="src/kernels/cuda_check.h src/kernels/rmsnorm.cu src/kernels/rmsnorm.h tests/gpu/gpu_rmsnorm.cpp tests/gpu/gpu_test_util.h"
  [gpu_act_quant]="src/kernels/cuda_check.h src/kernels/act_quant.cu src/kernels/act_quant.h tests/gpu/gpu_act_quant.cpp tests/gpu/gpu_test_util.h"
  [gpu_router]="src/kernels/cuda_check.h src/kernels/router.cu src/kernels/router.h tests/gpu/gpu_router.cpp tests/gpu/gpu_test_util.h"
  [gpu_rope]="src/kernels/cuda_check.h src/kernels/rope.cu src/kernels/rope.h tests/gpu/gpu_rope.cpp tests/gpu/gpu_test_util.h"
  [gpu_argmax]="src/kernels/cuda_check.h src/kernels/argmax.cu src/kernels/argmax.h tests/gpu/gpu_argmax.cpp tests/gpu/gpu_test_util.h"
  [gpu_gemm_fp8_any_m]="src/kernels/cuda_check.h src/kernels/act_quant.cu src/kernels/act_quant.h src/kernels/gemm_fp8.cu src/kernels/gemm_fp8.h src/kernels/gemm_fp8_small_m.h tests/gpu/gpu_gemm_fp8_any_m.cpp tests/gpu/gpu_test_util.h"
  [gpu_gemm_dense]="src/kernels/cuda_check.h src/kernels/gemm_dense.cu src/kernels/gemm_dense.h tests/gpu/gpu_gemm_dense.cpp tests/gpu/gpu_test_util.h"
  [gpu_mla_attention]="src/kernels/cuda_check.h src/kernels/mla_cache.cu src/kernels/mla_cache.h src/kernels/mla_attention.cu src/kernels/mla_attention.h src/kernels/mla_attention_tc.cu src/kernels/mla_attention_tc.h src/kernels/wgmma.cuh tests/gpu/gpu_mla_attention.cpp tests/gpu/gpu_test_util.h"
  [gpu_indexer]="src/kernels/cuda_check.h src/kernels/mla_cache.cu src/kernels/mla_cache.h src/kernels/indexer.cu src/kernels/indexer.h tests/gpu/gpu_indexer.cpp tests/gpu/gpu_test_util.h"
  [gpu_moe_experts]="src/kernels/cuda_check.h src/kernels/act_quant.cu src/kernels/act_quant.h src/kernels/gemm_fp8.cu src/kernels/gemm_fp8.h src/kernels/gemm_fp8_small_m.h src/kernels/moe_experts.cu src/kernels/moe_experts.h tests/gpu/gpu_moe_experts.cpp tests/gpu/gpu_test_util.h"
)
SOURCES[gpu_elementwise]="src/kernels/cuda_check.h src/kernels/elementwise.cu src/kernels/elementwise.h tests/gpu/gpu_elementwise.cpp tests/gpu/gpu_test_util.h"
# The exact-numerics kernels (and the shared top-k they select with) against their CPU twins.
SOURCES[gpu_exact_ops]="src/kernels/cuda_check.h src/kernels/exact_ops.cu src/kernels/exact_ops.h src/kernels/gemm_fp8_small_m.cu src/kernels/gemm_fp8_small_m.h src/kernels/indexer.cu src/kernels/indexer.h tests/gpu/gpu_exact_ops.cpp tests/gpu/gpu_test_util.h"
# The whole-model check measures the runner and every kernel it calls.
SOURCES[gpu_model]="$(ls src/cuda/*.cpp src/cuda/*.h src/kernels/*.cu src/kernels/*.h src/kernels/*.cuh | tr '\n' ' ')tests/gpu/gpu_model.cpp tests/gpu/gpu_runner_util.h tests/gpu/gpu_test_util.h"
# The runner against the oracle fixtures (tiny-a): the fixtures are part of what it measured.
SOURCES[gpu_oracle]="$(ls src/cuda/*.cpp src/cuda/*.h src/kernels/*.cu src/kernels/*.h src/kernels/*.cuh | tr '\n' ' ')tests/gpu/gpu_oracle.cpp tests/gpu/gpu_runner_util.h tests/gpu/gpu_test_util.h tests/model/test_oracle_common.h tests/fixtures/oracle/oracle_official_tiny-a.json tests/fixtures/oracle/oracle_official_tiny-a.bin tests/fixtures/oracle/oracle_hf_tiny-a.json tests/fixtures/oracle/oracle_hf_tiny-a.bin"
# CUDA graphs of the runner: replays bit-identical to eager, capture sizes, replay counts.
SOURCES[gpu_graphs]="$(ls src/cuda/*.cpp src/cuda/*.h src/kernels/*.cu src/kernels/*.h src/kernels/*.cuh | tr '\n' ' ')tests/gpu/gpu_graphs.cpp tests/gpu/gpu_runner_util.h tests/gpu/gpu_test_util.h"
DEVICE_LINE="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null), nvcc $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
[[ "${BENCH:-0}" == only ]] && DRIVERS=" "  # no test driver, no serve_cuda
for t in ${DRIVERS:-"${!SOURCES[@]}"}; do
  echo "== $t"
  [[ -x "$BIN/$t" ]] || { echo "skipped: $BIN/$t not carried"; continue; }
  [[ -n "${SOURCES[$t]:-}" ]] || { echo "skipped: $t has no SOURCES entry in run_all.sh"; SUMMARY+=("| $t | FAIL (no SOURCES entry) |"); status=1; continue; }
  if LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/$t" | grep -q "not found"; then LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/$t"; SUMMARY+=("| $t | FAIL (shared libraries) |"); status=1; continue; fi
  LD_LIBRARY_PATH="$DS_LIBS" "$BIN/$t" > "$OUT/$t.txt" 2>&1
  rc=$?
  { echo "device: $DEVICE_LINE"; echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"; echo "commit: ${DS_COMMIT:-unknown}"
    echo "command: $BIN/$t (tests/gpu/run_all.sh)"; echo "sources: ${SOURCES[$t]}"
    # shellcheck disable=SC2086
    echo "sources-sha256: $(tests/gpu/source_hash.sh ${SOURCES[$t]})"; echo; echo '```'; grep -v '^|' "$OUT/$t.txt"; echo '```'
    echo; grep '^|' "$OUT/$t.txt"; } > "$OUT/$t.md"
  grep -E "^CHECK .*FAIL|^RESULT|^\||^GEMM" "$OUT/$t.txt"
  if [[ $rc == 0 ]]; then SUMMARY+=("| $t | PASS ($(grep -c '^CHECK.*PASS' "$OUT/$t.txt") checks) |")
  else SUMMARY+=("| $t | FAIL rc=$rc ($(grep -c '^CHECK.*FAIL' "$OUT/$t.txt") failed checks) |"); status=1; fi
done
if [[ "${MEMCHECK:-}" == 1 ]]; then  # compute-sanitizer memcheck on tiny-a (--leak-check takes full|no)
  echo "== memcheck gpu_model"
  LD_LIBRARY_PATH="$DS_LIBS" compute-sanitizer --tool memcheck --leak-check "${MEMCHECK_LEAKS:-no}" "$BIN/gpu_model" \
    > "$OUT/memcheck_gpu_model.txt" 2>&1
  rc=$?
  errs=$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$OUT/memcheck_gpu_model.txt" | tail -1)
  grep -E "^CHECK .*FAIL|^=+ (ERROR|Invalid)" "$OUT/memcheck_gpu_model.txt" | head -20; echo "${errs:-no ERROR SUMMARY line}"
  if [[ $rc == 0 && "$errs" == "ERROR SUMMARY: 0 errors" ]]; then SUMMARY+=("| memcheck gpu_model (tiny-a) | PASS (0 errors) |")
  else SUMMARY+=("| memcheck gpu_model (tiny-a) | FAIL rc=$rc (${errs:-no summary}) |"); status=1; fi
fi
if [[ "${FULLWIDTH:-}" == 1 ]]; then  # one full-width MoE layer vs transformers (docs/cuda.md "Full-width layer")
  echo "== gpu_fullwidth"
  FW=${FW_DIR:-/tmp/ds_fullwidth}
  python3 scripts/reference/fullwidth_layer.py "$FW" ${FW_LENGTHS:+--lengths "$FW_LENGTHS"} > "$OUT/fullwidth_oracle.txt" 2>&1
  rc=$?
  tail -4 "$OUT/fullwidth_oracle.txt"
  if [[ $rc == 0 ]]; then LD_LIBRARY_PATH="$DS_LIBS" "$BIN/gpu_fullwidth" "$FW" > "$OUT/gpu_fullwidth.txt" 2>&1; rc=$?; fi
  srcs="$(ls src/cuda/*.cpp src/cuda/*.h src/kernels/*.cu src/kernels/*.h src/kernels/*.cuh | tr '\n' ' ')tests/gpu/gpu_fullwidth.cpp tests/model/test_oracle_common.h scripts/reference/fullwidth_layer.py"
  # shellcheck disable=SC2086
  { echo "device: $DEVICE_LINE"; echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"; echo "commit: ${DS_COMMIT:-unknown}"
    echo "command: FULLWIDTH=1 tests/gpu/run_all.sh"; echo "sources: $srcs"; echo "sources-sha256: $(tests/gpu/source_hash.sh $srcs)"
    echo; echo '```'; grep -v '^|' "$OUT/gpu_fullwidth.txt" 2>/dev/null; echo '```'; echo; grep '^|' "$OUT/gpu_fullwidth.txt" 2>/dev/null; } > "$OUT/gpu_fullwidth.md"
  grep -E "^CHECK .*FAIL|^RESULT|^\||^error" "$OUT/gpu_fullwidth.txt" 2>/dev/null
  if [[ $rc == 0 ]]; then SUMMARY+=("| gpu_fullwidth | PASS ($(grep -c '^CHECK.*PASS' "$OUT/gpu_fullwidth.txt") checks) |")
  else SUMMARY+=("| gpu_fullwidth | FAIL rc=$rc ($(grep -c '^CHECK.*FAIL' "$OUT/gpu_fullwidth.txt" 2>/dev/null) failed checks) |"); status=1; fi
  [[ "${FW_KEEP:-}" == 1 ]] || rm -rf "$FW/ckpt"
fi
if [[ -z "${DRIVERS:-}" && -x "$BIN/deepserve" ]]; then  # D32: serve --device cuda over HTTP
  echo "== serve_cuda"
  BIN="$BIN" OUT="$OUT" tests/gpu/serve_cuda.sh > "$OUT/serve_cuda.txt" 2>&1
  rc=$?
  grep -E "^CHECK" "$OUT/serve_cuda.txt"
  if [[ $rc == 0 ]]; then SUMMARY+=("| serve_cuda | PASS |"); else SUMMARY+=("| serve_cuda | FAIL rc=$rc |"); status=1; fi
fi
# BENCH=1|only: $OUT/gpu_bench_model.md and $OUT/bench_serve.md, each with the D33 header, ready for
# bench/gpu/<name>_h200_<date>.md. Sources: the runner, every kernel, the config, the driver/script.
if [[ "${BENCH:-0}" == 1 || "${BENCH:-0}" == only ]]; then
  d33_header() {  # <command> <source files...>
    echo "device: $DEVICE_LINE"; echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"; echo "commit: ${DS_COMMIT:-unknown}"
    echo "command: $1"; echo "sources: ${*:2}"; echo "sources-sha256: $(tests/gpu/source_hash.sh "${@:2}")"; echo
  }
  read -r -a BSRC <<< "$(ls src/cuda/*.cpp src/cuda/*.h src/kernels/*.cu src/kernels/*.h src/kernels/*.cuh | tr '\n' ' ')bench/configs/dsv32_fullwidth_3d2m.json"
  echo "== gpu_bench_model"
  if [[ -x "$BIN/gpu_bench_model" ]]; then
    # shellcheck disable=SC2086
    LD_LIBRARY_PATH="$DS_LIBS" "$BIN/gpu_bench_model" ${BENCH_MODEL_ARGS:-} > "$OUT/gpu_bench_model.txt" 2>&1
    rc=$?
    { d33_header "$BIN/gpu_bench_model ${BENCH_MODEL_ARGS:+$BENCH_MODEL_ARGS }(BENCH=1 tests/gpu/run_all.sh)" "${BSRC[@]}" \
        tests/gpu/gpu_bench_model.cpp tests/gpu/gpu_test_util.h
      echo '```'; sed '/^## /,$d' "$OUT/gpu_bench_model.txt"; echo '```'; echo; sed -n '/^## /,$p' "$OUT/gpu_bench_model.txt"
    } > "$OUT/gpu_bench_model.md"
    grep -E "^CHECK .*FAIL|^RESULT|^error" "$OUT/gpu_bench_model.txt"
    if [[ $rc == 0 ]]; then SUMMARY+=("| gpu_bench_model | PASS ($(grep -c '^CHECK.*PASS' "$OUT/gpu_bench_model.txt") checks) |")
    else SUMMARY+=("| gpu_bench_model | FAIL rc=$rc |"); status=1; fi
  else echo "skipped: $BIN/gpu_bench_model not carried"; fi
  echo "== bench_serve"
  if [[ -x "$BIN/deepserve" ]]; then
    BIN="$BIN" OUT="$OUT" tests/gpu/bench_serve.sh > "$OUT/bench_serve.txt" 2>&1
    rc=$?
    { d33_header "BIN=$BIN tests/gpu/bench_serve.sh (BENCH=1 tests/gpu/run_all.sh)" "${BSRC[@]}" tests/gpu/bench_serve.sh
      echo '```'; grep -E "^CHECK|^output length|weights|KV pool|device:" "$OUT/bench_serve.txt"; echo '```'; echo
      cat "$OUT/bench_serve_blocks.md"; } > "$OUT/bench_serve.md"
    grep -E "^CHECK|^output length" "$OUT/bench_serve.txt"
    if [[ $rc == 0 ]]; then SUMMARY+=("| bench_serve | PASS |"); else SUMMARY+=("| bench_serve | FAIL rc=$rc |"); status=1; fi
  else echo "skipped: $BIN/deepserve not carried"; fi
fi
echo
echo "commit: ${DS_COMMIT:-unknown}  date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| GPU test | result |"
echo "|---|---|"
printf '%s\n' "${SUMMARY[@]}"
exit $status
