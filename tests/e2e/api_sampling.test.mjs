// End to end: sampling extras through the official openai SDK (penalties, min_tokens, stop_token_ids,
// max_completion_tokens, n, logprobs in the chat and completions shapes) on the tiny model.
// The tiny model's greedy continuation of "Hello world" repeats tokens, so penalties must change it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./server_helper.mjs";

let server;
let client;

before(async () => {
  server = await startServer(["--max-running-requests", "8"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0);
});

const greedy = { model: "x", prompt: "Hello world", max_tokens: 8, temperature: 0 };
const text = async (extra) => (await client.completions.create({ ...greedy, ...extra })).choices[0].text;

test("penalties change a fixed greedy output; defaults do not", async () => {
  const base = await text({});
  assert.equal(await text({ frequency_penalty: 0, presence_penalty: 0, repetition_penalty: 1 }), base);
  // Assumes the tiny model repeats a token within 8 greedy steps (checked here, so a changed model fails loudly).
  const ids = (await (await fetch(`${server.url}/generate`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "Hello world", sampling_params: { max_new_tokens: 8, temperature: 0 } }) })).json()).output_ids;
  assert.ok(new Set(ids).size < ids.length, "greedy output repeats a token");
  for (const p of [{ frequency_penalty: 2 }, { presence_penalty: 2 }, { repetition_penalty: 2 }])
    assert.notEqual(await text(p), base, JSON.stringify(p));
});

test("penalty and logprob ranges: 400 naming the parameter", async () => {
  for (const [extra, param] of [
    [{ frequency_penalty: 2.5 }, "frequency_penalty"],
    [{ presence_penalty: -3 }, "presence_penalty"],
    [{ repetition_penalty: 0 }, "repetition_penalty"],
    [{ min_tokens: 9 }, "min_tokens"],  // > max_tokens 8
    [{ logprobs: 21 }, "logprobs"],
  ]) {
    await assert.rejects(client.completions.create({ ...greedy, ...extra }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      return true;
    });
  }
  await assert.rejects(
    client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "hi" }], top_logprobs: 2 }),
    (e) => e.status === 400 && e.param === "top_logprobs");
});

test("stop_token_ids ends at that token; min_tokens holds it back", async () => {
  const first = await client.completions.create({ ...greedy, logprobs: 0 });
  const ids = (await (await fetch(`${server.url}/generate`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "Hello world", sampling_params: { max_new_tokens: 8, temperature: 0 } }) })).json()).output_ids;
  const stopId = ids[0];
  const s = await client.completions.create({ ...greedy, stop_token_ids: [stopId] });
  assert.equal(s.choices[0].finish_reason, "stop");
  assert.equal(s.choices[0].matched_stop, stopId);
  assert.equal(s.usage.completion_tokens, 1);
  const m = await client.completions.create({ ...greedy, stop_token_ids: [stopId], min_tokens: 3 });
  assert.ok(m.usage.completion_tokens >= 3, `completion_tokens ${m.usage.completion_tokens}`);
  assert.notEqual(m.choices[0].text, s.choices[0].text);
  // ignore_eos: the stop id is an ordinary token, generation runs to max_tokens.
  const ig = await client.completions.create({ ...greedy, stop_token_ids: [stopId], ignore_eos: true });
  assert.equal(ig.usage.completion_tokens, 8);
  assert.equal(ig.choices[0].text, first.choices[0].text);
});

test("chat logprobs: content entries with bytes, logprob <= 0, top_logprobs sorted and of the asked length", async () => {
  const r = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Reply with: Hi 😀!" }],
    max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
  const c = r.choices[0];
  assert.equal(c.finish_reason, "length");
  const entries = c.logprobs.content;
  assert.equal(entries.length, r.usage.completion_tokens);
  for (const e of entries) {
    assert.deepEqual(Object.keys(e).sort(), ["bytes", "logprob", "token", "top_logprobs"]);
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    assert.ok(e.top_logprobs[0].logprob >= e.logprob - 1e-6);  // greedy: the chosen token is the top one
    assert.equal(e.top_logprobs[0].token, e.token);
  }
  assert.equal(Buffer.from(entries.flatMap((e) => e.bytes)).toString("utf8"), c.message.content);
  const plain = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "x" }], max_tokens: 2 });
  assert.equal(plain.choices[0].logprobs, null);
});

test("chat logprobs streaming: the chunks' entries equal the non-streaming ones", async () => {
  const args = { model: "x", messages: [{ role: "user", content: "Tell me" }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 1 };
  const full = await client.chat.completions.create(args);
  const stream = await client.chat.completions.create({ ...args, stream: true });
  const got = [];
  for await (const ch of stream) for (const c of ch.choices) if (c.logprobs?.content) got.push(...c.logprobs.content);
  assert.deepEqual(got.map((e) => e.token), full.choices[0].logprobs.content.map((e) => e.token));
  for (let i = 0; i < got.length; ++i)
    assert.ok(Math.abs(got[i].logprob - full.choices[0].logprobs.content[i].logprob) < 1e-6);
});

test("completions logprobs: tokens, token_logprobs <= 0, top_logprobs, text_offset", async () => {
  const r = await client.completions.create({ ...greedy, max_tokens: 5, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.tokens.join(""), r.choices[0].text);
  for (const v of lp.token_logprobs) assert.ok(v <= 0);
  for (let i = 0; i < 5; ++i) {
    const vals = Object.values(lp.top_logprobs[i]);
    assert.ok(vals.length >= 1 && vals.length <= 2);
    assert.ok(Math.max(...vals) >= lp.token_logprobs[i] - 1e-6);
  }
  let off = 0;
  for (let i = 0; i < 5; ++i) {
    assert.equal(lp.text_offset[i], off);
    off += Buffer.byteLength(lp.tokens[i]);
  }
});

test("chat: n choices have distinct indices, usage adds up, max_completion_tokens wins", async () => {
  const r = await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Pick" }], n: 3, seed: 7,
    max_tokens: 9, max_completion_tokens: 4, temperature: 1, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 12);  // 3 x 4 (max_completion_tokens wins over max_tokens)
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});
