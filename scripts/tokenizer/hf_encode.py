#!/usr/bin/env python3
"""Oracle run on the GPU machine (decision D12): encodes every "text" of the JSONL corpus with
Hugging Face `tokenizers` from TOKENIZER_JSON with its added_tokens removed (pure BPE, the way
deepserve treats user text, D10), no BOS. Writes one JSON line per corpus line:
{"category": ..., "ids": [...]} to OUT. Needs the `tokenizers` package (not installed on the CPU
machines). Usage: hf_encode.py TOKENIZER_JSON CORPUS.jsonl OUT.jsonl"""
import json
import sys

from tokenizers import Tokenizer, __version__

tok_path, corpus_path, out_path = sys.argv[1:4]
with open(tok_path, encoding="utf-8") as f:
    spec = json.load(f)
spec["added_tokens"] = []
spec["post_processor"] = None
tok = Tokenizer.from_str(json.dumps(spec))
n = 0
with open(corpus_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
    for line in f:
        if not line.strip():
            continue
        e = json.loads(line)
        ids = tok.encode(e["text"], add_special_tokens=False).ids
        out.write(json.dumps({"category": e["category"], "ids": ids}) + "\n")
        n += 1
print(f"tokenizers {__version__}: encoded {n} strings", file=sys.stderr)
