#!/bin/sh
# Builds fuzz/fuzz_request with clang (libFuzzer + ASan/UBSan) from the sources it needs, seeds a
# corpus from the handed cases (../shared/cases beside the repository, tests/) and the official encoding vectors
# (tests/fixtures/*_encoding/vectors.jsonl) and runs it for SECONDS (default 60).
# Then replays every file in fuzz/corpus_crashes (past crashes; each must now pass).
# Usage: fuzz/run_fuzz.sh BUILD_DIR [SECONDS]. Exit 0: no crash; 125: clang/libFuzzer unavailable (ctest: skipped); 1: a crash.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?build dir}
SECS=${2:-60}
mkdir -p "$OUT/seeds" "$OUT/corpus"
CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null 2>&1 || { echo "no $CXX: skipping"; exit 125; }
echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' > "$OUT/probe.cpp"
"$CXX" -fsanitize=fuzzer "$OUT/probe.cpp" -o "$OUT/probe" 2>/dev/null || { echo "no libFuzzer: skipping"; exit 125; }
BIN="$OUT/fuzz_request"
if [ ! -x "$BIN" ] || [ -n "$(find "$SRC/src/text" "$SRC/src/server/openai_protocol.cpp" "$SRC/src/server/response_format.cpp" "$SRC/fuzz/fuzz_request.cpp" -newer "$BIN" -name '*.[ch]*' 2>/dev/null | head -1)" ]; then
  "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$SRC/src" \
    "$SRC/fuzz/fuzz_request.cpp" "$SRC/src/server/openai_protocol.cpp" "$SRC/src/server/response_format.cpp" "$SRC"/src/text/*.cpp \
    $(pkg-config --cflags --libs libpcre2-8) -o "$BIN"
fi
# Seeds: request bodies and model outputs from the handed cases, one per target byte.
python3 - "$SRC" "$OUT/seeds" <<'PY'
import json, os, sys, glob
src, out = sys.argv[1], sys.argv[2]
files = (glob.glob(os.path.join(src, '..', 'shared', 'cases', '*.jsonl')) + glob.glob(os.path.join(src, 'tests/**/*cases*.jsonl'), recursive=True)
         + glob.glob(os.path.join(src, 'tests/fixtures/*_encoding/vectors.jsonl')))  # the official encoder vectors
n = 0
def emit(tag, s):
    global n
    if not isinstance(s, str) or not s: return
    with open(os.path.join(out, f'seed_{n}'), 'wb') as f: f.write(bytes([tag]) + s.encode('utf-8', 'replace'))
    n += 1
def walk(v):
    if isinstance(v, dict):
        if 'messages' in v or 'prompt' in v: emit(0, json.dumps(v))
        for x in v.values(): walk(x)
    elif isinstance(v, list):
        for x in v: walk(x)
    elif isinstance(v, str) and ('DSML' in v or 'tool' in v):
        emit(1, v); emit(2, v)
for fn in files:
    for line in open(fn, encoding='utf-8'):
        try: walk(json.loads(line))
        except Exception: pass
emit(0, '{"model":"m","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2}')
print(f'{n} seeds', file=sys.stderr)
PY
if [ -n "$(ls -A "$SRC/fuzz/corpus_crashes" 2>/dev/null | grep -v README)" ]; then
  "$BIN" $(ls -d "$SRC"/fuzz/corpus_crashes/* | grep -v README)  # replay: each must pass
fi
exec "$BIN" "$OUT/corpus" "$OUT/seeds" -max_total_time="$SECS" -timeout=10 -max_len=65536 -rss_limit_mb=4096 \
  -artifact_prefix="$OUT/" -print_final_stats=1 -error_exitcode=1
