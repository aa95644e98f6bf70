// Backend payloads and stream parsing of `deepserve bench` (spec/serving.md 6.1). See bench_backends.h.
#include "tools/bench_backends.h"

#include <stdexcept>

#include <fmt/format.h>

namespace ds::bench {

using nlohmann::json;

Api backend_api(const std::string& b) {
  if (b == "sglang" || b == "sglang-native") return Api::Generate;
  if (b == "sglang-oai" || b == "vllm" || b == "openai") return Api::Completions;
  if (b == "sglang-oai-chat" || b == "vllm-chat" || b == "openai-chat") return Api::Chat;
  throw std::invalid_argument(fmt::format(
      "--backend: unknown backend '{}' (expected sglang, sglang-native, sglang-oai, sglang-oai-chat, vllm, "
      "vllm-chat, openai, openai-chat)",
      b));
}

const char* api_path(Api api) {
  switch (api) {
    case Api::Generate: return "/generate";
    case Api::Completions: return "/v1/completions";
    case Api::Chat: return "/v1/chat/completions";
  }
  return "";
}

int default_port(const std::string& backend) { return backend.rfind("sglang", 0) == 0 ? 30000 : 8000; }

json build_payload(Api api, const std::string& prompt, int output_len, const PayloadOptions& opt) {
  json p;
  switch (api) {
    case Api::Generate:
      p = {{"text", prompt},
           {"sampling_params", {{"temperature", 0.0}, {"max_new_tokens", output_len}, {"ignore_eos", opt.ignore_eos}}},
           {"stream", opt.stream},
           {"return_logprob", false},
           {"logprob_start_len", -1}};
      break;
    case Api::Completions:
      p = {{"model", opt.model}, {"prompt", prompt},         {"temperature", 0.0}, {"best_of", 1},
           {"max_tokens", output_len}, {"stream", opt.stream}, {"ignore_eos", opt.ignore_eos}};
      break;
    case Api::Chat:
      p = {{"model", opt.model},
           {"messages", json::array({{{"role", "user"}, {"content", prompt}}})},
           {"temperature", 0.0},
           {"max_completion_tokens", output_len},
           {"stream", opt.stream},
           {"ignore_eos", opt.ignore_eos}};
      break;
  }
  if (api != Api::Generate && opt.stream) p["stream_options"] = {{"include_usage", true}};
  if (opt.extra.is_object())
    for (auto it = opt.extra.begin(); it != opt.extra.end(); ++it) p[it.key()] = it.value();
  return p;
}

StreamParser::StreamParser(Api api, RequestResult& r) : api_(api), r_(r) {
  last_ = r.start_time;
  r_.output_len = r_.requested_output_len;
}

namespace {
std::string str_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}
}  // namespace

void StreamParser::feed(const std::string& raw, double now) {
  if (errored_) return;
  std::string line = raw;
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  size_t b = line.find_first_not_of(' ');
  if (b == std::string::npos) return;
  line.erase(0, b);
  if (line.rfind("data:", 0) == 0) {
    line.erase(0, 5);
    if (!line.empty() && line[0] == ' ') line.erase(0, 1);
  } else if (line[0] == ':' || line.rfind("event:", 0) == 0 || line.rfind("id:", 0) == 0) {
    return;  // SSE comment / other fields
  }
  r_.latency = now - r_.start_time;  // bench_serving: time of the last received line
  if (line == "[DONE]") return;
  json d = json::parse(line, nullptr, false);
  if (d.is_discarded() || !d.is_object()) {
    errored_ = true;
    r_.error = "unparsable stream line: " + line.substr(0, 200);
    return;
  }
  if (d.contains("error")) {
    errored_ = true;
    r_.error = "error event: " + d["error"].dump();
    return;
  }
  std::string text;
  if (api_ == Api::Generate) {
    // Native: `text` is cumulative; new tokens = completion_tokens growth (spec 6.1).
    std::string cumulative = str_or_empty(d, "text");
    if (cumulative.empty()) return;
    int completion = r_.output_len;
    if (d.contains("meta_info") && d["meta_info"].is_object()) {
      const json& mi = d["meta_info"];
      if (mi.contains("completion_tokens") && mi["completion_tokens"].is_number_integer())
        completion = mi["completion_tokens"].get<int>();
      if (mi.contains("prompt_tokens") && mi["prompt_tokens"].is_number_integer())
        r_.server_prompt_tokens = mi["prompt_tokens"].get<int>();
    }
    if (!got_text_) {
      r_.ttft = now - r_.start_time;
      got_text_ = true;
    } else {
      const int fresh = completion - last_completion_tokens_;
      if (fresh <= 0) return;  // no new tokens: skipped, as bench_serving
      const double gap = (now - last_) / fresh;
      for (int i = 0; i < fresh; ++i) r_.itl.push_back(gap);
      r_.text_chunks.push_back(cumulative.substr(std::min(cumulative.size(), r_.generated_text.size())));
    }
    r_.generated_text = cumulative;
    r_.output_len = completion;
    last_completion_tokens_ = completion;
    last_ = now;
    return;
  }
  // OpenAI shapes: usage chunk (choices: []) and/or a text delta.
  if (d.contains("usage") && d["usage"].is_object()) {
    const json& u = d["usage"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      r_.output_len = u["completion_tokens"].get<int>();
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
      r_.server_prompt_tokens = u["prompt_tokens"].get<int>();
  }
  if (!d.contains("choices") || !d["choices"].is_array() || d["choices"].empty()) return;
  const json& c = d["choices"][0];
  if (api_ == Api::Completions) {
    text = str_or_empty(c, "text");
  } else if (c.contains("delta") && c["delta"].is_object()) {
    text = str_or_empty(c["delta"], "reasoning_content") + str_or_empty(c["delta"], "content");
  }
  if (text.empty()) return;
  if (!got_text_) {
    r_.ttft = now - r_.start_time;
    got_text_ = true;
  } else {
    r_.itl.push_back(now - last_);
    r_.text_chunks.push_back(text);
  }
  last_ = now;
  r_.generated_text += text;
}

void StreamParser::finish() { r_.success = !errored_; }

void parse_nonstream(Api api, const std::string& body, double now, RequestResult& r) {
  r.latency = now - r.start_time;
  r.ttft = r.latency;  // bench_serving: non-streaming TTFT = total latency
  r.output_len = r.requested_output_len;
  json d = json::parse(body, nullptr, false);
  if (d.is_discarded()) {
    r.success = false;
    r.error = "response is not JSON: " + body.substr(0, 200);
    return;
  }
  try {
    if (api == Api::Generate) {
      const json& o = d.is_array() ? d.at(0) : d;
      r.generated_text = o.value("text", "");
      if (o.contains("meta_info")) {
        r.output_len = o["meta_info"].value("completion_tokens", r.output_len);
        if (o["meta_info"].contains("prompt_tokens")) r.server_prompt_tokens = o["meta_info"]["prompt_tokens"].get<int>();
      }
    } else {
      const json& c = d.at("choices").at(0);
      if (api == Api::Completions) {
        r.generated_text = c.value("text", "");
      } else {
        const json& m = c.at("message");
        auto s = [&](const char* k) { return (m.contains(k) && m[k].is_string()) ? m[k].get<std::string>() : ""; };
        r.generated_text = s("reasoning_content") + s("content");
      }
      if (d.contains("usage") && d["usage"].is_object()) {
        r.output_len = d["usage"].value("completion_tokens", r.output_len);
        if (d["usage"].contains("prompt_tokens")) r.server_prompt_tokens = d["usage"]["prompt_tokens"].get<int>();
      }
    }
    r.success = true;
  } catch (const json::exception& e) {
    r.success = false;
    r.error = std::string("unexpected response shape: ") + e.what();
  }
}

}  // namespace ds::bench
