// End to end: problems a new-user trial of `deepserve serve` (CPU, tiny model) found in the HTTP
// surface and the CLI, each asserted by its exact status / header / message (docs/server.md).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { spawn } from "node:child_process";
import { startServer, binary, cacheDir } from "./server_helper.mjs";

let server;

before(async () => {
  server = await startServer(["--enable-metrics", "--max-running-requests", "4"]);
});

after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0);
});

/** Writes `request` on a fresh socket; resolves {status, headers (lower-case keys), body, closedByServer}
 *  once the server closes the socket or `waitMs` passes (then the client closes it). */
function raw(request, waitMs = 3000, url = server.url) {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ""), () => s.write(request));
    let data = "";
    const done = (closedByServer) => {
      clearTimeout(t);
      s.destroy();
      const head = data.slice(0, data.indexOf("\r\n\r\n"));
      const headers = {};
      for (const line of head.split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        const k = line.slice(0, i).toLowerCase();
        headers[k] = headers[k] === undefined ? line.slice(i + 1).trim() : headers[k] + ", " + line.slice(i + 1).trim();
      }
      resolve({ status: Number(data.slice(9, 12)), headers, body: data.slice(data.indexOf("\r\n\r\n") + 4), closedByServer });
    };
    const t = setTimeout(() => done(false), waitMs);
    s.on("data", (d) => (data += d));
    s.on("end", () => done(true));
    s.on("error", reject);
  });
}

test("CORS preflight: 200 with Access-Control-Allow-* on any path, no auth; plain OPTIONS stays 405", async () => {
  const pre = await raw("OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\n" +
                        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n" +
                        "Connection: close\r\n\r\n");
  assert.equal(pre.status, 200);
  assert.equal(pre.headers["access-control-allow-origin"], "*");
  assert.equal(pre.headers["access-control-allow-methods"], "POST, OPTIONS");
  assert.equal(pre.headers["access-control-allow-headers"], "authorization, content-type");
  assert.equal(pre.headers["access-control-max-age"], "600");
  assert.equal(pre.body, "OK");
  const unknown = await raw("OPTIONS /nope HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\nAccess-Control-Request-Method: GET\r\n" +
                            "Connection: close\r\n\r\n");
  assert.equal(unknown.status, 200);
  assert.equal(unknown.headers["access-control-allow-methods"], "GET, HEAD, OPTIONS, POST, PUT");
  assert.equal(unknown.headers["access-control-allow-headers"], "*");
  const models = await raw("OPTIONS /v1/models HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\nAccess-Control-Request-Method: GET\r\n" +
                           "Connection: close\r\n\r\n");
  assert.equal(models.headers["access-control-allow-methods"], "GET, HEAD, OPTIONS");
  const plain = await raw("OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal(plain.status, 405);
  assert.equal(plain.headers["allow"], "POST");
});

test("Content-Type is matched case-insensitively, with or without parameters", async () => {
  for (const ct of ["Application/JSON", "APPLICATION/JSON; charset=utf-8", "application/json;charset=UTF-8"]) {
    const r = await fetch(`${server.url}/v1/completions`, {
      method: "POST", headers: { "Content-Type": ct },
      body: JSON.stringify({ model: "m", prompt: "hi", max_tokens: 1, temperature: 0 }) });
    assert.equal(r.status, 200, ct);
    assert.equal((await r.json()).object, "text_completion");
    const t = await fetch(`${server.url}/tokenize`, { method: "POST", headers: { "Content-Type": ct }, body: JSON.stringify({ prompt: "a" }) });
    assert.equal(t.status, 200, ct);
  }
  const r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "{}" });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.message, "Unsupported Media Type: Only 'application/json' is allowed");
});

test("conflicting or non-numeric Content-Length: 400 and the connection is closed", async () => {
  const body = '{"prompt":"hi","max_tokens":1}';
  const dup = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
                        `Content-Length: ${body.length}\r\nContent-Length: 5\r\n\r\n${body}`);
  assert.equal(dup.status, 400);
  assert.equal(JSON.parse(dup.body).error.message, `Bad request: conflicting Content-Length headers (${body.length} and 5).`);
  assert.equal(dup.headers["connection"], "close");
  assert.equal(dup.headers["keep-alive"], undefined);
  assert.ok(dup.closedByServer);
  for (const v of ["-5", "abc"]) {
    const r = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${v}\r\n\r\n{}`);
    assert.equal(r.status, 400, v);
    assert.deepEqual(JSON.parse(r.body).error, { code: "bad_request", param: null, type: "invalid_request_error",
                                                 message: `Bad request: Content-Length '${v}' is not a decimal number of bytes.` });
    assert.ok(r.closedByServer, v);
  }
  const same = await raw(`POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{"prompt":"a"}`);
  assert.equal(same.status, 200);  // repeated equal values are one length (RFC 9112 6.3)
});

test("a bodyless POST to a GET route is 405 with Allow, to an unknown path 404 (not 411)", async () => {
  const models = await raw("POST /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal(models.status, 405);
  assert.equal(models.headers["allow"], "GET, HEAD");
  assert.equal(JSON.parse(models.body).error.message, "Method Not Allowed: POST /v1/models (allowed: GET, HEAD)");
  const nope = await raw("POST /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal(nope.status, 404);
  assert.equal(JSON.parse(nope.body).error.message, "Not found: POST /nope");
  const gen = await raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal(gen.status, 411);  // a generation route still needs Content-Length
});

test("an unparsable request gets 400 with Connection: close, and the server closes the socket", async () => {
  const r = await raw("THIS IS NOT HTTP\r\n\r\n");
  assert.equal(r.status, 400);
  assert.equal(r.headers["connection"], "close");
  assert.equal(JSON.parse(r.body).error.message, "Bad request: the HTTP request could not be parsed.");
  assert.ok(r.closedByServer, "the server closed the connection");
});

test("/get_server_info last_gen_throughput is /metrics' gen_throughput (not a constant 0)", async () => {
  const g = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "m", prompt: "count", max_tokens: 16, temperature: 0, ignore_eos: true }) });
  assert.equal((await g.json()).usage.completion_tokens, 16);
  const info = await (await fetch(`${server.url}/get_server_info`)).json();
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const m = Number(metrics.match(/^sglang:gen_throughput\{[^}]*\} (\S+)$/m)[1]);
  const s = info.internal_states[0].last_gen_throughput;
  // Both are tokens in the last 10 s over max(1 s, time since the first of them): >= 16 tokens over
  // a span that grows by the few ms between the two reads, so they agree to 10%.
  assert.ok(s > 0 && m > 0, `server_info ${s}, metrics ${m}`);
  assert.ok(Math.abs(s - m) <= 0.1 * m, `server_info ${s}, metrics ${m}`);
});

test("completions logprobs: true is 1 top entry, false is none; other non-integers stay 400", async () => {
  const ask = async (logprobs) => fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "m", prompt: "hi", max_tokens: 2, temperature: 0, ignore_eos: true, logprobs }) });
  const t = await (await ask(true)).json();
  assert.equal(t.choices[0].logprobs.token_logprobs.length, 2);
  for (const top of t.choices[0].logprobs.top_logprobs) assert.equal(Object.keys(top).length, 1);
  const f = await (await ask(false)).json();
  assert.equal(f.choices[0].logprobs, null);
  const s = await ask("2");
  assert.equal(s.status, 400);
  assert.equal((await s.json()).error.param, "logprobs");
});

test("invalid JSON: the message has the position in plain words (no [json.exception...] prefix)", async () => {
  const r = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{x" });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.message,
               "Invalid JSON body: parse error at line 1, column 2: syntax error while parsing object key - invalid literal; " +
               "last read: '{x'; expected string literal");
});

test("POST /flush_cache while a request runs: 400 saying the cache was not flushed", async () => {
  const ctl = new AbortController();
  const r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, signal: ctl.signal,
    body: JSON.stringify({ model: "m", prompt: "go", max_tokens: 4000, temperature: 0, ignore_eos: true, stream: true }) });
  const reader = r.body.getReader();
  await reader.read();  // the request is running
  const f = await fetch(`${server.url}/flush_cache`, { method: "POST" });
  assert.equal(f.status, 400);
  assert.equal(await f.text(), "Cache not flushed: requests are running or waiting. Retry when the server is idle.\n");
  ctl.abort();
  await reader.cancel().catch(() => {});
});

test("HTTP/1.0 clients get no chunked coding: the generation body ends when the server closes", async () => {
  const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 4, temperature: 0 });
  const r = await raw(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n` +
                      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 10000);
  assert.equal(r.status, 200);
  assert.equal(r.headers["transfer-encoding"], undefined);
  assert.ok(r.closedByServer);
  assert.equal(JSON.parse(r.body).object, "chat.completion");
  const sbody = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream: true });
  const st = await raw(`POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n` +
                       `Content-Length: ${Buffer.byteLength(sbody)}\r\n\r\n${sbody}`, 10000);
  assert.equal(st.status, 200);
  assert.equal(st.headers["transfer-encoding"], undefined);
  assert.ok(st.closedByServer);
  assert.match(st.body, /^data: \{/);
  assert.ok(st.body.endsWith("data: [DONE]\n\n"), st.body.slice(-40));
});

test("a full server is healthy: /health and /health_generate answer 200 while every batch slot is busy", async () => {
  // The server runs at most 4 requests; 5 long ones fill it and queue one, so the health probe
  // queues too. Healthy means the engine keeps stepping (SGLang's check), not that the probe ran.
  const ctls = [], pending = [];
  for (let i = 0; i < 5; ++i) {
    const ctl = new AbortController();
    ctls.push(ctl);
    pending.push(fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" },
      signal: ctl.signal, body: JSON.stringify({ model: "m", prompt: `busy ${i}`, max_tokens: 4000, temperature: 0, ignore_eos: true, stream: true }) })
      .catch(() => null));
  }
  const first = await pending[0];  // the first 4 run (the 5th waits for a slot, so its headers do not come)
  const reader = first.body.getReader();
  await reader.read();
  let queued = false;  // the 5th request waits, so the probe will queue behind it
  for (let t = 0; t < 50 && !queued; ++t) {
    queued = /sglang:num_queue_reqs(\{[^}]*\})? 1\b/.test(await (await fetch(`${server.url}/metrics`)).text());
    if (!queued) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(queued, "a request is waiting");
  for (const path of ["/health", "/health_generate"]) {
    const t0 = Date.now();
    const h = await fetch(`${server.url}${path}`);
    assert.equal(h.status, 200, path);
    assert.ok(Date.now() - t0 < 5000, `${path} took ${Date.now() - t0} ms`);
  }
  for (const c of ctls) c.abort();
  await reader.cancel().catch(() => {});
  await Promise.all(pending);
});

/** Runs `deepserve serve ...args` with `env` added; resolves {code, stdout, stderr} (killed after 60 s). */
function serveOnce(args, env = {}) {
  return new Promise((resolve) => {
    const proc = spawn(binary, ["serve", ...args], { env: { ...process.env, DEEPSERVE_CACHE_DIR: cacheDir, ...env },
                                                      stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => proc.kill("SIGKILL"), 60_000);
    proc.on("exit", (code) => { clearTimeout(t); resolve({ code, stdout: out, stderr: err }); });
  });
}

test("startup errors name the flag or variable", async () => {
  const tok = await serveOnce(["--port", "0", "--tokenizer-path", "/tmp/deepserve-nonexistent-tokenizer"]);
  assert.equal(tok.code, 1);
  assert.match(tok.stderr, /deepserve serve: --tokenizer-path \/tmp\/deepserve-nonexistent-tokenizer: no such file or directory/);
  const cache = await serveOnce(["--port", "0"], { DEEPSERVE_CACHE_DIR: "/proc/nope" });
  assert.equal(cache.code, 1);
  assert.match(cache.stderr, /cannot create the cache directory \/proc\/nope \(from DEEPSERVE_CACHE_DIR\)/);
  // An SGLang flag deepserve does not take: exit 2, the flag named (not CLI11's "bfloat16 --dtype").
  const unk = await serveOnce(["--port", "0", "--enable-lora"]);
  assert.equal(unk.code, 2);
  assert.equal(unk.stderr, "deepserve serve: unknown flag --enable-lora (`deepserve serve --help` lists the flags deepserve takes)\n");
  // --device cuda on a machine without a usable GPU (or a build without the CUDA runner): a refused
  // flag, exit 2, said once.
  if (!fs.existsSync("/dev/nvidiactl")) {  // a machine with an NVIDIA driver would start the server
    const cuda = await serveOnce(["--port", "0", "--device", "cuda"]);
    assert.equal(cuda.code, 2, cuda.stderr);
    assert.equal(cuda.stderr.split("--device cuda: ").length - 1, 1, cuda.stderr);
    assert.match(cuda.stderr, /^deepserve serve: --device cuda: (no usable GPU|not available)/m);
  }
});

test("an IPv6 host is bracketed in the startup line; a preflight needs no API key", async () => {
  const v6 = await startServer(["--host", "::1", "--api-key", "k"]);
  try {
    assert.match(v6.url, /^http:\/\/\[::1\]:\d+$/);
    assert.equal((await fetch(`${v6.url}/health`)).status, 200);
    assert.equal((await fetch(`${v6.url}/v1/models`)).status, 401);
    const pre = await raw("OPTIONS /v1/models HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\nAccess-Control-Request-Method: GET\r\n" +
                          "Access-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n", 3000, v6.url);
    assert.equal(pre.status, 200);
    assert.equal(pre.headers["access-control-allow-headers"], "authorization");
  } finally {
    assert.equal((await v6.stop()).code, 0);
  }
});
