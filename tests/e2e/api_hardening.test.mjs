// End to end (issue 6, session 3): completions echo text_offset consistent with the returned text,
// exact error messages (user message indexes, SGLang field names, out-of-range integers, the JSON
// Schema keyword list, SGLang's verbatim context messages), string codes of transport-level error
// envelopes, /get_server_info on the embedded model, flag validation of serve/bench/eval and the
// OPENAI_API_KEY hint of bench/eval on a 401.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawn } from "node:child_process";
import { startServer, binary, cacheDir } from "./server_helper.mjs";

let server;

before(async () => {
  server = await startServer(["--max-running-requests", "8"]);
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0);
});

async function post(path, body) {
  const r = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

/** Runs `deepserve ...args`; resolves {code, stdout, stderr}. */
function run(args, env = {}, timeoutMs = 120_000) {
  return new Promise((resolve) => {
    const p = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEEPSERVE_CACHE_DIR: cacheDir, ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

// Token ids of the tiny model's tokenizer (checked through /detokenize in the first test).
const BOS = 0, USER = 128803, ASSISTANT = 128804, HI = 23166, THERE = 1031;

// ---- echo + logprobs: text, tokens and text_offset agree ---------------------------------------

/** Every listed token starts at its text_offset (bytes) in the text, or adds no text there. */
function assertOffsetsMatchText(choice, skippedTokens = []) {
  const bytes = Buffer.from(choice.text);
  const { tokens, text_offset } = choice.logprobs;
  assert.equal(tokens.length, text_offset.length);
  for (let i = 0; i < tokens.length; ++i) {
    assert.ok(text_offset[i] <= bytes.length, `offset ${text_offset[i]} past the text (${bytes.length} bytes)`);
    if (i > 0) assert.ok(text_offset[i] >= text_offset[i - 1]);
    if (skippedTokens.includes(tokens[i])) continue;
    const at = bytes.subarray(text_offset[i], text_offset[i] + Buffer.byteLength(tokens[i])).toString();
    assert.equal(at, tokens[i], `token ${i} ${JSON.stringify(tokens[i])} at offset ${text_offset[i]}`);
  }
}

test("the token ids used below are the tiny tokenizer's BOS / User / Assistant", async () => {
  const r = await post("/detokenize", { tokens: [USER, HI, THERE, ASSISTANT] });
  assert.equal(r.body.text, "<｜User｜>Hi there<｜Assistant｜>");
});

test("echo with token ids and skip_special_tokens: the BOS is listed at the offset it would have had", async () => {
  const r = await post("/v1/completions", {
    model: "m", prompt: [BOS, USER, HI, THERE, ASSISTANT], echo: true, logprobs: 0, max_tokens: 3, temperature: 0,
  });
  assert.equal(r.status, 200);
  const c = r.body.choices[0];
  assert.ok(c.text.startsWith("<｜User｜>Hi there<｜Assistant｜>"));
  assert.deepEqual(c.logprobs.tokens.slice(0, 5), ["<｜begin▁of▁sentence｜>", "<｜User｜>", "Hi", " there", "<｜Assistant｜>"]);
  // "<｜User｜>" is 12 bytes of UTF-8 (｜ is 3 bytes), "Hi" 2, " there" 6, "<｜Assistant｜>" 17.
  assert.deepEqual(c.logprobs.text_offset.slice(0, 6), [0, 0, 12, 14, 20, 37]);
  assertOffsetsMatchText(c, ["<｜begin▁of▁sentence｜>"]);
});

test("echo with token ids, skip_special_tokens false, n=2: the BOS text is in the text, offsets shift by 29 bytes", async () => {
  const r = await post("/v1/completions", {
    model: "m", prompt: [BOS, USER, HI, THERE, ASSISTANT], echo: true, logprobs: 1, max_tokens: 3, temperature: 0,
    skip_special_tokens: false, n: 2,
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.choices.length, 2);
  for (const c of r.body.choices) {
    assert.ok(c.text.startsWith("<｜begin▁of▁sentence｜><｜User｜>Hi there<｜Assistant｜>"));
    assert.deepEqual(c.logprobs.text_offset.slice(0, 6), [0, 29, 41, 43, 49, 66]);
    assertOffsetsMatchText(c);
  }
});

test("generated special tokens skipped from the text are listed without moving the offset (string prompt)", async () => {
  // logit_bias forces the BOS (special, not a stop id) three times after "Hi there é".
  const r = await post("/v1/completions", {
    model: "m", prompt: "Hi there é", echo: true, logprobs: 0, max_tokens: 3, temperature: 0, logit_bias: { [BOS]: 100 },
  });
  assert.equal(r.status, 200);
  const c = r.body.choices[0];
  assert.equal(c.text, "Hi there é");
  assert.deepEqual(c.logprobs.tokens, ["Hi", " there", " é", "<｜begin▁of▁sentence｜>", "<｜begin▁of▁sentence｜>", "<｜begin▁of▁sentence｜>"]);
  assert.deepEqual(c.logprobs.text_offset, [0, 2, 8, 11, 11, 11]);  // " é" is 3 bytes
});

test("streaming echo: the offsets of all chunks are those of the whole text; a list of prompts each from 0", async () => {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "m", prompt: [HI], echo: true, logprobs: 0, max_tokens: 3, temperature: 0,
                           logit_bias: { [BOS]: 100 }, stream: true }),
  });
  let text = "", offsets = [], tokens = [];
  for (const line of (await res.text()).split("\n")) {
    if (!line.startsWith("data: {")) continue;
    const ch = JSON.parse(line.slice(6)).choices[0];
    text += ch.text;
    if (ch.logprobs) { offsets.push(...ch.logprobs.text_offset); tokens.push(...ch.logprobs.tokens); }
  }
  assert.equal(text, "Hi");
  assert.deepEqual(offsets, [0, 2, 2, 2]);
  assert.equal(tokens.length, 4);

  const r = await post("/v1/completions", {
    model: "m", prompt: [[HI, THERE], [BOS, HI]], echo: true, logprobs: 0, max_tokens: 1, temperature: 0,
  });
  assert.deepEqual(r.body.choices[0].logprobs.text_offset.slice(0, 2), [0, 2]);
  assert.deepEqual(r.body.choices[1].logprobs.text_offset.slice(0, 2), [0, 0]);
  for (const c of r.body.choices) assertOffsetsMatchText(c, ["<｜begin▁of▁sentence｜>"]);
});

test("a stop string cutting the text: later tokens' offsets are capped at the text's end", async () => {
  const r = await post("/v1/completions", {
    model: "m", prompt: [HI], max_tokens: 5, temperature: 0, logprobs: 0, logit_bias: { [THERE]: 100 }, stop: ["re th"],
  });
  const c = r.body.choices[0];
  assert.equal(c.text, " the");
  assert.equal(c.finish_reason, "stop");
  assert.deepEqual(c.logprobs.tokens, [" there", " there"]);
  assert.deepEqual(c.logprobs.text_offset, [0, 4]);
});

// ---- messages ----------------------------------------------------------------------------------

async function expect400(path, body, message, param) {
  const r = await post(path, body);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.message, message);
  if (param !== undefined) assert.equal(r.body.error.param, param);
}

const user = { role: "user", content: "q" };
const call = { id: "c1", type: "function", function: { name: "f", arguments: "{}" } };

test("tool messages: errors name the client's message index and role", async () => {
  await expect400("/v1/chat/completions", { messages: [{ role: "tool", content: "x" }] },
    "messages[0]: a 'tool' message must follow an assistant message with tool_calls, but it comes first", "messages[0]");
  await expect400("/v1/chat/completions", { messages: [user, { role: "tool", content: "x" }] },
    "messages[1]: a 'tool' message must follow an assistant message with tool_calls, but messages[0] is a 'user' message",
    "messages[1]");
  await expect400("/v1/chat/completions", {
    messages: [{ role: "system", content: "s" }, user, { role: "assistant", content: "", tool_calls: [call] },
               { role: "tool", content: "x" }, { role: "tool", content: "y" }],
  }, "messages[4]: tool message 2 after messages[2], which has 1 tool_calls", "messages[4]");
  const ok = await post("/v1/chat/completions", {
    messages: [user, { role: "assistant", content: "", tool_calls: [call] }, { role: "tool", content: "x" }], max_tokens: 1,
  });
  assert.equal(ok.status, 200);
});

test("tools: a tool without a function object names tools[0].function", async () => {
  await expect400("/v1/chat/completions", { messages: [user], tools: [{ type: "function" }] },
    "tools[0].function: field required (an object with a string 'name')", "tools[0].function");
  await expect400("/v1/chat/completions", { messages: [user], tools: [{ type: "function", function: { name: "f" } }, 7] },
    `tools[1]: expected an object {"type": "function", "function": {...}}`, "tools[1]");
  await expect400("/v1/chat/completions", { messages: [user], tools: [{ type: "retrieval", function: { name: "f" } }] },
    `tools[0].type: only "function" tools are supported, got "retrieval"`, "tools[0].type");
});

test("response_format json_schema: missing schema names response_format.json_schema; keyword list is the real one", async () => {
  await expect400("/v1/chat/completions", { messages: [user], response_format: { type: "json_schema" } },
    "response_format.json_schema: field required for response_format type 'json_schema' (an object with a 'schema')",
    "response_format.json_schema");
  await expect400("/v1/chat/completions", { messages: [user], response_format: { type: "json_schema", json_schema: { name: "x" } } },
    "response_format.json_schema.schema: field required (the JSON Schema of the response)", "response_format.json_schema");
  const r = await post("/v1/chat/completions", {
    messages: [user], response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a" } } },
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.param, "response_format.json_schema.schema");
  assert.ok(r.body.error.message.startsWith(
    "response_format.json_schema.schema: keyword 'pattern' is not supported by constrained decoding (supported: " +
    "additionalProperties, anyOf, const, enum, items, maxLength, minLength, oneOf, properties, required, type; ignored annotations: "),
    r.body.error.message);
  const g = await post("/generate", { text: "q", sampling_params: { json_schema: JSON.stringify({ type: "integer", minimum: 0 }) } });
  assert.equal(g.status, 400);
  assert.ok(g.body.error.message.startsWith("json_schema: keyword 'minimum' is not supported"), g.body.error.message);
});

test("integers beyond int64 are out of range, not 'expected an integer'", async () => {
  await expect400("/v1/chat/completions", { messages: [user], max_tokens: 1e30 },
    "max_tokens: 1e+30 is out of range (an integer in [-2^63, 2^63 - 1])", "max_tokens");
  await expect400("/v1/chat/completions", '{"messages":[{"role":"user","content":"q"}],"max_tokens":99999999999999999999}',
    "max_tokens: 1e+20 is out of range (an integer in [-2^63, 2^63 - 1])", "max_tokens");
  await expect400("/v1/completions", '{"prompt":"q","n":18446744073709551615}',
    "n: 18446744073709551615 is out of range (an integer in [-2^63, 2^63 - 1])", "n");
  await expect400("/v1/chat/completions", { messages: [user], top_k: 2.5 }, "top_k: expected an integer, got 2.5", "top_k");
  await expect400("/generate", { text: "q", logprob_start_len: 1e30 },
    "logprob_start_len: 1e+30 is out of range (an integer in [-2^63, 2^63 - 1])", "logprob_start_len");
});

test("/generate sampling_params errors use SGLang's names (max_new_tokens, min_new_tokens)", async () => {
  await expect400("/generate", { text: "q", sampling_params: { max_new_tokens: -1 } },
    "max_new_tokens must be at least 0, got -1.", "max_new_tokens");
  await expect400("/generate", { text: "q", sampling_params: { max_new_tokens: "a" } },
    "max_new_tokens: expected an integer, got string", "max_new_tokens");
  await expect400("/generate", { text: "q", sampling_params: { max_new_tokens: 1e30 } },
    "max_new_tokens: 1e+30 is out of range (an integer in [-2^63, 2^63 - 1])", "max_new_tokens");
  await expect400("/generate", { text: "q", sampling_params: { max_new_tokens: 4, min_new_tokens: 9 } },
    "min_new_tokens must be in [0, max_new_tokens = 4], got 9.", "min_new_tokens");
  await expect400("/generate", { input_ids: [HI], sampling_params: { max_new_tokens: 200000 } },
    "Requested token count exceeds the model's maximum context length of 163840 tokens. You requested a total of " +
    "200001 tokens: 1 tokens from the input messages and 200000 tokens for the completion. Please reduce the number of " +
    "tokens in the input messages or the completion to fit within the limit.", "max_new_tokens");
});

test("context messages are SGLang's verbatim (chat's 'is too large' has no space after the period, as SGLang)", async () => {
  await expect400("/v1/chat/completions", { messages: [user], max_tokens: 200000 },
    "max_completion_tokens is too large: 200000.This model supports at most 163840 completion tokens.", "max_tokens");
  await expect400("/v1/completions", { prompt: [HI, THERE], max_tokens: 200000 },
    "Requested token count exceeds the model's maximum context length of 163840 tokens. You requested a total of " +
    "200002 tokens: 2 tokens from the input messages and 200000 tokens for the completion. Please reduce the number of " +
    "tokens in the input messages or the completion to fit within the limit.", "max_tokens");
});

test("an empty text prompt names its place; /parse_function_call names tools[i].function.name", async () => {
  await expect400("/v1/completions", { prompt: ["a", ""], max_tokens: 1 },
    "prompt[1]: the prompt is empty (it encodes to no tokens)", "prompt[1]");
  await expect400("/generate", { text: "" }, "text: the prompt is empty (it encodes to no tokens)", "text");
  await expect400("/parse_function_call", { text: "x", tool_call_parser: "deepseekv32", tools: [{ type: "function" }] },
    "tools[0].function.name: expected a string", "tools[0].function.name");
});

// ---- envelopes and server info -----------------------------------------------------------------

/** One raw HTTP exchange; resolves {status, body}. */
function raw(request) {
  return new Promise((resolve, reject) => {
    const u = new URL(server.url);
    const s = net.connect(Number(u.port), u.hostname, () => s.write(request));  // the server closes (Connection: close)
    let data = "";
    s.on("data", (d) => (data += d));
    s.on("end", () => {
      const status = Number(data.slice(9, 12));
      const body = data.slice(data.indexOf("\r\n\r\n") + 4);
      resolve({ status, body: JSON.parse(body) });
    });
    s.on("error", reject);
  });
}

test("transport-level errors carry string codes (414 like 404, 405, 411, 413)", async () => {
  const long = await raw(`GET /v1/models?${"a".repeat(70000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(long.status, 414);
  assert.deepEqual(long.body.error, { code: "uri_too_long", message: "URI too long: the request line exceeds the server's limit.",
                                      param: null, type: "invalid_request_error" });
  const codes = {};
  codes[404] = (await raw("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).body.error.code;
  codes[405] = (await raw("DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).body.error.code;
  codes[411] = (await raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")).body.error.code;
  codes[413] = (await raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n")).body.error.code;
  assert.deepEqual(codes, { 404: "not_found", 405: "method_not_allowed", 411: "length_required", 413: "payload_too_large" });
});

test("/get_server_info and /get_model_info name the served model path and the resolved device", async () => {
  const info = await (await fetch(`${server.url}/get_server_info`)).json();
  const device = server.logs().match(/--device auto: (\w+)/)[1];
  assert.equal(info.device, device);
  assert.ok(["cpu", "cuda"].includes(info.device));
  assert.equal(info.model_path, `${cacheDir}/tiny-v1`);
  assert.equal(info.tokenizer_path, info.model_path);
  const mi = await (await fetch(`${server.url}/get_model_info`)).json();
  assert.equal(mi.model_path, info.model_path);
});

// ---- flags and the tools -----------------------------------------------------------------------

test("flag ranges: bench/eval/serve refuse bad values with a short message (exit 2)", async () => {
  const cases = [
    [["bench", "--num-prompts", "0"], "--num-prompts: 0 is below the minimum 1"],
    [["bench", "--num-prompts", "1e30"], "--num-prompts: 1e30 is above the maximum 2147483647"],
    [["bench", "--random-range-ratio", "1.5"], "--random-range-ratio: 1.5 is above the maximum 1"],
    [["bench", "--warmup-requests", "-1"], "--warmup-requests: -1 is below the minimum 0"],
    [["eval", "gsm8k", "--parallel", "0"], "--parallel: 0 is below the minimum 1"],
    [["eval", "mmlu", "--nsub", "0"], "--nsub: 0 is below the minimum 1"],
    [["serve", "--host", "999.1.1.1"], "deepserve serve: --host 999.1.1.1: not a valid IP address or resolvable host name"],
  ];
  for (const [args, msg] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.includes(msg), `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.length < 400, r.stderr);
  }
});

test("serve: an address of another machine is named as such, not as a busy port", async () => {
  const r = await run(["serve", "--host", "192.0.2.1", "--port", "0"]);  // TEST-NET-1: never local
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot bind 192\.0\.2\.1:0?.*(not one of this machine's|Cannot assign)/);
  assert.doesNotMatch(r.stderr, /in use/);
});

test("bench and eval against --api-key: a 401 prints the OPENAI_API_KEY hint", async () => {
  const keyed = await startServer(["--api-key", "sekrit"]);
  try {
    const common = ["--base-url", keyed.url, "--num-prompts", "1", "--random-input-len", "8", "--random-output-len", "2"];
    const none = await run(["bench", ...common], { OPENAI_API_KEY: "" });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /HTTP 401: .*hint: the server wants an API key; set OPENAI_API_KEY to its --api-key/);
    const wrong = await run(["bench", ...common, "--model", "m"], { OPENAI_API_KEY: "wrong" });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /HTTP 401: .*hint: the server refused the key in OPENAI_API_KEY/);
    const ev = await run(["eval", "gsm8k", "--base-url", keyed.url, "--num-questions", "1", "--num-shots", "0"], { OPENAI_API_KEY: "" });
    assert.match(ev.stderr, /HTTP 401: .*hint: the server wants an API key; set OPENAI_API_KEY/);
    const ok = await run(["bench", ...common, "--model", "m"], { OPENAI_API_KEY: "sekrit" });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await keyed.stop();
  }
});

test("a prompt the KV pool can never hold is a 400 naming the prompt (prompt[i] in a list)", async () => {
  const small = await startServer(["--max-total-tokens", "256"]);
  try {
    const long = Array.from({ length: 300 }, () => 5);
    for (const [prompt, param] of [[long, "prompt"], [[[5], long], "prompt[1]"]]) {
      const r = await fetch(`${small.url}/v1/completions`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 1 }),
      });
      assert.equal(r.status, 400);
      const j = await r.json();
      assert.equal(j.error.message, "The input (300 tokens) does not fit in the KV cache (256 tokens from --max-total-tokens " +
                                    "and --page-size); it can never be scheduled.");
      assert.equal(j.error.param, param);
    }
  } finally {
    await small.stop();
  }
});
