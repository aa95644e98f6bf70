// End to end through the official openai SDK against `deepserve serve` on the embedded tiny model
// (issue 5): 64 concurrent streams with distinct prompts each equal their solo run (greedy, D27),
// and a radix prefix-cache hit reports usage.prompt_tokens_details.cached_tokens (D20) with the same
// output as the cold run; POST /flush_cache without a body (SGLang's clients) empties the cache.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import OpenAI from "openai";
import { startServer } from "./server_helper.mjs";

let server;
let client;

before(async () => {
  server = await startServer(["--max-running-requests", "64"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0, timeout: 300_000 });
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0, "graceful stop on SIGTERM exits 0");
});

const words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split(" ");
// Distinct prompts of mixed lengths: request i starts with its own number.
const prompt = (i) => `request ${i}: ` + Array.from({ length: 3 + (i * 7) % 23 }, (_, k) => words[(k * 3 + i) % words.length]).join(" ");

async function stream(messages, maxTokens = 8) {
  const s = await client.chat.completions.create({
    model: "m", messages, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  let text = "", usage = null;
  for await (const chunk of s) {
    if (chunk.usage) usage = chunk.usage;
    const d = chunk.choices?.[0]?.delta;
    text += (d?.reasoning_content ?? "") + (d?.content ?? "");
  }
  return { text, usage };
}

test("64 concurrent streams with distinct prompts each equal their solo run", async () => {
  const batched = await Promise.all(Array.from({ length: 64 }, (_, i) => stream([{ role: "user", content: prompt(i) }])));
  const solo = [];
  for (let i = 0; i < 64; i++) solo.push(await stream([{ role: "user", content: prompt(i) }]));
  for (let i = 0; i < 64; i++) {
    assert.equal(batched[i].usage.completion_tokens, 8, `request ${i}`);
    assert.equal(batched[i].text, solo[i].text, `request ${i}: batched output differs from its solo run`);
  }
  assert.ok(new Set(solo.map((s) => s.text)).size >= 16, "outputs depend on the prompt (a weak check otherwise)");
});

// Raw HTTP/1.1 POST with no body and no Content-Length header (python requests sends
// Content-Length: 0; curl -X POST and some clients send neither).
function rawPost(path) {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () =>
      sock.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
    let data = "";
    sock.setTimeout(10_000, () => { sock.destroy(); reject(new Error(`${path}: no answer within 10 s`)); });
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve(Number(data.split(" ")[1])));
    sock.on("error", reject);
  });
}

test("a prefix-cache hit reports cached_tokens and equals the cold run; /flush_cache empties the cache", async () => {
  assert.equal(await rawPost("/flush_cache"), 200);
  // A system prompt of > 128 tokens shared by both requests: at least two whole 64-token pages.
  const system = "You are a careful assistant. " + Array.from({ length: 150 }, (_, k) => words[k % words.length]).join(" ");
  const msgs = (q) => [{ role: "system", content: system }, { role: "user", content: q }];
  const cold = await stream(msgs("first question"));
  assert.equal(cold.usage.prompt_tokens_details, null, "nothing cached after a flush");
  const hit = await stream(msgs("second question"));
  const cached = hit.usage.prompt_tokens_details?.cached_tokens;
  assert.ok(cached >= 128 && cached % 64 === 0 && cached < hit.usage.prompt_tokens, `cached_tokens = ${cached}`);
  // Non-streaming too, and the same output as a cold run of the same prompt.
  const again = await client.chat.completions.create({
    model: "m", messages: msgs("second question"), max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.ok(again.usage.prompt_tokens_details.cached_tokens >= cached);
  const m = again.choices[0].message;
  assert.equal((m.reasoning_content ?? "") + m.content, hit.text, "non-streaming hit equals the streamed one");
  assert.equal(await rawPost("/flush_cache"), 200);
  const coldAgain = await stream(msgs("second question"));
  assert.equal(coldAgain.usage.prompt_tokens_details, null, "flushed: a cold run again");
  assert.equal(coldAgain.text, hit.text, "a prefix-cache hit equals the cold run");
});
