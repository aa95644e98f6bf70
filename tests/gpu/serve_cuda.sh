#!/usr/bin/env bash
# D32 end-to-end check on the GPU machine: `deepserve serve --device cuda` on the `tiny` preset
# answers a chat request over plain HTTP (curl), and its greedy answer is the CPU server's (12
# tokens: the logits differ by ~1e-2 normwise (tests/gpu/gpu_model.cpp), so a near-tie between the
# top two tokens can flip a longer answer; gpu_model reports the margins). Then the same with
# --numerics exact on both servers (FP32 end to end; the logits differ by ~1e-6, bar 1e-4 in
# gpu_model): the greedy answers must be equal.
# Run from the repository root with <build>/gpu carried (tests/gpu/collect_libs.sh made
# <build>/gpu/deepserve and <build>/gpu/lib):   BIN=build/cuda/gpu tests/gpu/serve_cuda.sh
# Prints CHECK lines (run_all.sh counts them); exit 0 iff all pass. Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/cuda/gpu}
OUT=${OUT:-/tmp/ds_gpu}
mkdir -p "$OUT"
# Only deepserve gets the collected Debian libraries (the machine's curl breaks against them).
DS_LIBS="$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ds() { LD_LIBRARY_PATH="$DS_LIBS" "$BIN/deepserve" "$@"; }
[[ -f "$BIN/tokenizer.json" && -z "${DEEPSERVE_TOKENIZER_JSON:-}" ]] && export DEEPSERVE_TOKENIZER_JSON="$PWD/$BIN/tokenizer.json"
fail=0
check() { printf 'CHECK %-72s %s\n' "$2" "$([[ $1 == 0 ]] && echo PASS || { fail=1; echo FAIL; })"; }
if LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/deepserve" | grep -q "not found"; then LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/deepserve" | grep "not found"; check 1 "deepserve finds its shared libraries"; exit 1; fi
MODEL=$(mktemp -d)/tiny
ds make-model --preset tiny --output "$MODEL" > "$OUT/serve_make_model.log" 2>&1
check $? "make-model --preset tiny"
REQ='{"model":"m","messages":[{"role":"user","content":"Name three colors."}],"max_tokens":12,"temperature":0,"ignore_eos":true}'

# serve <device> <port> <log> [flags...]: starts a server, waits for /health (120 s), sends REQ, prints the body.
serve() {
  local dev=$1 port=$2 log=$3
  shift 3
  LD_LIBRARY_PATH="$DS_LIBS" "$BIN/deepserve" serve --model-path "$MODEL" --device "$dev" --port "$port" --served-model-name m "$@" > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  curl -s -m 120 -H 'Content-Type: application/json' -d "$REQ" "http://127.0.0.1:$port/v1/chat/completions"
  kill -TERM $pid 2>/dev/null
  wait $pid 2>/dev/null
}
content() {  # .choices[0].message.content of a chat response (python3 if present, else sed)
  if command -v python3 > /dev/null; then
    python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' 2>/dev/null
  else
    sed -n 's/.*"content":"\(\([^"\\]\|\\.\)*\)".*/\1/p'
  fi
}
GPU=$(serve cuda 30721 "$OUT/serve_cuda.log")
echo "cuda answer: $GPU" | head -c 2000; echo
grep -E "KV pool|weights|device:" "$OUT/serve_cuda.log" | head -8
CPU=$(serve cpu 30722 "$OUT/serve_cpu.log")
echo "cpu answer:  $CPU" | head -c 2000; echo
gtext=$(printf '%s' "$GPU" | content); ctext=$(printf '%s' "$CPU" | content)
[[ -n $gtext ]]; check $? "serve --device cuda: chat answer is JSON with non-empty content"
grep -q "KV pool (device)" "$OUT/serve_cuda.log"; check $? "serve --device cuda: device KV pool sized and logged"
[[ -n $ctext && $gtext == "$ctext" ]]; check $? "cuda greedy answer == cpu greedy answer (12 tokens, ignore_eos)"
# --numerics exact on both devices.
GPUX=$(serve cuda 30723 "$OUT/serve_cuda_exact.log" --numerics exact)
echo "cuda exact answer: $GPUX" | head -c 2000; echo
grep -E "KV pool|numerics" "$OUT/serve_cuda_exact.log" | head -4
CPUX=$(serve cpu 30724 "$OUT/serve_cpu_exact.log" --numerics exact)
echo "cpu exact answer:  $CPUX" | head -c 2000; echo
gx=$(printf '%s' "$GPUX" | content); cx=$(printf '%s' "$CPUX" | content)
[[ -n $gx ]]; check $? "serve --device cuda --numerics exact: chat answer is JSON with non-empty content"
grep -q "f32, --numerics exact" "$OUT/serve_cuda_exact.log"; check $? "serve --device cuda --numerics exact: FP32 KV pool logged"
[[ -n $cx && $gx == "$cx" ]]; check $? "cuda exact greedy answer == cpu exact greedy answer (12 tokens)"
exit $fail
