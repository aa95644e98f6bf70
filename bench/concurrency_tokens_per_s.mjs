// Output tokens/s of a running deepserve server at several concurrencies (bench/README.md, D30),
// and a check that every batched output equals the same prompt run alone (greedy, D27).
// usage: node bench/concurrency_tokens_per_s.mjs --port 30000 [--levels 1,4,16,64] [--output-len 64] [--prompt-words 40] [--repeat 1]
// Prints one JSON line per level: output_tokens, wall_s, output_tok_s, speedup_vs_1, identical_to_solo.
// With --repeat N each level runs N times (levels interleaved round by round, so a burst of load
// from other processes hits every level alike); wall_s is the best run, median_wall_s the median.
import OpenAI from 'openai';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const port = Number(args.port ?? 30000);
const levels = (args.levels ?? '1,4,16,64').split(',').map(Number);
const outputLen = Number(args['output-len'] ?? 64);
const promptWords = Number(args['prompt-words'] ?? 40);
const repeat = Number(args.repeat ?? 1);

const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none', maxRetries: 0, timeout: 600000 });
const words = 'the quick brown fox jumps over the lazy dog while seven wizards quietly hex a jovial banker'.split(' ');
// Distinct prompts: request i starts with its own number and rotates the word list.
const prompt = (i) => `request ${i}: ` + Array.from({ length: promptWords }, (_, k) => words[(k + i) % words.length]).join(' ');

async function one(i) {
  const stream = await client.chat.completions.create({
    model: 'default', messages: [{ role: 'user', content: prompt(i) }], max_tokens: outputLen,
    temperature: 0, stream: true, stream_options: { include_usage: true }, ignore_eos: true,
  });
  let text = '', usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const d = chunk.choices?.[0]?.delta;
    if (d?.content) text += d.content;
    if (d?.reasoning_content) text += d.reasoning_content;
  }
  return { text, out: usage.completion_tokens };
}

await one(999);  // warm-up
const solo = new Map();
const walls = new Map(levels.map((c) => [c, []]));
const results = new Map();
for (let round = 0; round < repeat; round++) {
  for (const c of levels) {
    const t0 = performance.now();
    const res = await Promise.all(Array.from({ length: c }, (_, i) => one(i)));
    walls.get(c).push((performance.now() - t0) / 1e3);
    results.set(c, res);
  }
}
let base = null;
for (const c of levels) {
  const res = results.get(c);
  const out = res.reduce((s, r) => s + r.out, 0);
  // Solo references for up to 16 prompts (sequential runs), to check batch invariance.
  let same = 0, checked = 0;
  for (let i = 0; i < Math.min(c, 16); i++) {
    if (!solo.has(i)) solo.set(i, (await one(i)).text);
    checked++;
    if (solo.get(i) === res[i].text) same++;
  }
  const w = [...walls.get(c)].sort((a, b) => a - b);
  const wall = w[0], median = w[Math.floor(w.length / 2)];
  const tps = out / wall;
  base ??= tps;
  console.log(JSON.stringify({ concurrency: c, output_tokens: out, wall_s: +wall.toFixed(2), median_wall_s: +median.toFixed(2),
    output_tok_s: +tps.toFixed(1), speedup_vs_1: +(tps / base).toFixed(2), identical_to_solo: `${same}/${checked}` }));
}
