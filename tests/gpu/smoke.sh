#!/usr/bin/env bash
# D31 pipeline smoke test, run on the device machine from the repository root (docs/cuda.md):
#   DS_COMMIT=<commit> tests/gpu/smoke.sh [BIN_DIR]
# BIN_DIR (default build/cuda/gpu) holds gpu_smoke built on the CPU machine (static cudart); it is
# ldd-checked and run. gpu_smoke is also built here with nvcc + cuBLAS for the GEMM ceiling.
# Checks compute-sanitizer (memcheck) and ncu (hardware counters, --clock-control none) on the
# --quick run. Prints a markdown table last; writes logs under $OUT (or /tmp/ds_gpu).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/cuda/gpu}
OUT=${OUT:-/tmp/ds_gpu}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
GENCODE="-gencode=arch=compute_90a,code=sm_90a"
declare -a ROWS
row() { ROWS+=("| $1 | $2 | $3 |"); }
val() { sed -n "s/^RESULT $1 \([^ ]*\) .*/\1/p" "$2" | head -1; }

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm --format=csv | tee "$OUT/nvidia_smi.txt"
NVCC_VER=$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
echo "nvcc $NVCC_VER"

echo "== 1. carried binary: ldd + run"
if [[ -x "$BIN/gpu_smoke" ]]; then
  ldd "$BIN/gpu_smoke"
  if ldd "$BIN/gpu_smoke" | grep -q "not found"; then row "carried gpu_smoke: shared libraries" FAIL "missing: $(ldd "$BIN/gpu_smoke" | grep 'not found' | tr '\n' ' ')"
  else row "carried gpu_smoke: shared libraries" PASS "$(ldd "$BIN/gpu_smoke" | awk '{print $1}' | grep -v vdso | tr '\n' ' ')"; fi
  "$BIN/gpu_smoke" 2>&1 | tee "$OUT/smoke_carried.txt"
  rc=${PIPESTATUS[0]}
  row "carried gpu_smoke (built on the CPU machine) runs, trivial kernel bit-exact" "$([[ $rc == 0 ]] && echo PASS || echo "FAIL rc=$rc")" "$(grep '^DEVICE' "$OUT/smoke_carried.txt" | cut -c8-)"
  for k in memcpy_d2d_GBps copy_kernel_GBps read_kernel_GBps; do
    row "$k (2 GiB, median of 20)" "$(val $k "$OUT/smoke_carried.txt")" "GB/s, copies count read + write bytes"
  done
  echo "== cuobjdump of carried binaries"
  for b in "$BIN"/gpu_*; do cuobjdump --list-elf "$b"; done | tee "$OUT/cuobjdump_list.txt"
  if grep -q sm_90a "$OUT/cuobjdump_list.txt" && ! grep -v sm_90a "$OUT/cuobjdump_list.txt" | grep -q "ELF file"; then
    row "cuobjdump: carried binaries hold sm_90a code only" PASS "$(wc -l < "$OUT/cuobjdump_list.txt") ELF images"
  else row "cuobjdump: carried binaries hold sm_90a code only" FAIL "see cuobjdump_list.txt"; fi
  [[ -x "$BIN/gpu_gemm_fp8" ]] && cuobjdump --dump-sass "$BIN/gpu_gemm_fp8" > "$OUT/gemm_fp8.sass" 2>&1
else
  row "carried gpu_smoke" SKIP "no $BIN/gpu_smoke (build with cmake on the CPU machine and carry build/cuda/gpu)"
fi

echo "== 2. build on the device machine with nvcc + cuBLAS"
t0=$(date +%s)
if nvcc -O3 -std=c++17 $GENCODE -Isrc -DDS_WITH_CUBLAS tests/gpu/gpu_smoke.cu -lcublas -o /tmp/gpu_smoke_cublas 2>&1 | tee "$OUT/build_there.txt"; then
  row "nvcc $NVCC_VER builds gpu_smoke + cuBLAS here" PASS "$(( $(date +%s) - t0 )) s"
  /tmp/gpu_smoke_cublas 2>&1 | tee "$OUT/smoke_cublas.txt"
  rc=${PIPESTATUS[0]}
  row "gpu_smoke built here runs" "$([[ $rc == 0 ]] && echo PASS || echo "FAIL rc=$rc")" ""
  row "cuBLAS bf16 GEMM 8192^3, random data (median of 10)" "$(val cublas_bf16_gemm_8192_TFLOPs "$OUT/smoke_cublas.txt")" "TFLOP/s"
else
  row "nvcc builds gpu_smoke + cuBLAS here" FAIL "see build_there.txt"
fi

SMOKE_BIN="$BIN/gpu_smoke"; [[ -x "$SMOKE_BIN" ]] || SMOKE_BIN=/tmp/gpu_smoke_cublas
echo "== 3. compute-sanitizer memcheck"
compute-sanitizer --tool memcheck --error-exitcode 3 "$SMOKE_BIN" --quick > "$OUT/sanitizer.txt" 2>&1
rc=$?
tail -3 "$OUT/sanitizer.txt"
row "compute-sanitizer memcheck (gpu_smoke --quick)" "$([[ $rc == 0 ]] && echo PASS || echo "FAIL rc=$rc")" "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$OUT/sanitizer.txt")"

echo "== 4. ncu hardware counters"
ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  -k regex:copy16 -c 1 "$SMOKE_BIN" --quick > "$OUT/ncu.txt" 2>&1
rc=$?
grep -E "copy16|gpu__time|dram__bytes" "$OUT/ncu.txt"
rd=$(awk '/dram__bytes_read.sum/ {print $3, $2; exit}' "$OUT/ncu.txt")
tm=$(awk '/gpu__time_duration.sum/ {print $3, $2; exit}' "$OUT/ncu.txt")
if [[ $rc == 0 && -n "$rd" ]]; then row "ncu reads counters (copy16 on 64 MiB)" PASS "dram read $rd, time $tm"
else row "ncu reads counters" "FAIL rc=$rc" "see ncu.txt"; fi

echo
echo "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), nvcc $NVCC_VER"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit: ${DS_COMMIT:-unknown}"
echo "command: tests/gpu/smoke.sh $BIN"
echo "sources: src/kernels/cuda_check.h tests/gpu/gpu_smoke.cu"
echo "sources-sha256: $(tests/gpu/source_hash.sh src/kernels/cuda_check.h tests/gpu/gpu_smoke.cu)"
echo
echo "| check / ceiling | result | detail |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
