// End to end: `deepserve bench` and `deepserve eval` as processes.
// (1) Against a FAKE server written here (a test double for the *server*, not deepserve): fixed
//     streams for the routes deepserve serve does not have yet (/generate, /v1/completions,
//     /get_server_info), so every metric has a known answer.
// (2) Against the real `deepserve serve` on the tiny model through /v1/chat/completions, with the
//     token totals checked against the server's usage and its /metrics counters.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { startServer, binary, repoRoot } from "./server_helper.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deepserve-bench-e2e-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `deepserve ...args`; resolves {code, stdout, stderr}. */
function run(args, timeoutMs = 120_000) {
  return new Promise((resolve) => {
    const p = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

/** The report rows as {name: value} (name = first 40 columns, trimmed). */
function report(stdout) {
  const start = stdout.indexOf("============ Serving Benchmark Result ============");
  assert.ok(start >= 0, `no report block in:\n${stdout}`);
  const rows = {};
  for (const line of stdout.slice(start).split("\n").slice(1)) {
    if (line.startsWith("=")) break;
    if (line.startsWith("-")) continue;
    rows[line.slice(0, 40).trim()] = line.slice(41).trim();
  }
  return rows;
}

const lastJsonl = (file) => JSON.parse(fs.readFileSync(file, "utf8").trim().split("\n").at(-1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- fake server (test double)
const FIRST_MS = 150;  // delay before the first content chunk
const GAP_MS = 100;    // delay between content chunks
const gsm = fs.readFileSync(path.join(repoRoot, "..", "shared", "data", "gsm8k", "test.jsonl"), "utf8")
  .trim().split("\n").map((l) => JSON.parse(l));
let fake, fakeUrl;
const seen = [];  // request bodies, for payload checks

before(async () => {
  fake = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const j = body ? JSON.parse(body) : {};
      seen.push({ url: req.url, body: j });
      if (req.url === "/v1/models") return res.end(JSON.stringify({ data: [{ id: "fake-model" }] }));
      if (req.url === "/get_server_info")
        return res.end(JSON.stringify({ internal_states: [{ avg_spec_accept_length: 2.5 }] }));
      if (req.url === "/generate" && !j.stream && j.text.startsWith("The following are multiple choice"))
        return res.end(JSON.stringify({ text: " B", meta_info: { completion_tokens: 1 } }));  // MMLU: always B
      if (req.url === "/generate" && !j.stream) return res.end(JSON.stringify(gsmAnswer(j)));
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      const send = (o) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      // Three content chunks: 1, 2 and 1 tokens ("a", "bc", "d"), then usage (completions) / [DONE].
      await sleep(FIRST_MS);
      if (req.url === "/generate") {
        send({ text: "a", meta_info: { completion_tokens: 1, prompt_tokens: 11 } });
        await sleep(GAP_MS);
        send({ text: "abc", meta_info: { completion_tokens: 3, prompt_tokens: 11 } });
        await sleep(GAP_MS);
        send({ text: "abcd", meta_info: { completion_tokens: 4, prompt_tokens: 11 } });
      } else {
        send({ choices: [{ index: 0, text: "a" }] });
        await sleep(GAP_MS);
        send({ choices: [{ index: 0, text: "bc" }] });
        await sleep(GAP_MS);
        send({ choices: [{ index: 0, text: "d", finish_reason: "length" }] });
        send({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 } });
      }
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise((r) => fake.listen(0, "127.0.0.1", r));
  fakeUrl = `http://127.0.0.1:${fake.address().port}`;
});
after(() => fake?.close());

// GSM8K double: answers the last question of the prompt; by question index i: i < 6 correct,
// i = 6, 7 a wrong number, i = 8, 9 no number -> accuracy 0.6, invalid 0.2.
function gsmAnswer(j) {
  const q = j.text.slice(j.text.lastIndexOf("Question: ") + 10, j.text.lastIndexOf("\nAnswer:"));
  const i = gsm.findIndex((x) => x.question === q);
  const label = gsm[i].answer.split("#### ")[1].replaceAll(",", "");
  const text = i < 6 ? ` It is ${label}.\n\n` : i < 8 ? " It is 123456789." : " I do not know.";
  return { text, meta_info: { completion_tokens: 5, prompt_tokens: 100 } };
}

test("fake server, sglang native backend: known TTFT/ITL/tokens, accept length printed", async () => {
  const out = path.join(tmp, "native.jsonl");
  const r = await run(["bench", "--backend", "sglang", "--base-url", fakeUrl, "--num-prompts", "4",
    "--random-input-len", "32", "--random-output-len", "4", "--random-range-ratio", "1", "--max-concurrency", "2",
    "--output-file", out]);
  assert.equal(r.code, 0, r.stderr);
  const m = report(r.stdout);
  assert.equal(m["Backend:"], "sglang");
  assert.equal(m["Traffic request rate:"], "inf");
  assert.equal(m["Max request concurrency:"], "2");
  assert.equal(m["Successful requests:"], "4");
  assert.equal(m["Total generated tokens:"], "16");  // 4 x meta_info.completion_tokens
  assert.equal(m["Accept length:"], "2.50");
  const j = lastJsonl(out);
  assert.equal(j.total_input_tokens, j.input_lens.reduce((a, b) => a + b, 0));
  assert.ok(j.input_lens.every((n) => n > 0 && n <= 32));
  assert.deepEqual(j.output_lens, [4, 4, 4, 4]);
  assert.deepEqual(j.server_prompt_tokens, [11, 11, 11, 11]);
  assert.deepEqual(j.generated_texts, ["abcd", "abcd", "abcd", "abcd"]);
  // Native ITL: the 2-token chunk's gap is split per token -> 3 entries per request, each ~GAP/1 or
  // GAP/2. Timer/scheduling slack: +60 ms upper bound, never below the programmed delay.
  for (const itl of j.itls) {
    assert.equal(itl.length, 3);
    assert.ok(itl[0] >= GAP_MS / 2000 - 0.005 && itl[0] < GAP_MS / 2000 + 0.06, `itl ${itl}`);
    assert.ok(itl[2] >= GAP_MS / 1000 - 0.005 && itl[2] < GAP_MS / 1000 + 0.06, `itl ${itl}`);
  }
  for (const t of j.ttfts) assert.ok(t >= FIRST_MS / 1000 - 0.005 && t < FIRST_MS / 1000 + 0.1, `ttft ${t}`);
  // TPOT = (latency - ttft) / 3 ~ 2 gaps / 3 tokens.
  assert.ok(Math.abs(j.mean_tpot_ms - (2 * GAP_MS) / 3) < 30, `tpot ${j.mean_tpot_ms}`);
  const body = seen.find((s) => s.url === "/generate").body;
  assert.deepEqual(body.sampling_params, { temperature: 0, max_new_tokens: 4, ignore_eos: true });
});

test("fake server, completions backend: per-chunk ITL, usage output length, extra body merged", async () => {
  seen.length = 0;
  const out = path.join(tmp, "oai.jsonl");
  const r = await run(["bench", "--backend", "sglang-oai", "--base-url", fakeUrl, "--num-prompts", "3",
    "--random-input-len", "16", "--random-output-len", "9", "--request-rate", "20", "--seed", "7",
    "--extra-request-body", '{"top_k": 5}', "--disable-ignore-eos", "--warmup-requests", "0", "--output-file", out]);
  assert.equal(r.code, 0, r.stderr);
  const m = report(r.stdout);
  assert.equal(m["Traffic request rate:"], "20.0");
  assert.equal(m["Max request concurrency:"], "not set");
  assert.equal(m["Total generated tokens:"], "12");  // usage.completion_tokens, not the requested 9s
  assert.equal(m["Accept length:"], "2.50");
  const j = lastJsonl(out);
  for (const itl of j.itls) assert.equal(itl.length, 2);  // 3 content chunks -> 2 intervals
  assert.ok(Math.abs(j.mean_itl_ms - GAP_MS) < 40, `itl ${j.mean_itl_ms}`);
  const bodies = seen.filter((s) => s.url === "/v1/completions").map((s) => s.body);
  assert.equal(bodies.length, 3);  // no warm-up request
  for (const b of bodies) {
    assert.equal(b.model, "fake-model");  // from GET /v1/models
    assert.equal(b.top_k, 5);
    assert.equal(b.ignore_eos, false);
    assert.deepEqual(b.stream_options, { include_usage: true });
  }
});

test("fake server: eval gsm8k scores the known answers and sends the protocol's stop strings", async () => {
  seen.length = 0;
  const r = await run(["eval", "gsm8k", "--base-url", fakeUrl, "--num-questions", "10", "--num-shots", "2",
    "--parallel", "4"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Accuracy: 0\.600\nInvalid: 0\.200\nLatency: \d+\.\d{3} s\nOutput throughput: \d+\.\d{3} token\/s\n$/);
  const b = seen[0].body;
  assert.deepEqual(b.sampling_params.stop, ["Question", "Assistant:", "<|separator|>"]);
  assert.equal(b.sampling_params.temperature, 0);
  assert.equal(b.sampling_params.max_new_tokens, 512);
  assert.ok(b.text.startsWith(`Question: ${gsm[0].question}\nAnswer: ${gsm[0].answer}\n\nQuestion: ${gsm[1].question}`));
});

test("fake server: eval mmlu on the fixture (the double always answers B)", async () => {
  seen.length = 0;
  const r = await run(["eval", "mmlu", "--base-url", fakeUrl, "--nsub", "3", "--data_dir",
    path.join(repoRoot, "tests", "fixtures", "mmlu")]);
  assert.equal(r.code, 0, r.stderr);
  // Fixture labels: abstract_algebra B C B, astronomy C B, zoology B.
  assert.match(r.stdout, /^subject: abstract_algebra, #q:3, acc: 0\.667\nsubject: astronomy, #q:2, acc: 0\.500\n/);
  assert.match(r.stdout, /subject: zoology, #q:1, acc: 1\.000\nTotal latency: \d+\.\d{3}\nAverage accuracy: 0\.667\n$/);
  const b = seen.find((s) => s.body.text.includes("about astronomy.")).body;
  assert.equal(b.sampling_params.max_new_tokens, 1);
  assert.ok(b.text.startsWith("The following are multiple choice questions (with answers) about astronomy.\n\n" +
    "Which planet is closest to the Sun?\nA. Venus\nB. Mercury\nC. Earth\nD. Mars\nAnswer: B\n\n"));
  assert.ok(b.text.endsWith("\nAnswer:"));
});

// ---------------------------------------------------------------- real deepserve serve
let server;
before(async () => { server = await startServer(["--enable-metrics"]); });

/** The server's /metrics counters this file checks (SGLang names; one model_name label). */
async function counters() {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name) => {
    const m = text.match(new RegExp(`^${name}\\{model_name="[^"]*"\\} (\\S+)$`, "m"));
    assert.ok(m, `${name} missing from /metrics:\n${text}`);
    return Number(m[1]);
  };
  return { prompt: value("sglang:prompt_tokens_total"), generation: value("sglang:generation_tokens_total"),
    requests: value("sglang:num_requests_total") };
}
after(async () => { await server?.stop(); });

test("deepserve serve (tiny), chat backend: token totals agree with the client count, the server's usage and /metrics", async () => {
  const out = path.join(tmp, "real.jsonl");
  const before = await counters();
  // No warm-up request, so the /metrics deltas are exactly the 6 measured requests.
  const r = await run(["bench", "--backend", "sglang-oai-chat", "--base-url", server.url, "--num-prompts", "6",
    "--random-input-len", "48", "--random-output-len", "6", "--max-concurrency", "3", "--warmup-requests", "0",
    "--output-file", out]);
  assert.equal(r.code, 0, r.stderr);
  // The server books a request when its response ends; wait (bounded) until all 6 are booked.
  let after = await counters();
  for (const deadline = Date.now() + 10_000; after.requests - before.requests < 6 && Date.now() < deadline;) {
    await sleep(100);
    after = await counters();
  }
  assert.equal(after.requests - before.requests, 6);
  const m = report(r.stdout);
  const j = lastJsonl(out);
  assert.equal(m["Successful requests:"], "6");
  assert.equal(j.model, "deepseek-v3.2-tiny");
  const clientIn = j.input_lens.reduce((a, b) => a + b, 0);
  assert.equal(Number(m["Total input tokens:"]), clientIn);
  // Chat prompt = BOS <｜User｜> text <｜Assistant｜> </think>: the server counts 4 more per request.
  j.input_lens.forEach((n, i) => assert.equal(j.server_prompt_tokens[i], n + 4, `request ${i}`));
  // ignore_eos: the server generates exactly the requested lengths, and says so in usage.
  assert.equal(Number(m["Total generated tokens:"]), j.output_lens.reduce((a, b) => a + b, 0));
  assert.ok(j.output_lens.every((n) => n >= 1 && n <= 6));
  // /metrics: generated-token delta = the report's total; prompt delta = the client-side sum of
  // prompt lengths + the 4 template tokens per request (= the sum of the server's usage counts).
  assert.equal(after.generation - before.generation, Number(m["Total generated tokens:"]));
  assert.equal(after.prompt - before.prompt, clientIn + 4 * 6);
  assert.equal(after.prompt - before.prompt, j.server_prompt_tokens.reduce((a, b) => a + b, 0));
  // TTFT = first chunk with text; a request whose few tokens all decode to "" (possible on the random
  // tiny model) keeps TTFT 0, as in bench_serving.
  j.ttfts.forEach((t, i) => assert.ok(j.generated_texts[i] === "" ? t === 0 : t > 0, `request ${i}`));
  assert.ok(j.mean_e2e_latency_ms >= j.mean_ttft_ms);
});

test("deepserve serve (tiny), openai-chat --disable-stream: TTFT equals latency", async () => {
  const out = path.join(tmp, "nostream.jsonl");
  const r = await run(["bench", "--backend", "openai-chat", "--base-url", server.url, "--num-prompts", "2",
    "--random-input-len", "16", "--random-output-len", "3", "--random-range-ratio", "1", "--disable-stream",
    "--output-file", out]);
  assert.equal(r.code, 0, r.stderr);
  const j = lastJsonl(out);
  assert.equal(j.total_output_tokens, 6);
  j.ttfts.forEach((t, i) => assert.equal(t, j.latencies[i]));
  assert.ok(j.itls.every((x) => x.length === 0));
});

test("deepserve serve (tiny): eval gsm8k over chat sends stop strings; a refusal is reported clearly", async () => {
  const r = await run(["eval", "gsm8k", "--backend", "sglang-oai-chat", "--base-url", server.url,
    "--num-questions", "2", "--num-shots", "1", "--max-new-tokens", "4"]);
  if (r.code === 0) {
    assert.match(r.stdout, /^Accuracy: \d\.\d{3}\nInvalid: \d\.\d{3}\n/);  // stop strings supported by now
  } else {
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 400 .*stop.*refused the protocol's stop strings/s);
  }
});
