// CPU tokens/s of a running deepserve server, as bench/README.md defines it (D30).
// usage: node bench/cpu_tokens_per_s.mjs --port 30000 [--prompt-words 100] [--output-len 64] [--runs 3]
// Prints one JSON line per run and a median summary line.
import OpenAI from 'openai';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const port = Number(args.port ?? 30000);
const promptWords = Number(args['prompt-words'] ?? 100);
const outputLen = Number(args['output-len'] ?? 64);
const runs = Number(args.runs ?? 3);

const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none' });
const words = 'the quick brown fox jumps over the lazy dog while seven wizards quietly hex a jovial banker'.split(' ');
const prompt = Array.from({ length: promptWords }, (_, i) => words[i % words.length]).join(' ');

async function once() {
  const t0 = performance.now();
  let tFirst = null, tLast = null, usage = null;
  const stream = await client.chat.completions.create({
    model: 'default', messages: [{ role: 'user', content: prompt }], max_tokens: outputLen,
    temperature: 0, stream: true, stream_options: { include_usage: true }, ignore_eos: true,
  });
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const d = chunk.choices?.[0]?.delta;
    if (d && (d.content || d.reasoning_content)) { tLast = performance.now(); tFirst ??= tLast; }
  }
  const P = usage.prompt_tokens, O = usage.completion_tokens;
  return { prompt_tokens: P, output_tokens: O, ttft_ms: tFirst - t0,
           prefill_tok_s: P / ((tFirst - t0) / 1e3), decode_tok_s: (O - 1) / ((tLast - tFirst) / 1e3) };
}

await once();  // warm-up
const results = [];
for (let i = 0; i < runs; i++) { const r = await once(); results.push(r); console.log(JSON.stringify(r)); }
const median = (k) => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
console.log(JSON.stringify({ summary: 'median', prompt_tokens: median('prompt_tokens'), output_tokens: median('output_tokens'),
  ttft_ms: median('ttft_ms'), prefill_tok_s: median('prefill_tok_s'), decode_tok_s: median('decode_tok_s') }));
