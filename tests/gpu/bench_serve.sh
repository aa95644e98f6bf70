#!/usr/bin/env bash
# Serving numbers of issue 8 ("First numbers", spec/benchmarks.md "Serving"): `deepserve serve
# --device cuda --load-format dummy` on the full-width 3 dense + 2 MoE config, then `deepserve bench
# --backend sglang-oai`, random ids, 1024 input tokens, concurrency 1 (8 prompts) and 16 (32 prompts).
# Run from the repository root on the device machine (BENCH=1 tests/gpu/run_all.sh calls it):
#   BIN=build/cuda/gpu OUT=/tmp/ds_gpu tests/gpu/bench_serve.sh
# Writes $OUT/bench_serve_blocks.md (commands, settings, the Serving Benchmark Result blocks),
# $OUT/bench_serve_c<C>.jsonl (per-request details) and $OUT/bench_serve_server.log; prints CHECK
# lines; exit 0 iff the server came up and every bench run succeeded.
#
# Output length: BENCH_OUTPUT_LEN=auto (default) times one 64-token request first and keeps 1024
# when the estimated time of both runs fits in BENCH_BUDGET_S (200 s), else 256 (then 128); the
# report says which was used and why. Environment (defaults for the GPU run):
#   BENCH_DEVICE=cuda  BENCH_CONFIG=bench/configs/dsv32_fullwidth_3d2m.json  BENCH_INPUT_LEN=1024
#   BENCH_RUNS="1:8 16:32" (concurrency:prompts)  BENCH_PORT=30731  BENCH_SERVE_ARGS=""
#   BENCH_MODEL_DIR=<dir> serves that checkpoint directory instead, without dummy weights (the CPU
#   plumbing test: BENCH_DEVICE=cpu BENCH_MODEL_DIR=<tiny>).
# The model directory is made here: config.json (BENCH_CONFIG) + tokenizer.json + tokenizer_config.json
# of `deepserve make-model --preset tiny` (DeepSeek's vocabulary with the V3.2 tokens): all that
# `serve --load-format dummy` reads.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/cuda/gpu}
OUT=${OUT:-/tmp/ds_gpu}
BENCH_DEVICE=${BENCH_DEVICE:-cuda}
BENCH_CONFIG=${BENCH_CONFIG:-bench/configs/dsv32_fullwidth_3d2m.json}
BENCH_MODEL_DIR=${BENCH_MODEL_DIR:-}
BENCH_INPUT_LEN=${BENCH_INPUT_LEN:-1024}
BENCH_OUTPUT_LEN=${BENCH_OUTPUT_LEN:-auto}
BENCH_RUNS=${BENCH_RUNS:-"1:8 16:32"}
BENCH_PORT=${BENCH_PORT:-30731}
BENCH_BUDGET_S=${BENCH_BUDGET_S:-200}
BENCH_SERVE_ARGS=${BENCH_SERVE_ARGS:-}
mkdir -p "$OUT"
# Only our binary gets the collected Debian libraries (the machine's curl breaks against them).
DS_LIBS="$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ds() { LD_LIBRARY_PATH="$DS_LIBS" "$BIN/deepserve" "$@"; }
[[ -f "$BIN/tokenizer.json" && -z "${DEEPSERVE_TOKENIZER_JSON:-}" ]] && export DEEPSERVE_TOKENIZER_JSON="$PWD/$BIN/tokenizer.json"
fail=0
check() { printf 'CHECK %-72s %s\n' "$2" "$([[ $1 == 0 ]] && echo PASS || { fail=1; echo FAIL; })"; }
BLOCKS="$OUT/bench_serve_blocks.md"
: > "$BLOCKS"
if LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/deepserve" | grep -q "not found"; then
  LD_LIBRARY_PATH="$DS_LIBS" ldd "$BIN/deepserve" | grep "not found"; check 1 "deepserve finds its shared libraries"; exit 1
fi

TMP=$(mktemp -d)
LOAD=()
if [[ -z "$BENCH_MODEL_DIR" ]]; then
  ds make-model --preset tiny --output "$TMP/tok" > "$OUT/bench_serve_make_model.log" 2>&1
  check $? "make-model --preset tiny (tokenizer files)"
  BENCH_MODEL_DIR="$TMP/model"
  mkdir -p "$BENCH_MODEL_DIR"
  cp "$BENCH_CONFIG" "$BENCH_MODEL_DIR/config.json" && cp "$TMP/tok/tokenizer.json" "$TMP/tok/tokenizer_config.json" "$BENCH_MODEL_DIR/"
  check $? "model dir: $BENCH_CONFIG + tokenizer files"
  LOAD=(--load-format dummy)
fi
NAME=$(basename "${BENCH_CONFIG%.json}")
[[ ${#LOAD[@]} == 0 ]] && NAME=$(basename "$BENCH_MODEL_DIR")
SERVE_CMD="deepserve serve --device $BENCH_DEVICE ${LOAD[*]:+${LOAD[*]} }--model-path <dir> --port $BENCH_PORT --served-model-name $NAME${BENCH_SERVE_ARGS:+ $BENCH_SERVE_ARGS}"
# shellcheck disable=SC2086
LD_LIBRARY_PATH="$DS_LIBS" "$BIN/deepserve" serve --device "$BENCH_DEVICE" "${LOAD[@]}" --model-path "$BENCH_MODEL_DIR" --port "$BENCH_PORT" \
  --served-model-name "$NAME" $BENCH_SERVE_ARGS > "$OUT/bench_serve_server.log" 2>&1 &
SPID=$!
stop() { kill -TERM $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$TMP"; }
up=1
for _ in $(seq 1 600); do  # 300 s: dummy weights + KV pool
  curl -sf "http://127.0.0.1:$BENCH_PORT/health" > /dev/null 2>&1 && { up=0; break; }
  kill -0 $SPID 2>/dev/null || break
  sleep 0.5
done
check $up "serve --device $BENCH_DEVICE${LOAD[*]:+ ${LOAD[*]}} is up (/health)"
grep -E "device:|weights|KV pool" "$OUT/bench_serve_server.log" | sed 's/^.*\] //' | head -6
if [[ $up != 0 ]]; then tail -20 "$OUT/bench_serve_server.log"; stop; exit 1; fi

# Output length: one timed 64-token request (near the c=1 step time), estimate both runs.
# Sequential request waves of all runs, a concurrent wave counted twice (its steps are slower: the
# MoE layers read more experts and the host samples more rows).
waves() { local s=0 r c n; for r in $BENCH_RUNS; do c=${r%%:*}; n=${r##*:}; s=$(( s + (n + c - 1) / c * (c > 1 ? 2 : 1) )); done; echo $s; }
WAVES=$(waves)
NOTE=""
if [[ "$BENCH_OUTPUT_LEN" == auto ]]; then
  REQ='{"model":"'"$NAME"'","prompt":"Benchmark probe: count to one hundred.","max_tokens":64,"temperature":0,"ignore_eos":true}'
  curl -s -m 300 -H 'Content-Type: application/json' -d "${REQ/:64,/:4,}" "http://127.0.0.1:$BENCH_PORT/v1/completions" > /dev/null  # first-step allocations
  t0=$(date +%s.%N)
  curl -s -m 300 -H 'Content-Type: application/json' -d "$REQ" "http://127.0.0.1:$BENCH_PORT/v1/completions" > "$OUT/bench_serve_probe.json"
  t1=$(date +%s.%N)
  ms_tok=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b - a) * 1000 / 64}')
  BENCH_OUTPUT_LEN=128
  for L in 1024 256; do
    est=$(awk -v m="$ms_tok" -v w="$WAVES" -v l="$L" 'BEGIN{printf "%d", m * w * l / 1000}')
    if (( est <= BENCH_BUDGET_S )); then BENCH_OUTPUT_LEN=$L; break; fi
  done
  NOTE="output length $BENCH_OUTPUT_LEN: a 64-token probe took $ms_tok ms/token; $WAVES sequential request waves (concurrent ones counted twice) x that per token must fit in ${BENCH_BUDGET_S} s (1024, else 256, else 128)"
  echo "$NOTE"
fi

{ if [[ ${#LOAD[@]} != 0 ]]; then echo "Server: \`$SERVE_CMD\` (<dir>: config.json = \`$BENCH_CONFIG\`, random weights made on the device; tokenizer files of make-model tiny)."
  else echo "Server: \`$SERVE_CMD\` (<dir>: the checkpoint directory $BENCH_MODEL_DIR)."; fi
  echo
  echo "Workload: \`--dataset-name random\` without \`--dataset-path\` = random token ids (D29), \`--random-range-ratio 1\`"
  echo "so every request has exactly $BENCH_INPUT_LEN input tokens (our tokenizer) and $BENCH_OUTPUT_LEN output tokens (\`ignore_eos\`), greedy, streaming \`/v1/completions\`."
  [[ -n $NOTE ]] && { echo; echo "Output length chosen automatically: $NOTE."; }
  echo; } >> "$BLOCKS"
for r in $BENCH_RUNS; do
  c=${r%%:*}; n=${r##*:}
  jsonl="$OUT/bench_serve_c$c.jsonl"
  rm -f "$jsonl"
  cmd=(bench --backend sglang-oai --host 127.0.0.1 --port "$BENCH_PORT" --model "$NAME" --tokenizer "$BENCH_MODEL_DIR"
       --dataset-name random --random-input-len "$BENCH_INPUT_LEN" --random-output-len "$BENCH_OUTPUT_LEN" --random-range-ratio 1
       --num-prompts "$n" --max-concurrency "$c" --disable-tqdm --output-file "$jsonl")
  echo "== bench concurrency $c, $n prompts"
  t0=$(date +%s)
  ds "${cmd[@]}" > "$OUT/bench_serve_c$c.txt" 2>&1
  rc=$?
  sed -n '/Serving Benchmark Result/,$p' "$OUT/bench_serve_c$c.txt"
  { echo "## Concurrency $c ($n prompts)"; echo
    echo "    deepserve ${cmd[*]}" | sed "s#$BENCH_MODEL_DIR#<dir>#; s#$OUT/##"; echo
    if [[ $rc == 0 ]]; then sed -n '/Serving Benchmark Result/,$p' "$OUT/bench_serve_c$c.txt" | sed 's/^/    /'
    else echo "FAILED (rc=$rc):"; tail -20 "$OUT/bench_serve_c$c.txt" | sed 's/^/    /'; fi
    echo; } >> "$BLOCKS"
  check $rc "bench concurrency $c, $n prompts, $BENCH_INPUT_LEN/$BENCH_OUTPUT_LEN ($(( $(date +%s) - t0 )) s)"
done
stop
exit $fail
