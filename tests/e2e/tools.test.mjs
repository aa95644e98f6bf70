// End to end: a multi-turn tool-calling conversation through the official openai SDK, with the
// model's text injected by the test hook (--debug-inject-output, DEEPSERVE_ALLOW_TEST_HOOKS=1):
// call -> tool result -> final answer, thinking on and off, DSML (deepseekv32) and V3.1 format
// (deepseekv31); streaming and non-streaming must give the same message (D16).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer, runServeExpectingExit } from "./server_helper.mjs";

process.env.DEEPSERVE_ALLOW_TEST_HOOKS = "1";

const tools = [{
  type: "function",
  function: {
    name: "get_weather", description: "Get current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];

const DSML_CALL =
  '\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n' +
  '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>';
const V31_CALL =
  "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>" +
  '{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>';

const servers = {};
before(async () => {
  const common = ["--reasoning-parser", "deepseek-v3", "--debug-inject-output"];
  servers.v32 = await startServer([...common, "--tool-call-parser", "deepseekv32"]);
  servers.v31 = await startServer([...common, "--tool-call-parser", "deepseekv31"]);
});
after(async () => {
  for (const s of Object.values(servers)) await s?.stop();
});

const clientOf = (s) => new OpenAI({ baseURL: s.baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });

/** Streams a request and folds the chunks into a non-streaming-shaped message. */
async function streamed(client, body) {
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  const msg = { role: undefined, content: "", reasoning_content: null, tool_calls: [] };
  let finish;
  let finishChunks = 0;
  let usage;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      const d = c.delta;
      if (d.role) msg.role = d.role;
      if (d.content) msg.content += d.content;
      if (d.reasoning_content) msg.reasoning_content = (msg.reasoning_content ?? "") + d.reasoning_content;
      for (const t of d.tool_calls ?? []) {
        if (t.id) {
          assert.equal(t.function.arguments, "", "the first item of a call has the name and empty arguments");
          msg.tool_calls[t.index] = { id: t.id, type: "function", function: { name: t.function.name, arguments: "" } };
        } else {
          msg.tool_calls[t.index].function.arguments += t.function.arguments;
        }
      }
      if (c.finish_reason) {
        finish = c.finish_reason;
        finishChunks++;
      }
    }
  }
  assert.equal(finishChunks, 1);
  if (msg.tool_calls.length === 0) msg.tool_calls = null;
  return { message: msg, finish, usage };
}

/** Sends one turn both ways; asserts they agree and returns the non-streaming choice. */
async function turn(client, body) {
  const r = await client.chat.completions.create(body);
  const s = await streamed(client, body);
  const m = r.choices[0].message;
  assert.equal(s.message.role, "assistant");
  assert.equal(s.message.content, m.content);
  assert.equal(s.message.reasoning_content, m.reasoning_content ?? null);
  assert.equal(s.finish, r.choices[0].finish_reason);
  assert.equal(s.message.tool_calls?.length ?? 0, m.tool_calls?.length ?? 0);
  for (const [i, c] of (m.tool_calls ?? []).entries()) {
    assert.equal(s.message.tool_calls[i].function.name, c.function.name);
    assert.deepEqual(JSON.parse(s.message.tool_calls[i].function.arguments), JSON.parse(c.function.arguments));
  }
  assert.deepEqual(s.usage, r.usage);
  return r;
}

async function tokenCount(server, body) {
  const res = await fetch(`${server.url}/tokenize`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()).count;
}

for (const [fmt, call] of [["v32", DSML_CALL], ["v31", V31_CALL]]) {
  for (const thinking of [true, false]) {
    test(`${fmt} conversation, thinking ${thinking ? "on" : "off"}: call, tool result, final answer`, async () => {
      const server = servers[fmt];
      const client = clientOf(server);
      const kwargs = { chat_template_kwargs: { thinking } };
      const messages = [{ role: "user", content: "Weather in Paris?" }];

      // Turn 1: the model calls the tool.
      const r1 = await turn(client, {
        model: "m", messages, tools, ...kwargs,
        debug_model_text: (thinking ? "I need the weather tool.</think>" : "") + call,
      });
      const c1 = r1.choices[0];
      assert.equal(c1.finish_reason, "tool_calls");
      assert.equal(c1.message.content, "");
      assert.equal(c1.message.reasoning_content ?? null, thinking ? "I need the weather tool." : null);
      assert.equal(c1.message.tool_calls.length, 1);
      const tc = c1.message.tool_calls[0];
      assert.match(tc.id, /^call_[0-9a-f]{24}$/);
      assert.equal(tc.type, "function");
      assert.equal(tc.function.name, "get_weather");
      assert.deepEqual(JSON.parse(tc.function.arguments), { city: "Paris" });
      assert.equal(r1.usage.reasoning_tokens > 0, thinking);

      // Turn 2: the tool result goes back; the model answers. DSML: the prompt ends with <think> in
      // thinking mode. V3.1 format: the model continues right after <｜tool▁output▁end｜> with no
      // think tag (official template; V3.1 tool use is non-thinking), so there is no reasoning.
      const thinks2 = thinking && fmt === "v32";
      messages.push(c1.message, { role: "tool", tool_call_id: tc.id, content: "Sunny, 21C" });
      const body2 = {
        model: "m", messages, tools, ...kwargs,
        debug_model_text: (thinks2 ? "The tool says sunny.</think>" : "") + "It is sunny in Paris, 21C.",
      };
      const r2 = await turn(client, body2);
      const c2 = r2.choices[0];
      assert.equal(c2.finish_reason, "stop");
      assert.equal(c2.message.content, "It is sunny in Paris, 21C.");
      assert.equal(c2.message.reasoning_content ?? null, thinks2 ? "The tool says sunny." : null);
      assert.equal(c2.message.tool_calls ?? null, null);
      // The history (SDK-returned assistant message with tool_calls) renders the same prompt as /tokenize.
      assert.equal(r2.usage.prompt_tokens, await tokenCount(server, { messages, tools, ...kwargs }));

      // Turn 3: a follow-up user turn after the final answer.
      messages.push(c2.message, { role: "user", content: "Thanks!" });
      const r3 = await turn(client, {
        model: "m", messages, tools, ...kwargs, debug_model_text: (thinking ? "Polite.</think>" : "") + "You're welcome.",
      });
      assert.equal(r3.choices[0].message.content, "You're welcome.");
      assert.equal(r3.choices[0].message.reasoning_content ?? null, thinking ? "Polite." : null);
      assert.equal(r3.choices[0].finish_reason, "stop");
    });
  }
}

test("text endpoints: /v1/tokenize, /detokenize, /separate_reasoning, /parse_function_call", async () => {
  const post = async (path, body) => {
    const res = await fetch(`${servers.v32.url}${path}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const t = await post("/v1/tokenize", { prompt: "a   b" });
  assert.deepEqual(t.body, { tokens: [67, 262, 291], count: 3, max_model_len: t.body.max_model_len });
  assert.ok(t.body.max_model_len > 0);
  assert.deepEqual((await post("/detokenize", { tokens: [67, 262, 291] })).body, { text: "a   b" });
  assert.deepEqual((await post("/separate_reasoning", { text: "r</think>c", chat_template_kwargs: { thinking: true } })).body,
    { reasoning_text: "r", text: "c" });
  const p = await post("/parse_function_call", { text: "Hi" + DSML_CALL, tool_call_parser: "deepseekv32", tools });
  assert.deepEqual(p.body, { normal_text: "Hi", calls: [{ tool_index: 0, name: "get_weather", parameters: '{"city": "Paris"}' }] });
  const bad = await post("/detokenize", { tokens: ["x"] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.param, "tokens");
});

test("tool_choice required is a 400 naming tool_choice (D5); the SDK raises BadRequestError", async () => {
  const client = clientOf(servers.v32);
  await assert.rejects(
    client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }], tools, tool_choice: "required" }),
    (e) => e instanceof OpenAI.BadRequestError && /tool_choice/.test(e.message));
});

test("--debug-inject-output is refused without DEEPSERVE_ALLOW_TEST_HOOKS=1", async () => {
  delete process.env.DEEPSERVE_ALLOW_TEST_HOOKS;
  try {
    const r = await runServeExpectingExit(["--debug-inject-output"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--debug-inject-output: refused/);
  } finally {
    process.env.DEEPSERVE_ALLOW_TEST_HOOKS = "1";
  }
});
