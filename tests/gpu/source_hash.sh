#!/usr/bin/env bash
# D33: hash of the sources a committed GPU result measured (docs/cuda.md).
#   source_hash.sh FILE...            prints the sha256 over the FILEs (sorted, `sha256sum` lines)
#   source_hash.sh --check TABLE.md   recomputes the hash over the files named on the table's
#                                     "sources:" line and fails if it differs from "sources-sha256:"
# Paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
hash_files() { printf '%s\n' "$@" | LC_ALL=C sort -u | while read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1; }
if [[ "${1:-}" == "--check" ]]; then
  status=0
  for t in "${@:2}"; do
    files=$(sed -n 's/^sources: *//p' "$t" | head -1)
    want=$(sed -n 's/^sources-sha256: *//p' "$t" | head -1)
    if [[ -z "$files" || -z "$want" ]]; then echo "$t: no 'sources:'/'sources-sha256:' lines"; status=1; continue; fi
    # shellcheck disable=SC2086
    got=$(hash_files $files)
    if [[ "$got" != "$want" ]]; then
      echo "$t: STALE: sources changed since it was measured (recorded $want, now $got); re-run tests/gpu/run_all.sh on the device machine"
      status=1
    else
      echo "$t: fresh"
    fi
  done
  exit $status
fi
hash_files "$@"
