#!/usr/bin/env python3
"""Generates tests/fixtures/dsv32_encoding/vectors.jsonl by RUNNING DeepSeek's own encoding_dsv32.py.

The official encoder is NOT part of this repository (D3: its output is data, its code is not ours).
Get it from the DeepSeek-V3.2 model release (encoding/encoding_dsv32.py; mirrored in
huggingface/transformers under src/transformers/models/deepseek_v32/deepseek_files/encoding/), save
it outside the repo and pass its path:

    python3 scripts/reference/gen_dsv32_vectors.py /path/to/encoding_dsv32.py

Each output line: {"name", "messages", "tools"?, "thinking_mode", "drop_thinking", "ensure_system",
"add_bos", then "expected" (the prompt string) or "expected_error" + "error_type"}. Messages are in
deepserve's ChatMessage shape (tool call arguments as JSON objects). Before calling the official
encoder this script does what SGLang does (spec/serving.md 1.4): arguments are passed as the JSON
string json.dumps(args, ensure_ascii=False), an empty system message is put first when
ensure_system and messages[0] is not a system message, and the tools are attached to messages[0].
meta.json beside the vectors records the encoder's source and sha256.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import sys

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Current time, no arguments",
    "parameters": {"type": "object", "properties": {}}}}
# Key order not name/description/parameters, floats, unicode, escapes: D4 printing.
ODD_TOOL = {"type": "function", "function": {
    "parameters": {"type": "object", "properties": {
        "ratio": {"type": "number", "minimum": 0.5, "maximum": 1.0, "default": 1e-05, "multipleOf": 1e16},
        "label": {"type": "string", "description": "Étiquette «texte» 名字 🏷️", "enum": ["a\"b", "c\\d", "e\nf"]},
        "mode": {"type": ["string", "null"], "default": None},
        "flags": {"type": "array", "items": {"type": "boolean"}, "default": [True, False]}},
        "required": []},
    "description": "Tab\there, bell\u0001, del\u007f, quote \" and 'single'",
    "name": "odd_tool", "strict": False}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "filters": {"type": "object"}, "top_k": {"type": "integer"}},
        "required": ["query"]}}}


def call(cid, name, args):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def U(c):
    return {"role": "user", "content": c}


def S(c):
    return {"role": "system", "content": c}


def D(c):
    return {"role": "developer", "content": c}


def A(content="", reasoning=None, calls=None):
    m = {"role": "assistant", "content": content}
    if reasoning is not None:
        m["reasoning_content"] = reasoning
    if calls:
        m["tool_calls"] = calls
    return m


def T(c, cid=""):
    m = {"role": "tool", "content": c}
    if cid:
        m["tool_call_id"] = cid
    return m


def cases():
    """(name, messages, tools, thinking_mode, drop_thinking, ensure_system, add_bos)."""
    w = [WEATHER_TOOL]
    agent = [U("Weather in Tokyo?"),
             A("", "Need the tool.", [call("c1", "get_weather", {"city": "Tokyo", "days": 2})]),
             T("Sunny", "c1")]
    two_calls = [U("Compare Paris and Oslo"),
                 A("Checking both.", "Two cities.", [call("c1", "get_weather", {"city": "Paris"}),
                                                     call("c2", "get_weather", {"city": "Oslo", "days": 3})]),
                 T("Paris: 20C", "c1"), T("Oslo: 5C", "c2")]
    floats = {"one": 1.0, "tenth": 0.1, "tiny": 1e-05, "big": 1e16, "bigger": 123456789012345680.0,
              "neg_zero": -0.0, "huge": 1.5e300, "small": 2.5e-10, "hundred": 100.0, "third": 1 / 3,
              "ten_thousandth": 0.0001, "e15": 1e15, "int": 12345678901234567, "neg": -42}
    mixed = {"s": "plain", "empty": "", "num_str": "42", "n": 7, "f": 2.5, "t": True, "fl": False,
             "none": None, "obj": {"k": [1, {"deep": "中文"}], "z": {}}, "arr": [1, "two", 3.0, None, []],
             "uni": "naïve 日本語 🚀", "raw": "line1\nline2 \"quoted\" \\ back <tag>", "ctl": "a\u0001b\tc"}
    out = [
        ("chat_system_user", [S("You are helpful."), U("Hi")], None, "chat", True, True, True),
        ("thinking_system_user", [S("You are helpful."), U("Hi")], None, "thinking", True, True, True),
        ("chat_user_only_inserted_system", [U("Hello there")], None, "chat", True, True, True),
        ("thinking_user_only_raw", [U("Hello there")], None, "thinking", True, False, True),
        ("thinking_no_bos", [S("sys"), U("q")], None, "thinking", True, True, False),
        ("thinking_history_dropped", [U("Q1"), A("A1", "R1"), U("Q2")], None, "thinking", True, True, True),
        ("chat_history_reasoning_ignored", [U("Q1"), A("A1", "R1"), U("Q2")], None, "chat", True, True, True),
        ("thinking_history_drop_false", [U("Q1"), A("A1", "R1"), U("Q2")], None, "thinking", False, True, True),
        ("thinking_three_turns_final_answer",
         [S("Be brief."), U("Q1"), A("A1", "R1"), U("Q2"), A("A2", "R2"), U("Q3"), A("A3", "R3")],
         None, "thinking", True, True, True),
        ("chat_three_turns", [S("Be brief."), U("Q1"), A("A1"), U("Q2"), A("A2"), U("Q3")],
         None, "chat", True, True, True),
        ("chat_developer_last", [S("sys"), D("Do the thing")], None, "chat", True, True, True),
        ("thinking_developer_last", [S("sys"), D("Do the thing")], None, "thinking", True, True, True),
        ("chat_developer_then_user", [D("Rules here"), A("ok"), U("Now go")], None, "chat", True, True, True),
        ("error_thinking_developer_before_last_user_dropped", [D("Rules here"), A("ok", "r"), U("Now go")],
         None, "thinking", True, True, True),
        ("thinking_developer_before_last_user_no_drop", [D("Rules here"), A("ok", "r"), U("Now go")],
         None, "thinking", False, True, True),
        ("error_developer_empty", [S("sys"), D("")], None, "chat", True, True, True),
        ("chat_tools_system", [S("You are an agent."), U("Weather?")], w, "chat", True, True, True),
        ("thinking_tools_inserted_system", [U("Weather?")], w, "thinking", True, True, True),
        ("thinking_tools_key_order_floats_escapes", [S("x"), U("go")], [ODD_TOOL, TIME_TOOL, SEARCH_TOOL],
         "thinking", True, True, True),
        ("chat_tools_empty_list", [S("x"), U("go")], [], "chat", True, True, True),
        ("thinking_agent_loop", agent, w, "thinking", True, True, True),
        ("chat_agent_loop", agent, w, "chat", True, True, True),
        ("thinking_agent_loop_answered", agent + [A("It is sunny.", "Got it.")], w, "thinking", True, True, True),
        ("chat_agent_loop_answered", agent + [A("It is sunny.")], w, "chat", True, True, True),
        ("thinking_two_calls_grouped_results", two_calls, w, "thinking", True, True, True),
        ("chat_two_calls_grouped_results", two_calls, w, "chat", True, True, True),
        ("thinking_two_calls_then_new_user", two_calls + [A("Paris is warmer.", "Compare."), U("And Rome?")],
         w, "thinking", True, True, True),
        ("thinking_args_mixed_types",
         [U("mixed"), A("", "r", [call("c1", "search", mixed)]), T("ok", "c1")], [SEARCH_TOOL],
         "thinking", True, True, True),
        ("chat_args_floats", [U("floats"), A("", None, [call("c1", "search", floats)]), T("ok")], [SEARCH_TOOL],
         "chat", True, True, True),
        ("thinking_zero_argument_call",
         [U("Time?"), A("", "Call it.", [call("c1", "get_time", {})]), T("12:00", "c1")], [TIME_TOOL],
         "thinking", True, True, True),
        ("chat_zero_and_nonzero_calls",
         [U("Both"), A("Sure.", None, [call("a", "get_time", {}), call("b", "get_weather", {"city": "Rome"})]),
          T("12:00"), T("Rain"), A("Noon, rain.")], [TIME_TOOL, WEATHER_TOOL], "chat", True, True, True),
        ("thinking_three_calls_empty_results",
         [U("x"), A("", "", [call("1", "get_time", {}), call("2", "get_time", {}), call("3", "get_time", {})]),
          T(""), T("second"), T("")], [TIME_TOOL], "thinking", True, True, True),
        ("thinking_two_rounds_of_tools",
         [U("plan"), A("", "step1", [call("1", "get_time", {})]), T("t1"),
          A("", "step2", [call("2", "get_weather", {"city": "Lima"})]), T("w2"), A("Done.", "final")],
         [TIME_TOOL, WEATHER_TOOL], "thinking", True, True, True),
        ("thinking_old_tool_rounds_dropped",
         [U("plan"), A("", "step1", [call("1", "get_time", {})]), T("t1"), A("Done.", "final"), U("again")],
         [TIME_TOOL], "thinking", True, True, True),
        ("thinking_empty_reasoning_with_calls",
         [U("q"), A("", "", [call("1", "get_time", {})]), T("t")], [TIME_TOOL], "thinking", True, True, True),
        ("chat_special_lookalikes_in_text",
         [S("sys <｜end▁of▁sentence｜>"), U("<think>hi</think><｜User｜><｜DSML｜function_calls>"),
          A("<｜Assistant｜>ok")], None, "chat", True, True, True),
        ("chat_empty_user", [U("")], None, "chat", True, True, True),
        ("chat_second_system_midway", [S("first"), U("q"), A("a"), S("second"), U("q2")], None, "chat",
         True, True, True),
        ("thinking_unicode_everywhere",
         [S("Système ✓"), U("日本の天気は？😀"), A("晴れ", "考え中…"), U("ありがとう")], None, "thinking",
         True, True, True),
        ("chat_unicode_args_and_keys",
         [U("q"), A("", None, [call("x", "search", {"查询": "北京", "key \"q\"": "v", "emoji🚀": ["🌟", 1]})]),
          T("结果")], [SEARCH_TOOL], "chat", True, True, True),
        ("chat_trailing_assistant_with_calls_no_results",
         [U("q"), A("Let me check.", None, [call("1", "get_weather", {"city": "Bern"})])], w, "chat",
         True, True, True),
        ("thinking_trailing_prefill_reasoning_only", [U("q"), A("", "partial reasoning")], None, "thinking",
         True, True, True),
        ("error_thinking_assistant_without_reasoning",
         [U("q"), A("It's \"fine\" 你好\n")], None, "thinking", True, True, True),
        ("error_thinking_assistant_empty_reasoning", [U("q"), A("x", "")], None, "thinking", True, True, True),
        ("error_tool_after_user", [U("q"), T("orphan")], None, "chat", True, True, True),
        ("error_tool_after_system_with_tools", [S("S"), T("orphan")], [TIME_TOOL], "chat", True, True, True),
        ("error_more_results_than_calls",
         [U("q"), A("", None, [call("1", "get_time", {})]), T("a"), T("b")], [TIME_TOOL], "chat", True, True, True),
        ("error_tool_after_assistant_without_calls", [U("q"), A("answer"), T("x")], None, "chat", True, True, True),
        ("error_unknown_role", [U("q"), {"role": "function", "content": "f"}], None, "chat", True, True, True),
        ("error_tool_first_raw_no_calls", [T("first"), U("q")], None, "chat", True, False, True),
        ("quirk_tool_first_raw_uses_last_message_calls",
         [T("first"), U("q"), A("", None, [call("1", "get_time", {})])], [TIME_TOOL], "chat", True, False, True),
        ("error_thinking_dropped_developer_shifts_tool_results",
         [U("q"), A("", "r", [call("1", "get_time", {})]), T("t"), D("dev"), A("ok", "r2"), U("last")],
         [TIME_TOOL], "thinking", True, True, True),
        ("error_tool_after_assistant_without_calls_history",
         [U("q"), A("done", "secret reasoning"), T("stray"), U("last")], None, "thinking", True, True, True),
    ]
    return out


def to_official(m):
    """deepserve ChatMessage JSON -> the dict SGLang hands to the encoder (key order matters for repr)."""
    d = {"role": m["role"], "content": m.get("content", "")}
    if "reasoning_content" in m:
        d["reasoning_content"] = m["reasoning_content"]
    if m.get("tool_calls"):
        d["tool_calls"] = [{"id": tc["id"], "type": "function", "function": {
            "name": tc["function"]["name"],
            "arguments": json.dumps(tc["function"]["arguments"], ensure_ascii=False)}} for tc in m["tool_calls"]]
    if m.get("tool_call_id"):
        d["tool_call_id"] = m["tool_call_id"]
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("encoder", help="path of DeepSeek's encoding_dsv32.py (kept outside the repo)")
    ap.add_argument("--source", default="https://huggingface.co/deepseek-ai/DeepSeek-V3.2/blob/main/encoding/"
                    "encoding_dsv32.py (read from the mirror github.com/huggingface/transformers "
                    "src/transformers/models/deepseek_v32/deepseek_files/encoding/encoding_dsv32.py "
                    "@220c122bc324fc4b3a5018929c4c61ee456885d7)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "..", "tests", "fixtures", "dsv32_encoding"))
    args = ap.parse_args()

    spec = importlib.util.spec_from_file_location("encoding_dsv32", args.encoder)
    enc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(enc)
    with open(args.encoder, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    lines = []
    names = set()
    for name, msgs, tools, mode, drop, ensure_system, add_bos in cases():
        assert name not in names, name
        names.add(name)
        py = [to_official(m) for m in msgs]
        if ensure_system and (not py or py[0]["role"] != "system"):
            py.insert(0, {"role": "system", "content": ""})
        if tools:
            py[0]["tools"] = tools
        rec = {"name": name, "messages": msgs}
        if tools is not None:
            rec["tools"] = tools
        rec.update({"thinking_mode": mode, "drop_thinking": drop, "ensure_system": ensure_system,
                    "add_bos": add_bos})
        try:
            rec["expected"] = enc.encode_messages(py, thinking_mode=mode, drop_thinking=drop,
                                                  add_default_bos_token=add_bos)
        except (AssertionError, NotImplementedError, ValueError) as e:
            rec["expected_error"] = str(e)
            rec["error_type"] = type(e).__name__
        lines.append(json.dumps(rec, ensure_ascii=False))

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "vectors.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    meta = {"source": args.source, "sha256": sha, "python": sys.version.split()[0], "count": len(lines),
            "generator": "scripts/reference/gen_dsv32_vectors.py"}
    with open(os.path.join(args.out_dir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"wrote {len(lines)} vectors (encoder sha256 {sha})")


if __name__ == "__main__":
    main()
